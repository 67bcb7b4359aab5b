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
use crate::demo::demo_user;
use crate::es::{Actor, CommandContext, EventStore, Metadata};
use crate::schema::scholarship_funds;
use crate::web::AppState;

type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const FIRST_FUND: &str = "Founders' Merit Scholarship";

fn ctx() -> CommandContext {
    CommandContext::new(Metadata::new(Actor::Cli))
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
            term: crate::enrollment::commands::Term::parse("2027-fall")?,
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

/// The demo's accounts: a committee member, a reviewer and twelve students (the demo "student"
/// first).
struct People {
    staff: Uuid,
    reviewer: Uuid,
    students: Vec<Uuid>,
}

/// One demo application: to which fund, by whom, and how far it goes.
struct Planned<'a> {
    fund_id: Uuid,
    window: &'a FundWindow,
    student: Uuid,
    stage: Stage,
}

pub fn seed(state: &AppState) -> DemoResult<()> {
    let mut conn = state.pool.get()?;
    let conn = &mut *conn;
    let store = &state.store;
    if already_seeded(conn)? {
        return Ok(());
    }
    let people = people(conn, store)?;
    let merit = fund(
        conn,
        store,
        FIRST_FUND,
        "20,000",
        "Academic excellence and a clear plan for the year ahead.",
        45,
    )?;
    let service_fund = fund(
        conn,
        store,
        "Community Service Grant",
        "6,000",
        "Volunteering and service to the community.",
        20,
    )?;
    for (n, planned) in plan(&people, &merit, &service_fund).enumerate() {
        let app = submit(conn, store, &planned, n)?;
        if matches!(planned.stage, Stage::Submitted) {
            continue;
        }
        assign_reviewers(conn, store, &people, app)?;
        if matches!(planned.stage, Stage::Assigned) {
            continue;
        }
        review(conn, store, &people, app, n, planned.stage)?;
        decide(conn, store, app, &planned)?;
    }
    tracing::info!("scholarship demo data ready: two funds, 18 applications at every stage");
    Ok(())
}

fn already_seeded(conn: &mut PgConnection) -> DemoResult<bool> {
    let exists: i64 = scholarship_funds::table
        .filter(scholarship_funds::name.eq(FIRST_FUND))
        .count()
        .get_result(conn)?;
    Ok(exists > 0)
}

fn people(conn: &mut PgConnection, store: &EventStore) -> DemoResult<People> {
    let staff = demo_user(conn, store, "staff", "Sam Staff", "staff")?;
    let reviewer = demo_user(conn, store, "reviewer", "Riley Reviewer", "staff")?;
    let mut students = vec![demo_user(conn, store, "student", "Stu Student", "student")?];
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
        students.push(demo_user(
            conn,
            store,
            &format!("scholar{:02}", i + 1),
            name,
            "student",
        )?);
    }
    Ok(People {
        staff,
        reviewer,
        students,
    })
}

/// Every demo application in the order it is submitted: twelve to the merit fund, then six to
/// the service fund.
fn plan<'a>(
    people: &People,
    (merit, merit_window): &'a (Uuid, FundWindow),
    (service_fund, service_window): &'a (Uuid, FundWindow),
) -> impl Iterator<Item = Planned<'a>> {
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
    let to_merit: Vec<Planned<'a>> = merit_stages
        .into_iter()
        .zip(&people.students)
        .map(|(stage, &student)| Planned {
            fund_id: *merit,
            window: merit_window,
            student,
            stage,
        })
        .collect();
    let to_service: Vec<Planned<'a>> = service_stages
        .into_iter()
        .zip(&people.students[1..])
        .map(|(stage, &student)| Planned {
            fund_id: *service_fund,
            window: service_window,
            student,
            stage,
        })
        .collect();
    to_merit.into_iter().chain(to_service)
}

