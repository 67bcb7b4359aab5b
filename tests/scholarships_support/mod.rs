//! Helpers for the scholarships tests: funds and applications through the real pages, and
//! enrollment events appended as the enrollment context would.
#![allow(dead_code)]

use diesel::prelude::*;
use heyboss::es::{Actor, CommandContext, Metadata};
use heyboss::schema::{scholarship_applications as apps, scholarship_funds as funds};
use uuid::Uuid;

use crate::common::{Client, TestApp};

/// A user registered by event alone (no password: cannot sign in), fast for bulk tests.
pub fn register_without_password(app: &TestApp, username: &str, role: &str) -> Uuid {
    use heyboss::accounts::{Account, AccountCommand, Role};
    let mut conn = app.state.pool.get().unwrap();
    let id = Uuid::new_v4();
    app.state
        .store
        .execute::<Account>(
            &mut conn,
            &id.to_string(),
            &AccountCommand::Register {
                username: username.into(),
                display_name: format!("Student {username}"),
                email: String::new(),
                role: Role::parse(role).unwrap(),
            },
            &CommandContext::new(Metadata::new(Actor::Cli)),
        )
        .unwrap();
    id
}

/// Create and open a fund through the staff pages; returns its id.
pub fn create_open_fund(staff: &mut Client, name: &str, budget: &str) -> Uuid {
    staff.get("/scholarships/funds");
    let res = staff.post(
        "/scholarships/funds",
        &[
            ("name", name),
            ("term", "2027-fall"),
            ("budget", budget),
            ("criteria", "Good grades and a clear plan"),
            ("opens_on", "2020-01-01"),
            ("closes_on", "2099-12-31"),
        ],
    );
    assert_eq!(res.status, 303, "fund creation failed: {}", res.body);
    let id: Uuid = res
        .header("location")
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let res = staff.post(
        &format!("/scholarships/funds/{id}/window"),
        &[("open", "true")],
    );
    assert_eq!(res.status, 303, "opening failed: {}", res.body);
    id
}

/// The application of a student to a fund (read model).
pub fn application_id(app: &TestApp, fund: Uuid, student: Uuid) -> Uuid {
    let mut conn = app.state.pool.get().unwrap();
    apps::table
        .filter(apps::fund_id.eq(fund))
        .filter(apps::student_id.eq(student))
        .select(apps::id)
        .first(&mut conn)
        .unwrap()
}

/// Apply directly through the store (for students who never sign in).
pub fn apply_directly(app: &TestApp, fund: Uuid, student: Uuid) -> Uuid {
    use heyboss::scholarships::commands::{ApplicationCommand, FundWindow};
    let mut conn = app.state.pool.get().unwrap();
    let id = Uuid::new_v4();
    let today = chrono::Utc::now().date_naive();
    app.state
        .store
        .execute::<heyboss::scholarships::Application>(
            &mut conn,
            &id.to_string(),
            &ApplicationCommand::Submit {
                fund_id: fund,
                student_id: student,
                statement: "I would put it to good use".into(),
                fund: FundWindow {
                    exists: true,
                    is_open: true,
                    opens_on: today,
                    closes_on: today,
                },
                today,
            },
            &CommandContext::new(Metadata::new(Actor::User(student))),
        )
        .unwrap();
    id
}

pub fn awarded_cents(app: &TestApp, fund: Uuid) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    funds::table
        .find(fund)
        .select(funds::awarded_cents)
        .first(&mut conn)
        .unwrap()
}

/// Move a student's enrollment through the real enrollment context: `"Enrolled"` walks every
/// step up to enrolled (`"CoursesRegistered"` stops just before), `"Inquired"` starts one, `"Withdrawn"` withdraws with `payload["reason"]`.
/// When the app runs its subscribers, this then waits until the scholarships' reaction (a
/// catch-up subscriber) has handled an `Enrolled` or `Withdrawn` it appended.
pub fn append_enrollment(
    app: &TestApp,
    student: Uuid,
    event_type: &str,
    payload: serde_json::Value,
) {
    let position = append_enrollment_without_waiting(app, student, event_type, payload);
    if app.state.settings.run_subscribers && matches!(event_type, "Enrolled" | "Withdrawn") {
        wait_for_reaction(app, position);
    }
}

