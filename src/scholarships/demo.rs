//! Demo data: two funds and applications at every stage (submitted, assigned, reviewed and
//! revised, waitlisted, declined, awarded, accepted, refused). Idempotent: nothing is added when
//! the first demo fund exists. Extra student accounts sign in with the demo password.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::commands::{
    Amount, ApplicationCommand, Decision, FundCommand, FundWindow, ReviewCommand, Scores,
};
use super::decider::{Application, Fund, Review};
use super::events::review_stream_id;
use crate::accounts::{queries, service, NewAccount};
use crate::demo::DEMO_PASSWORD;
use crate::es::{Actor, CommandContext, EventStore, Metadata};
use crate::schema::scholarship_funds;
use crate::web::AppState;

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const FIRST_FUND: &str = "Founders' Merit Scholarship";

fn ctx() -> CommandContext {
    CommandContext::new(Metadata::new(Actor::Cli))
}

fn user(
    conn: &mut PgConnection,
    store: &EventStore,
    username: &str,
    name: &str,
    role: &str,
) -> DemoResult<Uuid> {
    if let Some(u) = queries::find_by_username(conn, username)? {
        return Ok(u.id);
    }
    let account = NewAccount::parse(
        username,
        name,
        &format!("{username}@heyboss.example"),
        role,
        DEMO_PASSWORD,
    )?;
    Ok(service::register(
        conn,
        store,
        Metadata::new(Actor::Cli),
        account,
        |_, _| Ok(()),
    )?)
}

fn fund(
    conn: &mut PgConnection,
    store: &EventStore,
    name: &str,
    budget: &str,
    criteria: &str,
    days_open: i64,
) -> DemoResult<(Uuid, FundWindow)> {
    let id = Uuid::new_v4();
    let today = Utc::now().date_naive();
    let (opens_on, closes_on) = (
        today - Duration::days(14),
        today + Duration::days(days_open),
    );
    store.execute::<Fund>(
        conn,
        &id.to_string(),
        &FundCommand::CreateFund {
            name: name.into(),
            term: "2027-fall".into(),
            budget: Amount::parse(budget)?,
            criteria: criteria.into(),
            opens_on,
            closes_on,
        },
        &ctx(),
    )?;
    store.execute::<Fund>(conn, &id.to_string(), &FundCommand::OpenFund, &ctx())?;
    Ok((
        id,
        FundWindow {
            exists: true,
            is_open: true,
            opens_on,
            closes_on,
        },
    ))
}