/// The `n`th demo application, submitted today.
fn submit(
    conn: &mut PgConnection,
    store: &EventStore,
    planned: &Planned,
    n: usize,
) -> DemoResult<Uuid> {
    let statements = [
        "I am the first in my family at university and work evenings to pay for it.",
        "I tutor younger students in maths every weekend and want to study engineering.",
        "A scholarship would let me stop my second job and focus on my thesis.",
    ];
    let app = Uuid::new_v4();
    store.execute::<Application>(
        conn,
        &app.to_string(),
        &ApplicationCommand::Submit {
            fund_id: planned.fund_id,
            student_id: planned.student,
            statement: statements[n % statements.len()].into(),
            fund: planned.window.clone(),
            today: Utc::now().date_naive(),
        },
        &ctx(),
    )?;
    Ok(app)
}

fn assign_reviewers(
    conn: &mut PgConnection,
    store: &EventStore,
    people: &People,
    app: Uuid,
) -> DemoResult<()> {
    for r in [people.reviewer, people.staff] {
        store.execute::<Application>(
            conn,
            &app.to_string(),
            &ApplicationCommand::AssignReviewer { reviewer_id: r },
            &ctx(),
        )?;
    }
    Ok(())
}

/// The reviewer's score, then (past `Reviewed`) the committee member's, and for `Revised` the
/// reviewer's second revision. The `n`th application's scores vary with `n`.
fn review(
    conn: &mut PgConnection,
    store: &EventStore,
    people: &People,
    app: Uuid,
    n: usize,
    stage: Stage,
) -> DemoResult<()> {
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
    let (reviewer, staff) = (people.reviewer, people.staff);
    store.execute::<Review>(
        conn,
        &review_stream_id(app, reviewer),
        &score([b, "4", b, "3"], "Convincing statement.", reviewer),
        &ctx(),
    )?;
    if matches!(stage, Stage::Reviewed) {
        return Ok(());
    }
    store.execute::<Review>(
        conn,
        &review_stream_id(app, staff),
        &score(["3", b, "4", b], "Good record.", staff),
        &ctx(),
    )?;
    if matches!(stage, Stage::Revised) {
        store.execute::<Review>(
            conn,
            &review_stream_id(app, reviewer),
            &score([b, "5", b, "4"], "Revised after the interview.", reviewer),
            &ctx(),
        )?;
    }
    Ok(())
}

/// The committee's decision for the stages that have one, and the student's answer to an award
/// accepted or refused.
fn decide(
    conn: &mut PgConnection,
    store: &EventStore,
    app: Uuid,
    planned: &Planned,
) -> DemoResult<()> {
    use Stage::*;
    let award = |a: &str| -> DemoResult<Decision> { Ok(Decision::Award(Amount::parse(a)?)) };
    let (decision, reason, answer) = match planned.stage {
        Waitlisted => (
            Decision::Waitlist,
            "Strong, but the budget is committed.",
            None,
        ),
        Declined => (
            Decision::Decline,
            "Does not meet the criteria this term.",
            None,
        ),
        Awarded(a) => (award(a)?, "Ranked near the top.", None),
        Accepted(a) => (award(a)?, "Ranked first by both reviewers.", Some(true)),
        Refused(a) => (award(a)?, "A solid candidate.", Some(false)),
        Submitted | Assigned | Reviewed | Revised => return Ok(()),
    };
    let (fid, student_id) = (planned.fund_id.to_string(), planned.student);
    store.execute::<Fund>(
        conn,
        &fid,
        &FundCommand::Decide {
            application_id: app,
            student_id,
            decision,
            reason: reason.into(),
        },
        &ctx().retry_on_conflict(5),
    )?;
    let answer = match answer {
        Some(true) => FundCommand::AcceptAward {
            application_id: app,
            student_id,
            enrolled: false,
        },
        Some(false) => FundCommand::RefuseAward {
            application_id: app,
            student_id,
        },
        None => return Ok(()),
    };
    store.execute::<Fund>(conn, &fid, &answer, &ctx())?;
    Ok(())
}
