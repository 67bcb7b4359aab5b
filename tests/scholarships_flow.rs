//! The whole scholarship flow through the pages: funds, applications, reviews with revisions,
//! ranking, decisions, the report with its CSV, the application's history; bad input is refused
//! with a message and changes nothing.

mod common;
mod scholarships_support;

use common::{count_events, create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;

fn review(
    client: &mut Client,
    app: uuid::Uuid,
    scores: [&str; 4],
    comment: &str,
) -> common::Response {
    client.get(&format!("/scholarships/applications/{app}/review"));
    client.post(
        &format!("/scholarships/applications/{app}/review"),
        &[
            ("merit", scores[0]),
            ("need", scores[1]),
            ("statement", scores[2]),
            ("community", scores[3]),
            ("comment", comment),
        ],
    )
}

#[test]
fn funds_are_validated_at_the_edge_and_bad_input_changes_nothing() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    staff
        .get("/scholarships/funds")
        .assert_contains("No funds yet");
    let base = [
        ("name", "Merit"),
        ("term", "2027-fall"),
        ("criteria", ""),
        ("opens_on", "2027-01-01"),
    ];
    for (budget, closes, message) in [
        ("12.345", "2027-02-01", "is not an amount"),
        ("-100", "2027-02-01", "is not an amount"),
        ("0", "2027-02-01", "more than zero"),
        ("1000", "2026-12-01", "must close on or after"),
        ("1000", "someday", "must look like 2027-01-31"),
    ] {
        let mut fields = base.to_vec();
        fields.push(("budget", budget));
        fields.push(("closes_on", closes));
        let res = staff.post("/scholarships/funds", &fields);
        assert_eq!(res.status, 422, "{budget} {closes}: {}", res.body);
        res.assert_contains(message);
        // The form keeps what was typed.
        res.assert_contains("value=\"Merit\"");
    }
    assert_eq!(count_events(&app, "FundCreated"), 0);

    // With HTMX the fund list swaps in place and names the event.
    staff.get("/scholarships/funds");
    let res = staff.post_htmx(
        "/scholarships/funds",
        &[
            ("name", "Merit"),
            ("term", "2027-fall"),
            ("budget", "$12,000.50"),
            ("criteria", "GPA"),
            ("opens_on", "2020-01-01"),
            ("closes_on", "2099-01-01"),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("hx-trigger"), Some("FundCreated"));
    res.assert_contains("id=\"funds\"")
        .assert_contains("$12,000.50");
    assert!(!res.body.contains("<html"), "an HTMX answer is a fragment");
    assert_eq!(count_events(&app, "FundCreated"), 1);

    // Students may not manage funds.
    create_user(&app, "stu", "student", PASSWORD);
    let mut student = Client::new(&app);
    student.login("stu", PASSWORD);
    assert_eq!(student.get("/scholarships/funds").status, 403);
    assert_eq!(
        student
            .post(
                "/scholarships/funds",
                &[
                    ("name", "x"),
                    ("term", "t"),
                    ("budget", "1"),
                    ("criteria", ""),
                    ("opens_on", "2020-01-01"),
                    ("closes_on", "2020-01-02")
                ]
            )
            .status,
        403
    );
}

#[test]
fn students_apply_once_and_only_while_the_fund_is_open() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Open fund", "5000");
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);

    let page = student.get("/scholarships");
    page.assert_contains("Open fund")
        .assert_contains("You have not applied");
    let path = format!("/scholarships/funds/{fund}/apply");
    let res = student.post(&path, &[("statement", "   ")]);
    assert_eq!(res.status, 422);
    res.assert_contains("Write a short statement");
    let res = student.post(&path, &[("statement", "I study nights and work days.")]);
    assert_eq!(res.status, 303, "{}", res.body);
    let res = student.post(&path, &[("statement", "Again")]);
    assert_eq!(res.status, 422);
    res.assert_contains("already applied to this fund");
    assert_eq!(count_events(&app, "ScholarshipApplied"), 1);
    student
        .get("/scholarships")
        .assert_contains("under review")
        .assert_contains("<span class=\"badge\">applied</span>");
    let _ = application_id(&app, fund, ada);

    // Closed: nobody else may apply.
    staff.get("/scholarships/funds");
    assert_eq!(
        staff
            .post(
                &format!("/scholarships/funds/{fund}/window"),
                &[("open", "false")]
            )
            .status,
        303
    );
    create_user(&app, "bob", "student", PASSWORD);
    let mut bob = Client::new(&app);
    bob.login("bob", PASSWORD);
    bob.get("/scholarships")
        .assert_contains("No fund is taking applications");
    let res = bob.post(&path, &[("statement", "Please")]);
    assert_eq!(res.status, 422);
    res.assert_contains("not taking applications now");
    assert_eq!(count_events(&app, "ScholarshipApplied"), 1);
}