/// [`append_enrollment`] without waiting for the reaction; returns the last event's position.
pub fn append_enrollment_without_waiting(
    app: &TestApp,
    student: Uuid,
    event_type: &str,
    payload: serde_json::Value,
) -> i64 {
    use heyboss::enrollment::{Decision, Document, Enrollment, EnrollmentCommand as C, Term};
    let mut conn = app.state.pool.get().unwrap();
    let stream = student.to_string();
    let run = |conn: &mut PgConnection, command: C| {
        let ctx = CommandContext::new(Metadata::new(Actor::User(student)));
        app.state
            .store
            .execute::<Enrollment>(conn, &stream, &command, &ctx)
    };
    let outcome = match event_type {
        "Inquired" => {
            let term = Term::parse(payload["term"].as_str().unwrap_or("2027-fall")).unwrap();
            run(&mut conn, C::Inquire { term }).expect("the inquiry is recorded")
        }
        "Enrolled" | "CoursesRegistered" => {
            let term = Term::parse(payload["term"].as_str().unwrap_or("2027-fall")).unwrap();
            // Steps already taken are rejected by the decider; the walk goes on from there.
            let mut last = None;
            for command in [
                C::Inquire { term },
                C::StartApplication,
                C::SubmitApplication,
                C::RecordDocument {
                    document: Document::Transcript,
                },
                C::RecordDocument {
                    document: Document::Identification,
                },
                C::DecideAdmission {
                    decision: Decision::Admitted,
                },
                C::AcceptOffer {
                    deposit_cents: 25_000,
                },
                C::CompleteOrientation,
                C::RegisterCourses {
                    courses: vec!["CS101".into()],
                },
            ] {
                last = run(&mut conn, command).ok().or(last);
            }
            if event_type == "Enrolled" {
                run(&mut conn, C::ConfirmEnrollment).expect("the student is enrolled")
            } else {
                last.expect("the courses are registered")
            }
        }
        "Withdrawn" => {
            let reason = payload["reason"].as_str().unwrap_or("").to_owned();
            run(&mut conn, C::Withdraw { reason }).expect("the student withdraws")
        }
        "Reinstated" => run(&mut conn, C::Reinstate).expect("the student is reinstated"),
        other => panic!("no enrollment path for {other}"),
    };
    outcome.last_position().expect("an enrollment event")
}

/// Wait until the running enrollment reaction has handled the event at `position`.
pub fn wait_for_reaction(app: &TestApp, position: i64) {
    let mut conn = app.state.pool.get().unwrap();
    assert!(
        heyboss::es::subscriber::wait_for(
            &mut conn,
            heyboss::scholarships::reactor::REACTOR_NAME,
            position,
            std::time::Duration::from_secs(20),
        )
        .unwrap(),
        "the enrollment reaction handled position {position}"
    );
}

/// Run the enrollment reaction (for apps started without subscribers) until it has handled
/// `expected` events, or only once when `expected` is 0; returns how many it handled. A
/// transaction open anywhere on the server (another test's) holds the commit-safe reader back
/// for a moment, so it retries for a while.
pub fn catch_up_reaction(app: &TestApp, expected: u64) -> u64 {
    let sub = heyboss::scholarships::EnrollmentReaction {
        store: app.state.store.clone(),
    };
    let mut conn = app.state.pool.get().unwrap();
    let mut total = 0;
    for _ in 0..800 {
        total += heyboss::es::subscriber::catch_up(&mut conn, &sub, 500).unwrap();
        if total >= expected {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    total
}

/// Events of one type with their payload and metadata, in log order.
pub fn events_of(app: &TestApp, event_type: &str) -> Vec<(serde_json::Value, serde_json::Value)> {
    use heyboss::schema::events;
    let mut conn = app.state.pool.get().unwrap();
    events::table
        .filter(events::event_type.eq(event_type))
        .order(events::position.asc())
        .select((events::payload, events::metadata))
        .load(&mut conn)
        .unwrap()
}

/// The student applies to an open fund ("please") and the committee awards `amount`
/// ("excellent"); returns the application.
pub fn apply_and_award(
    app: &TestApp,
    staff: &mut Client,
    student: &mut Client,
    fund: Uuid,
    student_id: Uuid,
    amount: &str,
) -> Uuid {
    student.get("/scholarships");
    student.post(
        &format!("/scholarships/funds/{fund}/apply"),
        &[("statement", "please")],
    );
    let application = application_id(app, fund, student_id);
    staff.get("/scholarships/funds");
    let res = staff.post(
        &format!("/scholarships/applications/{application}/decision"),
        &[
            ("outcome", "award"),
            ("amount", amount),
            ("reason", "excellent"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    application
}

/// A student who applied and later joined the staff (an admin's role change, by the CLI).
pub fn promote_to_staff(app: &TestApp, user: Uuid) {
    use heyboss::accounts::{Account, AccountCommand, Role};
    let mut conn = app.state.pool.get().unwrap();
    app.state
        .store
        .execute::<Account>(
            &mut conn,
            &user.to_string(),
            &AccountCommand::ChangeRole { role: Role::Staff },
            &CommandContext::new(Metadata::new(Actor::Cli)),
        )
        .unwrap();
}
