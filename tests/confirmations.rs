//! Nothing destructive in one click, without JavaScript: a destructive form posted without
//! `confirm=yes` answers with a page asking the question, whose form posts the same fields
//! again with it (and the session's CSRF token); only then is the action applied. With HTMX the
//! question shows in the page's message area. (With JavaScript the browser asks first:
//! tests/e2e_journeys.rs.)

mod common;

use common::forms::forms;
use common::{count_events, create_user, Client, TestApp, PASSWORD};

#[test]
fn withdrawing_asks_first_and_applies_only_once_confirmed() {
    let app = TestApp::spawn();
    create_user(&app, "leo", "student", PASSWORD);
    let mut s = Client::new(&app);
    s.login("leo", PASSWORD);
    let page = s.get("/enrollment").body;
    let begin = forms(&page)
        .into_iter()
        .find(|f| f.action == "/enrollment/actions/inquire")
        .expect("the inquiry form");
    assert_eq!(s.submit(&begin, &[]).status, 303);

    let page = s.get("/enrollment").body;
    let withdraw = forms(&page)
        .into_iter()
        .find(|f| f.action == "/enrollment/actions/withdraw")
        .expect("the withdraw form");
    let asked = s.submit(&withdraw, &[("reason", "moving abroad")]);
    assert_eq!(asked.status, 200, "{}", asked.body);
    asked
        .assert_contains("<h1>Withdraw your application?</h1>")
        .assert_contains(">Cancel</a>");
    assert_eq!(count_events(&app, "Withdrawn"), 0, "nothing is applied yet");
    assert!(!s.get("/enrollment").body.contains("You have withdrawn"));

    let confirm = forms(&asked.body)
        .into_iter()
        .find(|f| f.action == "/enrollment/actions/withdraw")
        .expect("the confirmation re-posts the form");
    assert_eq!(confirm.value("confirm"), Some("yes"));
    assert_eq!(confirm.value("reason"), Some("moving abroad"));
    assert_eq!(
        confirm.value("command_id"),
        withdraw.value("command_id"),
        "the same form instance: a double click is still applied once"
    );
    // The CSRF check still holds for the confirmed post.
    let mut forged = confirm.clone();
    forged.fields.retain(|f| f.name != "csrf_token");
    assert_eq!(s.submit(&forged, &[]).status, 403);
    assert_eq!(count_events(&app, "Withdrawn"), 0);

    let done = s.submit(&confirm, &[]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(count_events(&app, "Withdrawn"), 1);
    assert!(s.get("/enrollment").body.contains("You have withdrawn"));
    // The same confirmation posted again (a double click) records nothing more.
    s.submit(&confirm, &[]);
    assert_eq!(count_events(&app, "Withdrawn"), 1);
}

#[test]
fn an_unconfirmed_htmx_post_shows_the_question_in_the_message_area() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    admin
        .get("/admin/projections")
        .assert_contains("data-confirm=\"Rebuild users?");

    let res = admin.post_htmx("/admin/projections/users/rebuild", &[]);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("HX-Retarget"), Some("#messages"));
    res.assert_contains("Rebuild this projection?")
        .assert_contains("name=\"confirm\" value=\"yes\"");
    assert!(
        !admin
            .get_htmx("/admin/projections/users/progress")
            .body
            .contains("rebuild"),
        "no rebuild started"
    );
    // Verify is not destructive: it runs at once.
    let res = admin.post_htmx("/admin/projections/users/verify", &[]);
    assert!(!res.body.contains("name=\"confirm\""), "{}", res.body);
}
