//! Demo students for `serve --demo`: one at each interesting point of the path, one withdrawn and
//! one withdrawn then reinstated. Idempotent: a student whose username exists is left alone.

use diesel::PgConnection;
use uuid::Uuid;

use super::commands::{Decision, Document, EnrollmentCommand as C, Term};
use super::service;
use crate::accounts::{queries, NewAccount};
use crate::es::{store, Actor, CommandContext, EventStore, Metadata};

/// (username, display name, how far they get)
const STUDENTS: &[(&str, &str, usize)] = &[
    ("ines", "Ines Inquirer", 0),
    ("arlo", "Arlo Applicant", 2),
    ("dana", "Dana Documents", 4),
    ("wren", "Wren Waitlisted", 5),
    ("ada", "Ada Admitted", 5),
    ("otto", "Otto Offer", 6),
    ("oren", "Oren Oriented", 7),
    ("cora", "Cora Courses", 8),
    ("enzo", "Enzo Enrolled", 9),
    ("wanda", "Wanda Withdrawn", 3),
    ("remy", "Remy Reinstated", 5),
];

/// The path of a demo student, as (command, taken by staff?).
fn path(waitlist: bool) -> Vec<(C, bool)> {
    let mut steps = vec![
        (C::StartApplication, false),
        (C::SubmitApplication, false),
        (
            C::RecordDocument {
                document: Document::Transcript,
            },
            true,
        ),
        (
            C::RecordDocument {
                document: Document::Identification,
            },
            true,
        ),
    ];
    if waitlist {
        steps.push((
            C::DecideAdmission {
                decision: Decision::Waitlisted,
            },
            true,
        ));
    }
    steps.extend([
        (
            C::DecideAdmission {
                decision: Decision::Admitted,
            },
            true,
        ),
        (
            C::AcceptOffer {
                deposit_cents: 50_000,
            },
            false,
        ),
        (C::CompleteOrientation, true),
        (
            C::RegisterCourses {
                courses: vec!["CS101".into(), "MATH201".into(), "WRIT110".into()],
            },
            false,
        ),
        (C::ConfirmEnrollment, true),
    ]);
    steps
}

/// The demo's students at many steps, their office steps recorded by the demo `staff`.
pub fn seed(state: &crate::web::AppState) -> crate::context::DemoResult {
    let mut conn = state.pool.get()?;
    let staff_id = queries::find_by_username(&mut conn, "staff")?.map(|u| u.id);
    seed_students(
        &mut conn,
        &state.store,
        crate::demo::DEMO_PASSWORD,
        staff_id,
    )
}

fn seed_students(
    conn: &mut PgConnection,
    store: &EventStore,
    password: &str,
    staff_id: Option<Uuid>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let term = Term::parse(&Term::upcoming(chrono::Utc::now().date_naive(), 1)[0])?;
    let staff = staff_id.map_or(Actor::Cli, Actor::User);
    // The foundation's demo `student` has an account but no enrollment yet: begin one.
    if let Some(u) = queries::find_by_username(conn, "student")? {
        let stream = u.id.to_string();
        if store::stream_version(conn, "enrollment", &stream)? == 0 {
            service::execute(
                conn,
                store,
                &CommandContext::new(Metadata::new(Actor::User(u.id))),
                u.id,
                &C::Inquire { term: term.clone() },
            )?;
        }
    }
    for (username, name, reach) in STUDENTS {
        if queries::username_taken(conn, username)? {
            continue;
        }
        let account = NewAccount::parse(
            username,
            name,
            &format!("{username}@students.heyboss.example"),
            "student",
            password,
        )?;
        let id = service::sign_up(conn, store, Metadata::new(Actor::Cli), account, &term)?;
        let me = Actor::User(id);
        // Wren stops at the waitlist; everyone else is admitted straight away.
        let steps = path(*username == "wren");
        for (command, by_staff) in steps.into_iter().take(*reach) {
            let actor = if by_staff { staff.clone() } else { me.clone() };
            service::execute(
                conn,
                store,
                &CommandContext::new(Metadata::new(actor)),
                id,
                &command,
            )?;
        }
        if matches!(*username, "wanda" | "remy") {
            let withdraw = C::Withdraw {
                reason: "Family reasons: deferring a year.".into(),
            };
            service::execute(
                conn,
                store,
                &CommandContext::new(Metadata::new(me.clone())),
                id,
                &withdraw,
            )?;
        }
        if *username == "remy" {
            service::execute(
                conn,
                store,
                &CommandContext::new(Metadata::new(staff.clone())),
                id,
                &C::Reinstate,
            )?;
        }
    }
    Ok(())
}
