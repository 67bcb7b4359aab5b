//! History as a product: replay an entity step by step (the state after each event, folded by
//! the context's decider, with what changed), and the page of one event (what caused it, what it
//! caused). Both scoped like the history: someone who may not see it gets "not found".

mod common;
mod scholarships_support;

use common::{create_user, Client, TestApp, PASSWORD};
use diesel::prelude::*;
use scholarships_support::*;
use serde_json::json;

/// The positions of the events of one type, in log order.
fn positions_of(app: &TestApp, event_type: &str) -> Vec<i64> {
    use heyboss::schema::events;
    let mut conn = app.state.pool.get().unwrap();
    events::table
        .filter(events::event_type.eq(event_type))
        .order(events::position.asc())
        .select(events::position)
        .load(&mut conn)
        .unwrap()
}

/// An address as the templates write it in an attribute (Tera escapes `/`).
fn esc(s: &str) -> String {
    s.replace('/', "&#x2F;")
}

/// The row of one field in the replay's diff table (from its `<tr>` to its `</tr>`).
fn diff_row<'a>(body: &'a str, label: &str) -> &'a str {
    let at = body
        .find(&format!("<th scope=\"row\">{label}</th>"))
        .unwrap_or_else(|| panic!("no field {label:?} in:\n{body}"));
    let start = body[..at].rfind("<tr").unwrap();
    let end = at + body[at..].find("</tr>").unwrap();
    &body[start..end]
}

#[test]
fn an_enrollment_is_replayed_step_by_step_with_what_each_event_changed() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    create_user(&app, "mallory", "student", PASSWORD);
    append_enrollment(
        &app,
        ada,
        "CoursesRegistered",
        json!({ "term": "2027-fall" }),
    );
    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    let history = format!("/history/enrollment/{ada}");

    // The history page opens on the last step: the state now.
    let res = admin.get(&history);
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("Event 9 of 9")
        .assert_contains("Courses registered");
    assert!(diff_row(&res.body, "Courses").contains("<ins>CS101</ins>"));
    assert!(diff_row(&res.body, "Courses").contains("changed"));
    assert!(
        !diff_row(&res.body, "Term").contains("<ins>"),
        "the term did not change"
    );

    // The first step: the inquiry sets the step and the term.
    let res = admin.get(&format!("{history}?step=1"));
    res.assert_contains("Event 1 of 9")
        .assert_contains("Inquired");
    assert!(diff_row(&res.body, "Step").contains("<ins>Inquiry</ins>"));
    assert!(diff_row(&res.body, "Term").contains("<ins>2027-fall</ins>"));
    assert!(
        !res.body.contains("rel=\"prev\""),
        "no previous step before the first"
    );
    res.assert_contains(&format!("href=\"{}?step=2#replay\"", esc(&history)));

    // Step 5, the identification: it changed from no to yes, and with both documents in, the
    // step moved on; nothing else changed.
    let res = admin.get(&format!("{history}?step=5"));
    res.assert_contains("Event 5 of 9")
        .assert_contains("Document received");
    let row = diff_row(&res.body, "Identification received");
    assert!(
        row.contains("<del>no</del>") && row.contains("<ins>yes</ins>"),
        "{row}"
    );
    assert!(diff_row(&res.body, "Transcript received").contains("<td>yes</td>"));
    assert!(diff_row(&res.body, "Step").contains("<ins>Documents received</ins>"));
    res.assert_contains("2 fields changed");

    // With HTMX the stepper alone is swapped; without, the link goes to the page at that step.
    let res = admin.get_htmx(&format!("{history}/replay?step=2"));
    assert_eq!(res.status, 200);
    assert!(res
        .body
        .trim_start()
        .starts_with("<section class=\"card\" id=\"replay\""));
    res.assert_contains("Event 2 of 9")
        .assert_contains("Application started");
    assert!(!res.body.contains("<html"));
    let res = admin.get(&format!("{history}/replay?step=2"));
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location"),
        Some(format!("{history}?step=2#replay").as_str())
    );

    // A step past the end shows the last; a step that is not a number is refused.
    admin
        .get(&format!("{history}?step=99"))
        .assert_contains("Event 9 of 9");
    let res = admin.get(&format!("{history}?step=two"));
    assert_eq!(res.status, 400);
    res.assert_contains("is not a step");

    // The student sees their own history and its replay (they caused every event).
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    student
        .get(&format!("{history}?step=1"))
        .assert_contains("Event 1 of 9");

    // Another student may not see it: not found, for the page, the fragment and the events.
    let mut other = Client::new(&app);
    other.login("mallory", PASSWORD);
    assert_eq!(other.get(&format!("{history}?step=1")).status, 404);
    assert_eq!(
        other.get_htmx(&format!("{history}/replay?step=1")).status,
        404
    );
    let inquired = positions_of(&app, "Inquired")[0];
    assert_eq!(other.get(&format!("/events/{inquired}")).status, 404);
    assert_eq!(student.get(&format!("/events/{inquired}")).status, 200);
}

