//! The reaction to enrollment: an accepted award is disbursed when the student is enrolled and
//! revoked (with the reason) when the student withdraws; each reaction is an event of its own,
//! caused by the enrollment event, so the application's history shows why.

mod common;
mod scholarships_support;

use common::{create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;
use serde_json::json;

#[test]
fn an_accepted_award_is_disbursed_on_enrollment_and_revoked_on_withdrawal() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Enrollment fund", "5000");
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    let a = apply_and_award(&app, &mut staff, &mut student, fund, ada, "2,500");

    // Enrolled before accepting: nothing to disburse yet.
    student.get("/scholarships");
    let res = student.post_htmx(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("hx-trigger"), Some("AwardAccepted"));
    res.assert_contains("once you are enrolled");
    assert!(events_of(&app, "AwardDisbursed").is_empty());

    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    let disbursed = events_of(&app, "AwardDisbursed");
    assert_eq!(disbursed.len(), 1);
    let (payload, meta) = &disbursed[0];
    assert_eq!(payload["amount_cents"], 250_000);
    assert_eq!(payload["reason"], "the student is enrolled");
    assert_eq!(meta["actor"]["kind"], "system");
    assert_eq!(meta["actor"]["id"], "scholarships-enrollment-reaction");
    assert!(
        meta["causation_id"].is_string(),
        "the enrollment event is the cause"
    );
    student.get("/scholarships").assert_contains("disbursed");

    // Withdrawal is only possible before enrollment: a second student accepts an award, then
    // withdraws, and the award is revoked with the reason.
    let bea = create_user(&app, "bea", "student", PASSWORD);
    let mut student_b = Client::new(&app);
    student_b.login("bea", PASSWORD);
    student_b.get("/scholarships");
    student_b.post(
        &format!("/scholarships/funds/{fund}/apply"),
        &[("statement", "me too")],
    );
    let b = application_id(&app, fund, bea);
    staff.get("/scholarships/funds");
    let res = staff.post(
        &format!("/scholarships/applications/{b}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "1,000"),
            ("reason", "promising"),
        ],
    );
    assert_eq!(res.status, 303);
    student_b.get("/scholarships");
    let res = student_b.post(
        &format!("/scholarships/applications/{b}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303);
    assert_eq!(awarded_cents(&app, fund), 350_000);
    append_enrollment(&app, bea, "Inquired", json!({ "term": "2027-fall" }));
    append_enrollment(&app, bea, "Withdrawn", json!({ "reason": "moved abroad" }));
    let revoked = events_of(&app, "AwardRevoked");
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].0["reason"], "the student withdrew: moved abroad");
    assert_eq!(
        awarded_cents(&app, fund),
        250_000,
        "the revoked money returns to the budget"
    );

    let history = staff.get(&format!("/scholarships/applications/{a}"));
    history
        .assert_contains("AwardDisbursed")
        .assert_contains("the student is enrolled")
        .assert_contains("system (scholarships-enrollment-reaction)");
    staff
        .get(&format!("/scholarships/applications/{b}"))
        .assert_contains("AwardRevoked")
        .assert_contains("the student withdrew: moved abroad");
    staff
        .get(&format!("/scholarships/funds/{fund}/report?format=csv"))
        .assert_contains(
            ",revoked,1000.00,the student withdrew: moved abroad,scholarships-enrollment-reaction",
        );
}

#[test]
fn accepting_while_already_enrolled_disburses_at_once_and_others_are_untouched() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bob = register_without_password(&app, "bob", "student");
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Enrolled fund", "5000");
    let a = apply_directly(&app, fund, ada);
    let b = apply_directly(&app, fund, bob);
    staff.get("/scholarships/funds");
    for id in [a, b] {
        let res = staff.post(
            &format!("/scholarships/applications/{id}/decision"),
            &[("outcome", "award"), ("amount", "1000"), ("reason", "fine")],
        );
        assert_eq!(res.status, 303);
    }
    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    // Bob's award is only offered: his enrollment disburses nothing.
    append_enrollment(&app, bob, "Enrolled", json!({ "term": "2027-fall" }));
    assert!(events_of(&app, "AwardDisbursed").is_empty());

    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    student.get("/scholarships");
    let res = student.post(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303);
    let disbursed = events_of(&app, "AwardDisbursed");
    assert_eq!(disbursed.len(), 1);
    assert_eq!(disbursed[0].0["application_id"], a.to_string());
    student.get("/scholarships").assert_contains("disbursed");
    // Accepting twice is refused with the reason.
    let res = student.post(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("already disbursed");
}

#[test]
fn many_students_enrolling_at_once_all_get_their_awards_from_one_fund() {
    use heyboss::es::{Actor, CommandContext, Metadata, NewEvent};
    use heyboss::scholarships::commands::{Amount, Decision, FundCommand};
    use heyboss::scholarships::Fund;
    use std::sync::{Arc, Barrier};

    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Busy fund", "100,000");
    let ctx = || CommandContext::new(Metadata::new(Actor::Cli));
    let students: Vec<uuid::Uuid> = (0..16)
        .map(|i| {
            let s = register_without_password(&app, &format!("enrollee{i:02}"), "student");
            let a = apply_directly(&app, fund, s);
            let mut conn = app.state.pool.get().unwrap();
            for command in [
                FundCommand::Decide {
                    application_id: a,
                    student_id: s,
                    decision: Decision::Award(Amount::from_cents(100_000)),
                    reason: "ok".into(),
                },
                FundCommand::AcceptAward {
                    application_id: a,
                    student_id: s,
                    enrolled: false,
                },
            ] {
                app.state
                    .store
                    .execute::<Fund>(&mut conn, &fund.to_string(), &command, &ctx())
                    .unwrap();
            }
            s
        })
        .collect();
    // Every enrollment's reaction appends to the same fund stream at the same moment: the
    // reactions conflict with each other and must re-decide rather than fail the enrollment.
    let barrier = Arc::new(Barrier::new(students.len()));
    let handles: Vec<_> = students
        .iter()
        .map(|&s| {
            let (pool, store, barrier) = (
                app.state.pool.clone(),
                app.state.store.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                let mut conn = pool.get().unwrap();
                diesel::Connection::transaction(&mut *conn, |conn| {
                    store
                        .append_in(
                            conn,
                            "enrollment",
                            &s.to_string(),
                            0,
                            &[NewEvent {
                                event_type: "Enrolled".into(),
                                schema_version: 1,
                                payload: json!({ "term": "2027-fall" }),
                            }],
                            &Metadata::new(Actor::User(s)),
                        )
                        .map(|_| ())
                })
                .map_err(|e| e.to_string())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("every enrollment commits");
    }
    assert_eq!(events_of(&app, "AwardDisbursed").len(), students.len());
}
