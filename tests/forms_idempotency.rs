//! Every form instance has an idempotency key of its own, bound to the command it was first used
//! for: a double submit is applied once and answered as the first was; the same key with another
//! command is refused (409) and records nothing; what a first post created is what a repeat
//! lands on.

mod common;
mod scholarships_support;

use common::forms::{self, Form};
use common::{count_events, create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;

/// The committee board of a fund with two applications, as one rendered page.
fn board_with_two_applications(app: &TestApp) -> (Client, uuid::Uuid, Vec<Form>) {
    create_user(app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Merit", "10000");
    for name in ["ana", "ben"] {
        let student = register_without_password(app, name, "student");
        apply_directly(app, fund, student);
    }
    let board = staff.get(&format!("/scholarships/funds/{fund}"));
    assert_eq!(board.status, 200);
    let decisions: Vec<Form> = forms::forms(&board.body)
        .into_iter()
        .filter(|f| f.action.ends_with("/decision"))
        .collect();
    assert_eq!(decisions.len(), 2, "one decision form per application");
    (staff, fund, decisions)
}

fn award(amount: &str) -> [(&'static str, String); 3] {
    [
        ("outcome", "award".into()),
        ("amount", amount.into()),
        ("reason", "Strong application".into()),
    ]
}

fn changes<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn two_awards_decided_from_one_render_of_the_board_are_both_recorded() {
    let app = TestApp::spawn();
    let (mut staff, fund, decisions) = board_with_two_applications(&app);
    assert_ne!(
        decisions[0].value("command_id"),
        decisions[1].value("command_id"),
        "each form has its own key"
    );
    let a = staff.submit(&decisions[0], &changes(&award("2,000")));
    assert_eq!(a.status, 303, "{}", a.body);
    let b = staff.submit(&decisions[1], &changes(&award("1,500")));
    assert_eq!(b.status, 303, "{}", b.body);
    assert_eq!(count_events(&app, "AwardGranted"), 2);
    assert_eq!(awarded_cents(&app, fund), 350_000);
}

#[test]
fn a_key_used_again_for_another_command_is_refused_and_the_same_command_answers_as_before() {
    let app = TestApp::spawn();
    let (mut staff, fund, decisions) = board_with_two_applications(&app);
    let first = staff.submit(&decisions[0], &changes(&award("2,000")));
    assert_eq!(first.status, 303, "{}", first.body);

    // The back button: the same form, another amount. Refused, and nothing is recorded.
    let other = staff.submit(&decisions[0], &changes(&award("2,500")));
    assert_eq!(other.status, 409, "{}", other.body);
    other
        .assert_contains("already used")
        .assert_contains("Reload");
    // The same key for the other application's form (a form's key copied by a stale page).
    let mut copied = decisions[1].clone();
    for f in &mut copied.fields {
        if f.name == "command_id" {
            f.value = decisions[0].value("command_id").unwrap().to_owned();
        }
    }
    let copy = staff.submit(&copied, &changes(&award("2,000")));
    assert_eq!(copy.status, 409, "{}", copy.body);
    assert_eq!(count_events(&app, "AwardGranted"), 1);
    assert_eq!(awarded_cents(&app, fund), 200_000);

    // A double click: the same form with the same values answers as the first did.
    let again = staff.submit(&decisions[0], &changes(&award("2,000")));
    assert_eq!(again.status, 303, "{}", again.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(count_events(&app, "AwardGranted"), 1);
}

#[test]
fn a_repeated_create_fund_lands_on_the_fund_it_created() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let page = staff.get("/scholarships/funds");
    let create = forms::forms(&page.body)
        .into_iter()
        .find(|f| f.action == "/scholarships/funds")
        .expect("the create form");
    let fields = [
        ("name", "Merit"),
        ("term", "2027-fall"),
        ("budget", "10000"),
        ("criteria", "Good grades"),
        ("opens_on", "2020-01-01"),
        ("closes_on", "2099-12-31"),
    ];
    let first = staff.submit(&create, &fields);
    let second = staff.submit(&create, &fields);
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(second.status, 303, "{}", second.body);
    let location = first.header("location").unwrap().to_owned();
    assert_eq!(second.header("location"), Some(location.as_str()));
    assert_eq!(staff.get(&location).status, 200, "the fund exists");
    assert_eq!(count_events(&app, "FundCreated"), 1);
}

#[test]
fn a_double_submitted_application_answers_as_the_first() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Merit", "10000");
    create_user(&app, "stu", "student", PASSWORD);
    let mut student = Client::new(&app);
    student.login("stu", PASSWORD);
    let page = student.get("/scholarships");
    let apply = forms::forms(&page.body)
        .into_iter()
        .find(|f| f.action == format!("/scholarships/funds/{fund}/apply"))
        .expect("the apply form");
    let statement = [("statement", "I study hard")];
    assert_eq!(student.submit(&apply, &statement).status, 303);
    let again = student.submit(&apply, &statement);
    assert_eq!(
        again.status, 303,
        "the first outcome, not 'already applied': {}",
        again.body
    );
    assert_eq!(count_events(&app, "ScholarshipApplied"), 1);
}

#[test]
fn an_htmx_post_is_checked_like_a_form_and_bound_like_one() {
    let app = TestApp::spawn();
    let (mut staff, _, decisions) = board_with_two_applications(&app);
    let key = decisions[0].value("command_id").unwrap().to_owned();
    let path = decisions[0].action.clone();
    // Text that is not UTF-8, with the token in the header as HTMX sends it: refused.
    let bad = staff.post_htmx_raw(
        &path,
        format!("command_id={key}&outcome=decline&reason=bad%FF%FEutf8").as_bytes(),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(count_events(&app, "ApplicationDeclined"), 0);
    let ok = staff.post_htmx(
        &path,
        &[
            ("command_id", &key),
            ("outcome", "decline"),
            ("reason", "Not this year"),
        ],
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let reused = staff.post_htmx(
        &path,
        &[
            ("command_id", &key),
            ("outcome", "decline"),
            ("reason", "Another reason"),
        ],
    );
    assert_eq!(reused.status, 409, "{}", reused.body);
    assert_eq!(count_events(&app, "ApplicationDeclined"), 1);
}
