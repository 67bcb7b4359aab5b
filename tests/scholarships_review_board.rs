//! Reviewers and the committee: scores labelled with the rubric's criteria on the board, a rubric
//! that says what each score means, a "next application" through the queue, the applicant's
//! statement beside the scores, and Assign offering only reviewers who may review.

mod common;
mod scholarships_support;

use common::{create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;
use uuid::Uuid;

/// The board's row of one application (from its `<tr>` to the next).
fn row(board: &str, application: Uuid) -> String {
    let start = board
        .find(&format!("id=\"app-{application}\""))
        .expect("the application's row");
    let end = board[start..].find("</tr>").unwrap() + start;
    board[start..end].to_owned()
}

/// The reviewers the row's Assign form offers (option values).
fn offered(row: &str) -> Vec<String> {
    let Some(start) = row.find("name=\"reviewer_id\"") else {
        return Vec::new();
    };
    let end = row[start..].find("</select>").unwrap() + start;
    row[start..end]
        .split("<option value=\"")
        .skip(1)
        .map(|o| o[..o.find('"').unwrap()].to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn assign(c: &mut Client, application: Uuid, reviewer: Uuid) -> common::Response {
    c.post(
        &format!("/scholarships/applications/{application}/reviewers"),
        &[("reviewer_id", &reviewer.to_string())],
    )
}

fn score(c: &mut Client, application: Uuid, scores: [&str; 4]) -> common::Response {
    c.get(&format!("/scholarships/applications/{application}/review"));
    c.post(
        &format!("/scholarships/applications/{application}/review"),
        &[
            ("merit", scores[0]),
            ("need", scores[1]),
            ("statement", scores[2]),
            ("community", scores[3]),
            ("comment", "clear plan"),
        ],
    )
}

#[test]
fn assign_offers_only_reviewers_who_may_review_and_the_board_labels_every_score() {
    let app = TestApp::spawn();
    let committee = create_user(&app, "committee", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    // Sam applied as a student and later joined the staff.
    let sam = create_user(&app, "sam", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Board fund", "1000");
    apply_directly(&app, fund, ada);
    apply_directly(&app, fund, sam);
    let (a, own) = (
        application_id(&app, fund, ada),
        application_id(&app, fund, sam),
    );
    promote_to_staff(&app, sam);
    let board_path = format!("/scholarships/funds/{fund}");
    let ids = |v: &[Uuid]| v.iter().map(Uuid::to_string).collect::<Vec<_>>();

    // Nobody is preselected; the applicant is never offered for their own application.
    let board = staff.get(&board_path).body;
    assert!(row(&board, a).contains("<option value=\"\">choose a reviewer</option>"));
    let mut all = ids(&[committee, rita, sam]);
    all.sort();
    let mut got = offered(&row(&board, a));
    got.sort();
    assert_eq!(got, all);
    let mut got = offered(&row(&board, own));
    got.sort();
    let mut not_sam = ids(&[committee, rita]);
    not_sam.sort();
    assert_eq!(got, not_sam);

    // Once assigned, a reviewer is not offered again for that application.
    assert_eq!(assign(&mut staff, a, rita).status, 303);
    let board = staff.get(&board_path).body;
    let mut got = offered(&row(&board, a));
    got.sort();
    let mut rest = ids(&[committee, sam]);
    rest.sort();
    assert_eq!(got, rest);
    // A hand-made request is refused with a message saying what to do.
    let res = assign(&mut staff, a, rita);
    assert_eq!(res.status, 422);
    res.assert_contains(
        "this reviewer is already assigned to the application: choose another reviewer",
    );
    let res = assign(&mut staff, own, sam);
    assert_eq!(res.status, 422);
    res.assert_contains(
        "the applicant cannot review their own application: choose another reviewer",
    );
    // With everyone assigned, the row says so instead of offering a form.
    assert_eq!(assign(&mut staff, a, sam).status, 303);
    assert_eq!(assign(&mut staff, a, committee).status, 303);
    let board = staff.get(&board_path).body;
    assert!(offered(&row(&board, a)).is_empty());
    assert!(row(&board, a).contains("Every other staff member is assigned."));

    // Scores are labelled with the rubric's criteria, never bare.
    let mut rita_c = Client::new(&app);
    rita_c.login("rita", PASSWORD);
    assert_eq!(score(&mut rita_c, a, ["5", "4", "5", "3"]).status, 303);
    let board = staff.get(&board_path).body;
    let ada_row = row(&board, a);
    // Each with what the score means on the rubric's scale.
    for labelled in [
        "<li>Academic merit <strong>5</strong> <span class=\"muted\">(exceptional)</span></li>",
        "<li>Financial need <strong>4</strong> <span class=\"muted\">(strong)</span></li>",
        "<li>Personal statement <strong>5</strong> <span class=\"muted\">(exceptional)</span></li>",
        "<li>Community contribution <strong>3</strong> <span class=\"muted\">(meets the criterion)</span></li>",
    ] {
        assert!(ada_row.contains(labelled), "{labelled} in {ada_row}");
    }
    assert!(!ada_row.contains("5/4/5/3"), "{ada_row}");
    // The statement is beside the scores on the board too.
    assert!(
        ada_row.contains("<summary>Statement</summary><p>I would put it to good use</p>"),
        "{ada_row}"
    );
}

#[test]
fn the_review_form_explains_the_rubric_beside_the_statement_and_leads_to_the_next_application() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bob = create_user(&app, "bob", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Queue fund", "1000");
    // Ada applies through the page with a statement of her own; Bob after her.
    let mut ada_c = Client::new(&app);
    ada_c.login("ada", PASSWORD);
    ada_c.get("/scholarships");
    let res = ada_c.post(
        &format!("/scholarships/funds/{fund}/apply"),
        &[("statement", "I will build a rainwater garden for the dorms")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    apply_directly(&app, fund, bob);
    let (a, b) = (
        application_id(&app, fund, ada),
        application_id(&app, fund, bob),
    );
    staff.get(&format!("/scholarships/funds/{fund}"));
    assert_eq!(assign(&mut staff, a, rita).status, 303);
    assert_eq!(assign(&mut staff, b, rita).status, 303);

    let mut r = Client::new(&app);
    r.login("rita", PASSWORD);
    // The queue leads to the first application to score.
    let queue = r.get("/scholarships/reviews").body.replace("&#x2F;", "/");
    assert!(
        queue.contains(&format!(
            "href=\"/scholarships/applications/{a}/review\" rel=\"next\">Next application: ada"
        )),
        "{queue}"
    );
    // The form: the statement beside the scores, what each criterion and each score means, and
    // the next application after this one.
    let page = r
        .get(&format!("/scholarships/applications/{a}/review"))
        .body
        .replace("&#x2F;", "/");
    let statement = page
        .find("I will build a rainwater garden for the dorms")
        .expect("the statement on the review form");
    let form = page.find("id=\"review-form\"").unwrap();
    assert!(statement < form, "the statement comes with the form");
    for text in [
        "Grades, the courses taken and the academic record so far.",
        "How clearly and convincingly the statement makes the case.",
        "<option value=\"1\">1: does not meet the criterion</option>",
        "<option value=\"3\">3: meets the criterion</option>",
        "<option value=\"5\">5: exceptional</option>",
        "aria-describedby=\"hint-merit rubric-scale\"",
    ] {
        assert!(page.contains(text), "{text} in the review form");
    }
    assert!(page.contains(&format!(
        "href=\"/scholarships/applications/{b}/review\" rel=\"next\">Next application: bob (Queue fund)"
    )));

    // Scored, Ada's leaves the queue: next is Bob's, and on Bob's nothing else waits.
    assert_eq!(score(&mut r, a, ["4", "4", "4", "4"]).status, 303);
    let queue = r.get("/scholarships/reviews").body.replace("&#x2F;", "/");
    assert!(queue.contains(&format!(
        "href=\"/scholarships/applications/{b}/review\" rel=\"next\">Next application: bob"
    )));
    r.get(&format!("/scholarships/applications/{b}/review"))
        .assert_contains("No other application waits for your score.");
    // Going back to revise Ada's, the next one is still Bob's.
    let page = r
        .get(&format!("/scholarships/applications/{a}/review"))
        .body
        .replace("&#x2F;", "/");
    assert!(page.contains(&format!(
        "/scholarships/applications/{b}/review\" rel=\"next\""
    )));
}