#[test]
fn a_fund_replays_its_budget_and_awards() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    create_user(&app, "root", "admin", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Replay fund", "5000");
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    apply_and_award(&app, &mut staff, &mut student, fund, ada, "1,500");

    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    let res = admin.get(&format!("/history/fund/{fund}?step=1"));
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(diff_row(&res.body, "Budget").contains("<ins>$5,000.00</ins>"));
    let res = admin.get(&format!("/history/fund/{fund}"));
    res.assert_contains("Award granted");
    let remaining = diff_row(&res.body, "Remaining");
    assert!(
        remaining.contains("<del>$5,000.00</del>") && remaining.contains("<ins>$3,500.00</ins>"),
        "{remaining}"
    );
    assert!(
        diff_row(&res.body, &format!("Decision for student {ada}")).contains("added"),
        "the decision appears with the award"
    );
    // The student did not cause the fund's events: its history is not theirs to see.
    assert_eq!(student.get(&format!("/history/fund/{fund}")).status, 404);
}

#[test]
fn an_event_page_links_an_enrollment_and_the_award_it_set_off_both_ways() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    create_user(&app, "root", "admin", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    create_user(&app, "mallory", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Chain fund", "5000");
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    let a = apply_and_award(&app, &mut staff, &mut student, fund, ada, "2,500");
    student.get("/scholarships");
    let res = student.post(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    let enrolled = positions_of(&app, "Enrolled")[0];
    let disbursed = positions_of(&app, "AwardDisbursed")[0];

    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    // The enrollment: by the student (by name), and what it caused is the disbursement.
    let res = admin.get(&format!("/events/{enrolled}"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("ada (ada)").assert_contains(&format!(
        "href=\"{}\"",
        esc(&format!("/history/enrollment/{ada}"))
    ));
    let caused = section(&res.body, "caused");
    assert!(
        caused.contains(&format!("href=\"/events/{disbursed}\""))
            && caused.contains("AwardDisbursed"),
        "{caused}"
    );
    assert!(section(&res.body, "caused-by").contains("a person or a sensor did"));

    // The disbursement: by the system's reaction, caused by the enrollment, in the same chain.
    let res = admin.get(&format!("/events/{disbursed}"));
    assert_eq!(res.status, 200);
    res.assert_contains("the system (scholarships-enrollment-reaction)")
        .assert_contains("(the command that caused it)");
    let caused_by = section(&res.body, "caused-by");
    assert!(
        caused_by.contains(&format!("href=\"/events/{enrolled}\"")),
        "{caused_by}"
    );
    let chain = section(&res.body, "chain");
    assert!(chain.contains(&format!("href=\"/events/{enrolled}\"")));
    assert!(chain.contains("this event"));

    // The history and the audit log link to the event pages.
    admin
        .get(&format!("/history/enrollment/{ada}"))
        .assert_contains(&format!("href=\"/events/{enrolled}\""));
    admin
        .get("/audit?event_type=AwardDisbursed")
        .assert_contains(&format!("href=\"/events/{disbursed}\""));

    // The student sees their enrollment, but not the fund's disbursement (not their history),
    // nor is it listed on their enrollment's page.
    let res = student.get(&format!("/events/{enrolled}"));
    assert_eq!(res.status, 200);
    assert!(!res.body.contains(&format!("/events/{disbursed}\"")));
    assert_eq!(student.get(&format!("/events/{disbursed}")).status, 404);
    // Another student sees neither; nor does a position that names nothing, or no number.
    let mut other = Client::new(&app);
    other.login("mallory", PASSWORD);
    assert_eq!(other.get(&format!("/events/{enrolled}")).status, 404);
    assert_eq!(other.get(&format!("/events/{disbursed}")).status, 404);
    assert_eq!(admin.get("/events/999999999").status, 404);
    assert_eq!(admin.get("/events/latest").status, 404);
    // Signed out: sign in first.
    let mut anonymous = Client::new(&app);
    assert_ne!(anonymous.get(&format!("/events/{enrolled}")).status, 200);
}

/// The `<section id="ID">` of a page, up to its end.
fn section<'a>(body: &'a str, id: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = start + body[start..].find("</section>").unwrap();
    &body[start..end]
}
