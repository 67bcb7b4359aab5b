//! The reaction to enrollment: an accepted award is disbursed when the student is enrolled and
//! revoked (with the reason) when the student withdraws; each reaction is an event of its own,
//! caused by the enrollment event, so the application's history shows why. The reaction is a
//! catch-up subscriber: after the enrollment commits, exactly once, replays changing nothing.

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

    append_enrollment_without_waiting(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    // The reaction runs after the enrollment commits; the student's page waits for it.
    student
        .get("/scholarships")
        .assert_contains("<span class=\"badge\">disbursed</span>");
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
    student
        .get("/scholarships")
        .assert_contains("<span class=\"badge\">disbursed</span>");

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
    student
        .get("/scholarships")
        .assert_contains("<span class=\"badge\">disbursed</span>");
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
    // Every student enrolls at the same moment; the reaction (after commit) disburses every
    // award from the one fund stream, and no enrollment waits for or fails on the fund.
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
                        .map(|appended| appended[0].position)
                })
                .map_err(|e| e.to_string())
            })
        })
        .collect();
    for h in handles {
        let position = h.join().unwrap().expect("every enrollment commits");
        wait_for_reaction(&app, position);
    }
    assert_eq!(events_of(&app, "AwardDisbursed").len(), students.len());
}

/// An app whose subscribers do not run: the test drives the reaction itself.
fn app_without_subscribers() -> (TestApp, Client) {
    let app = TestApp::spawn_with(|s| s.run_subscribers = false);
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    (app, staff)
}

/// The committee awards `cents` to the student's new application (directly through the
/// store), and the student accepts when `accept`; returns the application.
fn award_directly(
    app: &TestApp,
    fund: uuid::Uuid,
    student: uuid::Uuid,
    accept: bool,
) -> uuid::Uuid {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::scholarships::commands::{Amount, Decision, FundCommand};
    use heyboss::scholarships::Fund;
    let a = apply_directly(app, fund, student);
    let mut commands = vec![FundCommand::Decide {
        application_id: a,
        student_id: student,
        decision: Decision::Award(Amount::from_cents(50_000)),
        reason: "ok".into(),
    }];
    if accept {
        commands.push(FundCommand::AcceptAward {
            application_id: a,
            student_id: student,
            enrolled: false,
        });
    }
    let mut conn = app.state.pool.get().unwrap();
    for command in commands {
        app.state
            .store
            .execute::<Fund>(
                &mut conn,
                &fund.to_string(),
                &command,
                &CommandContext::new(Metadata::new(Actor::Cli)),
            )
            .unwrap();
    }
    a
}

fn award_status(app: &TestApp, application: uuid::Uuid) -> String {
    use diesel::prelude::*;
    use heyboss::schema::scholarship_applications as apps;
    apps::table
        .find(application)
        .select(apps::award_status)
        .first::<Option<String>>(&mut app.state.pool.get().unwrap())
        .unwrap()
        .unwrap_or_default()
}

/// The last event of a type: its position, transaction id and metadata.
fn last_event(app: &TestApp, event_type: &str) -> (i64, i64, serde_json::Value) {
    use diesel::prelude::*;
    use heyboss::schema::events;
    events::table
        .filter(events::event_type.eq(event_type))
        .order(events::position.desc())
        .select((events::position, events::transaction_id, events::metadata))
        .first(&mut app.state.pool.get().unwrap())
        .unwrap()
}

fn fund_event_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use heyboss::schema::events;
    events::table
        .filter(events::stream_type.eq("fund"))
        .count()
        .get_result(&mut app.state.pool.get().unwrap())
        .unwrap()
}