/// What happens to one demo application after it is submitted.
#[derive(Clone, Copy)]
enum Stage {
    Submitted,
    Assigned,
    Reviewed,
    Revised,
    Waitlisted,
    Declined,
    Awarded(&'static str),
    Accepted(&'static str),
    Refused(&'static str),
}

pub fn seed(state: &AppState) -> DemoResult<()> {
    let mut conn = state.pool.get()?;
    let conn = &mut *conn;
    let store = &state.store;
    let exists: i64 = scholarship_funds::table
        .filter(scholarship_funds::name.eq(FIRST_FUND))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(());
    }
    let staff = user(conn, store, "staff", "Sam Staff", "staff")?;
    let reviewer = user(conn, store, "reviewer", "Riley Reviewer", "staff")?;
    let mut students = vec![user(conn, store, "student", "Stu Student", "student")?];
    let names = [
        "Amara Osei",
        "Ben Carter",
        "Chen Wei",
        "Dana Novak",
        "Eli Haddad",
        "Fatima Noor",
        "Gus Moreau",
        "Hana Sato",
        "Ivan Petrov",
        "Jo Rivera",
        "Kai Lindqvist",
    ];
    for (i, name) in names.iter().enumerate() {
        students.push(user(
            conn,
            store,
            &format!("scholar{:02}", i + 1),
            name,
            "student",
        )?);
    }

    let (merit, merit_window) = fund(
        conn,
        store,
        FIRST_FUND,
        "20,000",
        "Academic excellence and a clear plan for the year ahead.",
        45,
    )?;
    let (service_fund, service_window) = fund(
        conn,
        store,
        "Community Service Grant",
        "6,000",
        "Volunteering and service to the community.",
        20,
    )?;

    use Stage::*;
    // The demo "student" has an award to accept or decline, and the service fund left to apply to.
    let merit_stages = [
        Awarded("2,500"),
        Submitted,
        Assigned,
        Reviewed,
        Revised,
        Waitlisted,
        Declined,
        Accepted("3,000"),
        Refused("1,500"),
        Awarded("2,000"),
        Reviewed,
        Submitted,
    ];
    let service_stages = [
        Reviewed,
        Accepted("1,000"),
        Declined,
        Waitlisted,
        Assigned,
        Submitted,
    ];
    let plan = merit_stages
        .iter()
        .enumerate()
        .map(|(i, s)| (merit, &merit_window, students[i], *s))
        .chain(
            service_stages
                .iter()
                .enumerate()
                .map(|(i, s)| (service_fund, &service_window, students[i + 1], *s)),
        );
    let today = Utc::now().date_naive();
    let statements = [
        "I am the first in my family at university and work evenings to pay for it.",
        "I tutor younger students in maths every weekend and want to study engineering.",
        "A scholarship would let me stop my second job and focus on my thesis.",
    ];
    for (n, (fund_id, window, student, stage)) in plan.enumerate() {
        let app = Uuid::new_v4();
        store.execute::<Application>(
            conn,
            &app.to_string(),
            &ApplicationCommand::Submit {
                fund_id,
                student_id: student,
                statement: statements[n % statements.len()].into(),
                fund: window.clone(),
                today,
            },
            &ctx(),
        )?;
        if matches!(stage, Submitted) {
            continue;
        }
        for r in [reviewer, staff] {
            store.execute::<Application>(
                conn,
                &app.to_string(),
                &ApplicationCommand::AssignReviewer { reviewer_id: r },
                &ctx(),
            )?;
        }
        if matches!(stage, Assigned) {
            continue;
        }
        let score = |values: [&str; 4], comment: &str, by: Uuid| ReviewCommand::Submit {
            application_id: app,
            reviewer_id: by,
            scores: Scores::parse(&values).expect("demo scores are valid"),
            comment: comment.into(),
            assigned: true,
            decided: false,
        };
        let base = ((n % 3) + 3).to_string();
        let b = base.as_str();
        store.execute::<Review>(
            conn,
            &review_stream_id(app, reviewer),
            &score([b, "4", b, "3"], "Convincing statement.", reviewer),
            &ctx(),
        )?;
        if matches!(stage, Reviewed) {
            continue;
        }
        store.execute::<Review>(
            conn,
            &review_stream_id(app, staff),
            &score(["3", b, "4", b], "Good record.", staff),
            &ctx(),
        )?;
        if matches!(stage, Revised) {
            store.execute::<Review>(
                conn,
                &review_stream_id(app, reviewer),
                &score([b, "5", b, "4"], "Revised after the interview.", reviewer),
                &ctx(),
            )?;
            continue;
        }
        let decide = |decision, reason: &str| FundCommand::Decide {
            application_id: app,
            student_id: student,
            decision,
            reason: reason.into(),
        };
        let fid = fund_id.to_string();
        let (command, answer) = match stage {
            Waitlisted => (
                decide(Decision::Waitlist, "Strong, but the budget is committed."),
                None,
            ),
            Declined => (
                decide(Decision::Decline, "Does not meet the criteria this term."),
                None,
            ),
            Awarded(a) => (
                decide(Decision::Award(Amount::parse(a)?), "Ranked near the top."),
                None,
            ),
            Accepted(a) => (
                decide(
                    Decision::Award(Amount::parse(a)?),
                    "Ranked first by both reviewers.",
                ),
                Some(true),
            ),
            Refused(a) => (
                decide(Decision::Award(Amount::parse(a)?), "A solid candidate."),
                Some(false),
            ),
            Submitted | Assigned | Reviewed | Revised => continue,
        };
        store.execute::<Fund>(conn, &fid, &command, &ctx().retry_on_conflict(5))?;
        match answer {
            Some(true) => store.execute::<Fund>(
                conn,
                &fid,
                &FundCommand::AcceptAward {
                    application_id: app,
                    student_id: student,
                    enrolled: false,
                },
                &ctx(),
            )?,
            Some(false) => store.execute::<Fund>(
                conn,
                &fid,
                &FundCommand::RefuseAward {
                    application_id: app,
                    student_id: student,
                },
                &ctx(),
            )?,
            None => continue,
        };
    }
    tracing::info!("scholarship demo data ready: two funds, 18 applications at every stage");
    Ok(())
}