#[test]
fn reviews_rank_the_board_and_decisions_fill_the_report_and_history() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let r1 = create_user(&app, "rita", "staff", PASSWORD);
    let r2 = create_user(&app, "rory", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bob = create_user(&app, "bob", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Ranked fund", "2,000");
    for name in ["ada", "bob"] {
        let mut s = Client::new(&app);
        s.login(name, PASSWORD);
        s.get("/scholarships");
        let res = s.post(
            &format!("/scholarships/funds/{fund}/apply"),
            &[("statement", "my plan")],
        );
        assert_eq!(res.status, 303);
    }
    let (a, b) = (
        application_id(&app, fund, ada),
        application_id(&app, fund, bob),
    );

    // Assign: rita to both, rory to ada's.
    staff.get(&format!("/scholarships/funds/{fund}"));
    for (application, reviewer) in [(a, r1), (b, r1), (a, r2)] {
        let res = staff.post(
            &format!("/scholarships/applications/{application}/reviewers"),
            &[("reviewer_id", &reviewer.to_string())],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let res = staff.post(
        &format!("/scholarships/applications/{a}/reviewers"),
        &[("reviewer_id", &r1.to_string())],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("already assigned");

    let mut rita = Client::new(&app);
    rita.login("rita", PASSWORD);
    let queue = rita.get("/scholarships/reviews");
    queue
        .assert_contains("To do (2)")
        .assert_contains("Scored (0)");
    // Bad scores: refused with the criterion named, nothing recorded.
    let res = review(&mut rita, a, ["9", "5", "5", "5"], "great");
    assert_eq!(res.status, 422);
    res.assert_contains("Academic merit: a score is from 1 to 5, not 9");
    assert_eq!(count_events(&app, "ReviewSubmitted"), 0);
    assert_eq!(
        review(&mut rita, a, ["5", "5", "5", "5"], "great").status,
        303
    );
    assert_eq!(
        review(&mut rita, b, ["2", "2", "2", "2"], "thin").status,
        303
    );
    let mut rory = Client::new(&app);
    rory.login("rory", PASSWORD);
    assert_eq!(
        review(&mut rory, a, ["4", "4", "4", "4"], "solid").status,
        303
    );
    // A revision through HTMX: the form swaps in place, the event is named.
    rita.get(&format!("/scholarships/applications/{a}/review"));
    let res = rita.post_htmx(
        &format!("/scholarships/applications/{a}/review"),
        &[
            ("merit", "3"),
            ("need", "3"),
            ("statement", "3"),
            ("community", "3"),
            ("comment", "on reflection"),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("hx-trigger"), Some("ReviewRevised"));
    res.assert_contains("revision 2");
    assert_eq!(count_events(&app, "ReviewSubmitted"), 3);
    assert_eq!(count_events(&app, "ReviewRevised"), 1);
    rita.get("/scholarships/reviews")
        .assert_contains("To do (0)")
        .assert_contains("Scored (2)");

    // The board ranks ada (3 and 4: 3.50) above bob (2.00), reviews beside them.
    let board = staff.get(&format!("/scholarships/funds/{fund}"));
    board
        .assert_contains("3.50")
        .assert_contains("on reflection")
        .assert_contains("solid");
    assert!(
        board.body.find(&format!("app-{a}")).unwrap()
            < board.body.find(&format!("app-{b}")).unwrap()
    );

    // Decisions: bad ones refused, then award and decline.
    let decide = |c: &mut Client, app: uuid::Uuid, fields: &[(&str, &str)]| {
        c.post(
            &format!("/scholarships/applications/{app}/decision"),
            fields,
        )
    };
    let res = decide(
        &mut staff,
        a,
        &[("outcome", "award"), ("amount", "abc"), ("reason", "x")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("is not an amount");
    let res = decide(
        &mut staff,
        a,
        &[("outcome", "award"), ("amount", "500"), ("reason", "")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("Give a reason");
    let res = decide(
        &mut staff,
        a,
        &[
            ("outcome", "award"),
            ("amount", "2,000.01"),
            ("reason", "top"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("the award of $2,000.01 exceeds the remaining budget $2,000.00");
    assert_eq!(count_events(&app, "AwardGranted"), 0);
    // With HTMX a refusal lands in the page's message area, the board stays as it was.
    staff.get(&format!("/scholarships/funds/{fund}"));
    let res = staff.post_htmx(
        &format!("/scholarships/applications/{a}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "99,999"),
            ("reason", "too much"),
        ],
    );
    assert_eq!(res.status, 422);
    assert_eq!(res.header("hx-retarget"), Some("#messages"));
    res.assert_contains("exceeds the remaining budget $2,000.00");
    assert_eq!(count_events(&app, "AwardGranted"), 0);
    let res = staff.post_htmx(
        &format!("/scholarships/applications/{a}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "1,500"),
            ("reason", "top of the ranking"),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("hx-trigger"), Some("AwardGranted"));
    res.assert_contains("id=\"board\"")
        .assert_contains("$500.00");
    let res = decide(
        &mut staff,
        b,
        &[("outcome", "waitlist"), ("reason", "maybe later")],
    );
    assert_eq!(res.status, 303);
    let res = decide(
        &mut staff,
        b,
        &[("outcome", "decline"), ("reason", "budget spent")],
    );
    assert_eq!(res.status, 303);
    let res = decide(
        &mut staff,
        a,
        &[("outcome", "decline"), ("reason", "second thoughts")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("already decided (awarded)");
    // Reviews close with the decision.
    let res = review(&mut rita, b, ["5", "5", "5", "5"], "late");
    assert_eq!(res.status, 422);
    res.assert_contains("reviews are closed");

    // The student sees the decision and declines; the money returns to the budget.
    let mut s = Client::new(&app);
    s.login("ada", PASSWORD);
    s.get("/scholarships")
        .assert_contains("$1,500.00")
        .assert_contains("top of the ranking");
    let res = s.post(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "refuse"), ("confirm", "yes")],
    );
    assert_eq!(res.status, 303);
    assert_eq!(awarded_cents(&app, fund), 0);

    // Report: figures, counts by outcome, decision history, CSV.
    let report = staff.get(&format!("/scholarships/funds/{fund}/report"));
    report
        .assert_contains("<dd id=\"budget\">$2,000.00</dd>")
        .assert_contains("<dd id=\"awarded\">$0.00</dd>")
        .assert_contains("<dd id=\"remaining\">$2,000.00</dd>")
        .assert_contains("budget spent")
        .assert_contains("maybe later")
        .assert_contains("refused");
    assert!(report
        .body
        .contains("<th scope=\"row\">awarded</th><td class=\"num\">1</td>"));
    assert!(report
        .body
        .contains("<th scope=\"row\">declined</th><td class=\"num\">1</td>"));
    let csv = staff.get(&format!("/scholarships/funds/{fund}/report?format=csv"));
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "recorded_at,application_id,student,decision,amount,reason,actor"
    );
    assert_eq!(
        lines.len(),
        1 + 4,
        "awarded, waitlisted, declined, refused: {}",
        csv.body
    );
    assert!(lines[1].contains(",refused,"));
    assert!(lines
        .iter()
        .any(|l| l.contains(",awarded,1500.00,top of the ranking,")));
    assert_eq!(
        staff
            .get(&format!("/scholarships/funds/{fund}/report?format=xml"))
            .status,
        400
    );

    // History of the application: every review revision and every decision, for the committee.
    let history = staff.get(&format!("/scholarships/applications/{a}"));
    history
        .assert_contains("ReviewSubmitted")
        .assert_contains("ReviewRevised")
        .assert_contains("rita, revision 1: Academic merit 5")
        .assert_contains("rita, revision 2: Academic merit 3")
        .assert_contains("rory was assigned to review")
        .assert_contains("AwardGranted")
        .assert_contains("AwardRefused");
    // The applicant sees the decisions but not the reviews.
    let own = s.get(&format!("/scholarships/applications/{a}"));
    own.assert_contains("AwardGranted")
        .assert_contains("the committee");
    assert!(!own.body.contains("ReviewSubmitted"));
}