#[test]
fn the_reaction_runs_after_the_enrollment_commits_caused_by_it() {
    use heyboss::es::subscriber;
    use heyboss::scholarships::reactor::REACTOR_NAME;

    let (app, mut staff) = app_without_subscribers();
    let ada = register_without_password(&app, "ada", "student");
    let fund = create_open_fund(&mut staff, "Later fund", "5000");
    let a = award_directly(&app, fund, ada, true);

    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    // The enrollment committed on its own: no fund event in its transaction.
    assert!(events_of(&app, "AwardDisbursed").is_empty());
    assert_eq!(award_status(&app, a), "accepted");

    assert_eq!(catch_up_reaction(&app, 1), 1, "one Enrolled handled");
    assert_eq!(award_status(&app, a), "disbursed");
    let disbursed = events_of(&app, "AwardDisbursed");
    assert_eq!(disbursed.len(), 1);
    let (enrolled_at, enrolled_tx, enrolled_meta) = last_event(&app, "Enrolled");
    let meta = &disbursed[0].1;
    assert_eq!(meta["actor"]["kind"], "system");
    assert_eq!(meta["actor"]["id"], REACTOR_NAME);
    assert_eq!(meta["causation_id"], enrolled_meta["command_id"]);
    assert_eq!(meta["correlation_id"], enrolled_meta["correlation_id"]);
    // The checkpoint moved with the fund event, past the enrollment event.
    let mut conn = app.state.pool.get().unwrap();
    assert!(
        subscriber::checkpoint(&mut conn, REACTOR_NAME).unwrap()
            >= Some(subscriber::Cursor {
                transaction_id: enrolled_tx,
                position: enrolled_at
            })
    );
    assert!(subscriber::reached(&mut conn, REACTOR_NAME, enrolled_at).unwrap());
    assert_eq!(catch_up_reaction(&app, 0), 0, "nothing left");
}

#[test]
fn replaying_the_enrollment_events_changes_nothing() {
    use heyboss::es::subscriber::{self, Cursor};
    use heyboss::scholarships::reactor::REACTOR_NAME;

    let (app, mut staff) = app_without_subscribers();
    let ada = register_without_password(&app, "ada", "student");
    let bea = register_without_password(&app, "bea", "student");
    let first = create_open_fund(&mut staff, "First fund", "5000");
    let second = create_open_fund(&mut staff, "Second fund", "5000");
    let a = award_directly(&app, first, ada, true);
    let b1 = award_directly(&app, first, bea, true);
    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    append_enrollment(&app, bea, "Inquired", json!({ "term": "2027-fall" }));
    append_enrollment(&app, bea, "Withdrawn", json!({ "reason": "a gap year" }));
    assert_eq!(catch_up_reaction(&app, 2), 2);
    assert_eq!(award_status(&app, a), "disbursed");
    assert_eq!(award_status(&app, b1), "revoked");
    // Bea comes back and wins a second award after her withdrawal.
    append_enrollment(&app, bea, "Reinstated", json!({}));
    let b2 = award_directly(&app, second, bea, true);
    assert_eq!(catch_up_reaction(&app, 0), 0);

    // Replay everything (as a first start on a database the inline reactor served would).
    let before = fund_event_count(&app);
    subscriber::set_checkpoint(
        &mut app.state.pool.get().unwrap(),
        REACTOR_NAME,
        Cursor::START,
    )
    .unwrap();
    assert_eq!(catch_up_reaction(&app, 2), 2, "both events handled again");
    assert_eq!(fund_event_count(&app), before, "no new fund event");
    assert_eq!(award_status(&app, a), "disbursed");
    assert_eq!(award_status(&app, b1), "revoked");
    assert_eq!(
        award_status(&app, b2),
        "accepted",
        "an award granted after the withdrawal is not revoked by it"
    );
}

