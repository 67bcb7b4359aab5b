//! The demo data: two funds with applications at every stage, seeded once however often the
//! seed runs, and every page renders it.

mod common;

use common::{count_events, Client, TestApp};
use heyboss::demo::DEMO_PASSWORD;

#[test]
fn the_demo_seeds_every_stage_once_and_the_pages_show_it() {
    let app = TestApp::spawn();
    heyboss::demo::seed(&app.state).unwrap();
    heyboss::demo::seed(&app.state).unwrap();
    assert_eq!(count_events(&app, "FundCreated"), 2);
    assert_eq!(count_events(&app, "ScholarshipApplied"), 18);
    for t in [
        "ReviewerAssigned",
        "ReviewSubmitted",
        "ReviewRevised",
        "AwardGranted",
        "ApplicationDeclined",
        "ApplicationWaitlisted",
        "AwardAccepted",
        "AwardRefused",
    ] {
        assert!(count_events(&app, t) > 0, "the demo has {t}");
    }

    let mut student = Client::new(&app);
    student.login("student", DEMO_PASSWORD);
    let page = student.get("/scholarships");
    page.assert_contains("Founders&#x27;")
        .assert_contains("$2,500.00")
        .assert_contains("Accept")
        .assert_contains("Community Service Grant");

    let mut staff = Client::new(&app);
    staff.login("staff", DEMO_PASSWORD);
    let funds = staff.get("/scholarships/funds");
    assert_eq!(funds.status, 200);
    let fund_link = funds
        .body
        .split("href=\"/scholarships/funds/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let board = staff.get(&format!("/scholarships/funds/{fund_link}"));
    assert_eq!(board.status, 200);
    board
        .assert_contains("Committee board")
        .assert_contains("Riley Reviewer");
    let report = staff.get(&format!("/scholarships/funds/{fund_link}/report"));
    assert_eq!(report.status, 200);
    report.assert_contains("Decision history");
    let queue = staff.get("/scholarships/reviews");
    queue.assert_contains("To do").assert_contains("Scored");
    assert!(!queue.body.contains("To do (0)") || !queue.body.contains("Scored (0)"));
}