#[test]
fn a_reaction_the_fund_refuses_is_skipped_without_stalling_the_subscriber() {
    use diesel::prelude::*;
    use heyboss::schema::scholarship_applications as apps;

    let (app, mut staff) = app_without_subscribers();
    let ada = register_without_password(&app, "ada", "student");
    let bob = register_without_password(&app, "bob", "student");
    let fund = create_open_fund(&mut staff, "Odd fund", "5000");
    let a = award_directly(&app, fund, ada, false);
    let b = award_directly(&app, fund, bob, true);
    // A read model out of step with the fund (as during a repair): it says ada accepted, the
    // fund knows her award is only offered, so disbursing it is refused.
    diesel::update(apps::table.find(a))
        .set(apps::award_status.eq("accepted"))
        .execute(&mut app.state.pool.get().unwrap())
        .unwrap();
    append_enrollment(&app, ada, "Enrolled", json!({ "term": "2027-fall" }));
    append_enrollment(&app, bob, "Enrolled", json!({ "term": "2027-fall" }));

    assert_eq!(
        catch_up_reaction(&app, 2),
        2,
        "both handled, the refusal skipped"
    );
    let disbursed = events_of(&app, "AwardDisbursed");
    assert_eq!(disbursed.len(), 1);
    assert_eq!(disbursed[0].0["application_id"], b.to_string());
    let (bob_enrolled, _, _) = last_event(&app, "Enrolled");
    assert!(heyboss::es::subscriber::reached(
        &mut app.state.pool.get().unwrap(),
        heyboss::scholarships::reactor::REACTOR_NAME,
        bob_enrolled
    )
    .unwrap());
    assert_eq!(catch_up_reaction(&app, 0), 0, "nothing retried");
}

#[test]
fn students_accepting_while_being_enrolled_are_disbursed_exactly_once() {
    use heyboss::accounts::{Role, Viewer};
    use heyboss::enrollment::{Enrollment, EnrollmentCommand};
    use heyboss::es::{Actor, CommandContext, Metadata};
    use std::sync::{Arc, Barrier};

    // The reaction runs after the enrollment commits: an acceptance racing the enrollment either
    // sees the student enrolled (and disburses itself) or is seen by the reaction, never neither
    // and never both.
    let app = TestApp::spawn_with(|s| s.pool_size = 24);
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Racing fund", "100,000");
    let pairs: Vec<(uuid::Uuid, uuid::Uuid)> = (0..8)
        .map(|i| {
            let s = register_without_password(&app, &format!("racer{i:02}"), "student");
            append_enrollment(&app, s, "CoursesRegistered", json!({ "term": "2027-fall" }));
            (s, award_directly(&app, fund, s, false))
        })
        .collect();
    let start = Arc::new(Barrier::new(pairs.len() * 2));
    let mut enrollments = Vec::new();
    let mut acceptances = Vec::new();
    for &(s, a) in &pairs {
        // Connections are taken before the threads start, so none can fail at the barrier.
        let (mut conn, store, barrier) = (
            app.state.pool.get().unwrap(),
            app.state.store.clone(),
            start.clone(),
        );
        enrollments.push(std::thread::spawn(move || {
            barrier.wait();
            store
                .execute::<Enrollment>(
                    &mut conn,
                    &s.to_string(),
                    &EnrollmentCommand::ConfirmEnrollment,
                    &CommandContext::new(Metadata::new(Actor::Cli)),
                )
                .unwrap()
                .last_position()
                .unwrap()
        }));
        let (mut conn, store, barrier) = (
            app.state.pool.get().unwrap(),
            app.state.store.clone(),
            start.clone(),
        );
        acceptances.push(std::thread::spawn(move || {
            let viewer = Viewer {
                user_id: s,
                username: String::new(),
                display_name: String::new(),
                role: Role::Student,
                csrf_token: String::new(),
                session_digest: String::new(),
                time_zone: None,
            };
            barrier.wait();
            heyboss::scholarships::service::respond_to_award(
                &mut conn,
                &store,
                &CommandContext::new(Metadata::new(Actor::User(s))),
                &viewer,
                a,
                true,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
        }));
    }
    for h in acceptances {
        h.join().unwrap().expect("every acceptance commits");
    }
    for h in enrollments {
        wait_for_reaction(&app, h.join().unwrap());
    }
    let disbursed = events_of(&app, "AwardDisbursed");
    for &(_, a) in &pairs {
        assert_eq!(award_status(&app, a), "disbursed", "award {a}");
        assert_eq!(
            disbursed
                .iter()
                .filter(|(p, _)| p["application_id"] == a.to_string())
                .count(),
            1,
            "award {a} is disbursed once"
        );
    }
}
