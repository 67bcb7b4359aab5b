//! Scholarship commands as the pages issue them: check scope and gather what the decider needs
//! (the fund's window, the assignment, enrollment), then execute.

use chrono::NaiveDate;
use diesel::prelude::*;
use uuid::Uuid;

use super::commands::{
    Amount, ApplicationCommand, Decision, FundCommand, FundWindow, ReviewCommand, Scores,
};
use super::decider::{Application, ApplicationRejection, Fund, Review};
use super::error::{parse_id, ScholarshipsError};
use super::events::review_stream_id;
use crate::accounts::{Role, Viewer};
use crate::enrollment::commands::Term;
use crate::es::executor::fold;
use crate::es::{store, CommandContext, CommandError, CommandOutcome, EventStore};
use crate::schema::{
    scholarship_applications as apps, scholarship_assignments as assignments, users,
};
use crate::text::{self, Lines};
use crate::web::form::FormErrors;

/// How often a fund command re-decides after a concurrent append to the same fund: each retry
/// sees the newer budget, so an award that no longer fits is rejected with the reason.
pub const FUND_RETRIES: u32 = 200;

/// A new fund, parsed from the form.
#[derive(Debug, Clone)]
pub struct NewFund {
    pub name: String,
    pub term: Term,
    pub budget: Amount,
    pub criteria: String,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
}

/// The fund form's fields, in its order.
pub const FUND_FIELDS: crate::web::form::Fields = &[
    ("name", "Name"),
    ("term", "Term"),
    ("budget", "Budget"),
    ("criteria", "Criteria"),
    ("opens_on", "Applications open on"),
    ("closes_on", "Applications close on"),
];

impl NewFund {
    /// Every field checked; all their mistakes at once.
    pub fn parse(
        name: &str,
        term: &str,
        budget: &str,
        criteria: &str,
        opens_on: &str,
        closes_on: &str,
    ) -> Result<NewFund, FormErrors> {
        let mut errors = FormErrors::new("fund", FUND_FIELDS, "The fund was not created");
        let name = errors.check(
            "name",
            text::check("The fund name", name, 120, Lines::One).and_then(|n| {
                (!n.is_empty())
                    .then_some(n)
                    .ok_or_else(|| "a fund needs a name of 1 to 120 characters".to_owned())
            }),
        );
        let criteria = errors.check(
            "criteria",
            text::check("The criteria", criteria, 2000, Lines::Many),
        );
        let term = errors.check("term", Term::parse(term));
        let budget = errors.check("budget", Amount::parse(budget));
        let date = |label: &str, raw: &str| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .map_err(|_| format!("the {label} date must look like 2027-01-31"))
        };
        let opens_on = errors.check("opens_on", date("opening", opens_on));
        let closes_on = errors.check("closes_on", date("closing", closes_on));
        if let (Some(o), Some(c)) = (opens_on, closes_on) {
            if c < o {
                errors.add(
                    "closes_on",
                    "the application window must close on or after the day it opens",
                );
            }
        }
        let fund = (|| {
            Some(NewFund {
                name: name?,
                term: term?,
                budget: budget?,
                criteria: criteria?,
                opens_on: opens_on?,
                closes_on: closes_on?,
            })
        })();
        errors.finish(fund)
    }
}

/// The role a command needs; another role is refused in the words of the page's check.
fn require(viewer: &Viewer, role: Role) -> Result<(), ScholarshipsError> {
    viewer
        .require(role)
        .map_err(|refused| ScholarshipsError::Forbidden(refused.to_string()))
}

/// Hold a per-student lock until the transaction ends: accepting an award and the enrollment
/// reaction for the same student never interleave (so no accepted award misses its disbursement).
pub fn lock_student(conn: &mut PgConnection, student_id: Uuid) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('scholarship-student:' || $1))")
        .bind::<diesel::sql_types::Text, _>(student_id.to_string())
        .execute(conn)
        .map(|_| ())
}

/// Run a fund command in its own transaction, re-deciding after a concurrent append.
/// `prepare` runs first in each attempt's transaction and builds the command.
pub fn execute_fund(
    conn: &mut PgConnection,
    store: &EventStore,
    fund_id: Uuid,
    ctx: &CommandContext,
    prepare: impl Fn(&mut PgConnection) -> QueryResult<FundCommand>,
) -> Result<CommandOutcome, ScholarshipsError> {
    let mut attempt = 0;
    loop {
        let result = conn.transaction(|conn| {
            let command = prepare(conn)?;
            store.execute_in::<Fund>(conn, &fund_id.to_string(), &command, ctx)
        });
        match result {
            Err(e) if e.is_conflict() && attempt < FUND_RETRIES => attempt += 1,
            other => return Ok(other?),
        }
    }
}

pub fn create_fund(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    fund: NewFund,
) -> Result<Uuid, ScholarshipsError> {
    require(viewer, Role::Staff)?;
    let id = Uuid::new_v4();
    let outcome = store.execute::<Fund>(
        conn,
        &id.to_string(),
        &FundCommand::CreateFund {
            name: fund.name,
            term: fund.term,
            budget: fund.budget,
            criteria: fund.criteria,
            opens_on: fund.opens_on,
            closes_on: fund.closes_on,
        },
        ctx,
    )?;
    // A repeated form answers with the fund its first post created.
    Ok(outcome.stream_id.parse().unwrap_or(id))
}

pub fn set_open(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    fund_id: Uuid,
    open: bool,
) -> Result<(), ScholarshipsError> {
    require(viewer, Role::Staff)?;
    let command = if open {
        FundCommand::OpenFund
    } else {
        FundCommand::CloseFund
    };
    match store.execute::<Fund>(conn, &fund_id.to_string(), &command, ctx) {
        Err(CommandError::Rejected(super::decider::FundRejection::Unknown)) => {
            Err(ScholarshipsError::NotFound)
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// A student applies to a fund: one application per student per fund, only in the window.
pub fn apply(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    fund_id: Uuid,
    statement: String,
    today: NaiveDate,
) -> Result<Uuid, ScholarshipsError> {
    if viewer.role != Role::Student {
        return Err(ScholarshipsError::Forbidden(
            "Only students apply for scholarships.".into(),
        ));
    }
    // A double submit answers with the application its first post created, before the check
    // below would call it a second application.
    if let Some(first) = crate::es::executor::prior_outcome::<ApplicationRejection>(conn, ctx)? {
        return Ok(parse_id("application", &first.stream_id)?);
    }
    let already: i64 = apps::table
        .filter(apps::fund_id.eq(fund_id))
        .filter(apps::student_id.eq(viewer.user_id))
        .count()
        .get_result(conn)?;
    if already > 0 {
        return Err(ScholarshipsError::Invalid(
            "You have already applied to this fund.".into(),
        ));
    }
    let history = store::load_stream(conn, "fund", &fund_id.to_string())?;
    if history.is_empty() {
        return Err(ScholarshipsError::NotFound);
    }
    let state = fold::<Fund>(&history).map_err(|e| ScholarshipsError::Internal(e.to_string()))?;
    let window = FundWindow {
        exists: state.created,
        is_open: state.is_open,
        opens_on: state.opens_on.unwrap_or_default(),
        closes_on: state.closes_on.unwrap_or_default(),
    };
    let id = Uuid::new_v4();
    let command = ApplicationCommand::Submit {
        fund_id,
        student_id: viewer.user_id,
        statement,
        fund: window,
        today,
    };
    match store.execute::<Application>(conn, &id.to_string(), &command, ctx) {
        // Two submissions racing: the unique index of the read model decides.
        Err(CommandError::Projection(p))
            if p.to_string()
                .contains("scholarship_applications_fund_student_key") =>
        {
            Err(ScholarshipsError::Invalid(
                "You have already applied to this fund.".into(),
            ))
        }
        Err(e) => Err(e.into()),
        Ok(outcome) => Ok(outcome.stream_id.parse().unwrap_or(id)),
    }
}

/// The application's fund and applicant (for commands about it).
pub fn application_owner(conn: &mut PgConnection, id: Uuid) -> QueryResult<(Uuid, Uuid, String)> {
    apps::table
        .find(id)
        .select((apps::fund_id, apps::student_id, apps::outcome))
        .first(conn)
}

/// [`application_owner`] for a command: no such application is the context's "not found".
fn owner(conn: &mut PgConnection, id: Uuid) -> Result<(Uuid, Uuid, String), ScholarshipsError> {
    application_owner(conn, id)
        .optional()?
        .ok_or(ScholarshipsError::NotFound)
}

/// The committee assigns a staff member to review an application.
pub fn assign_reviewer(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    application_id: Uuid,
    reviewer_id: Uuid,
) -> Result<(), ScholarshipsError> {
    require(viewer, Role::Staff)?;
    let (_, student_id, _) = owner(conn, application_id)?;
    if student_id == viewer.user_id {
        return Err(ScholarshipsError::NotFound);
    }
    let is_staff: i64 = users::table
        .filter(users::id.eq(reviewer_id))
        .filter(users::role.eq("staff"))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)?;
    if is_staff == 0 {
        return Err(ScholarshipsError::Invalid(
            "Choose an active staff member as reviewer.".into(),
        ));
    }
    store.execute::<Application>(
        conn,
        &application_id.to_string(),
        &ApplicationCommand::AssignReviewer { reviewer_id },
        ctx,
    )?;
    Ok(())
}

/// An assigned reviewer scores an application (or revises their score).
pub fn submit_review(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    application_id: Uuid,
    scores: Scores,
    comment: String,
) -> Result<CommandOutcome, ScholarshipsError> {
    require(viewer, Role::Staff)?;
    let (_, student_id, outcome) = owner(conn, application_id)?;
    let assigned: i64 = assignments::table
        .filter(assignments::application_id.eq(application_id))
        .filter(assignments::reviewer_id.eq(viewer.user_id))
        .count()
        .get_result(conn)?;
    if student_id == viewer.user_id || assigned == 0 {
        // Not theirs to see: the same answer as for an application that does not exist.
        return Err(ScholarshipsError::NotFound);
    }
    let command = ReviewCommand::Submit {
        application_id,
        reviewer_id: viewer.user_id,
        scores,
        comment,
        assigned: assigned > 0,
        decided: outcome == "awarded" || outcome == "declined",
    };
    Ok(store.execute::<Review>(
        conn,
        &review_stream_id(application_id, viewer.user_id),
        &command,
        ctx,
    )?)
}

/// The committee decides an application. Award commands re-decide on a concurrent award to
/// the same fund, so the budget is checked against every award that committed before.
pub fn decide(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    application_id: Uuid,
    decision: Decision,
    reason: String,
) -> Result<CommandOutcome, ScholarshipsError> {
    require(viewer, Role::Staff)?;
    let (fund_id, student_id, _) = owner(conn, application_id)?;
    if student_id == viewer.user_id {
        return Err(ScholarshipsError::NotFound);
    }
    execute_fund(conn, store, fund_id, ctx, |_| {
        Ok(FundCommand::Decide {
            application_id,
            student_id,
            decision,
            reason: reason.clone(),
        })
    })
}

/// The student accepts or refuses their award. Accepting while enrolled disburses at once.
pub fn respond_to_award(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    application_id: Uuid,
    accept: bool,
) -> Result<CommandOutcome, ScholarshipsError> {
    let (fund_id, student_id, _) = owner(conn, application_id)?;
    if student_id != viewer.user_id {
        return Err(ScholarshipsError::NotFound);
    }
    execute_fund(conn, store, fund_id, ctx, |conn| {
        if !accept {
            return Ok(FundCommand::RefuseAward {
                application_id,
                student_id,
            });
        }
        lock_student(conn, student_id)?;
        Ok(FundCommand::AcceptAward {
            application_id,
            student_id,
            enrolled: is_enrolled(conn, student_id)?,
        })
    })
}

/// Whether the student's enrollment stream says enrolled now (its latest `Enrolled` or
/// `Withdrawn` is `Enrolled`). Read from the log rather than from the
/// `scholarship_enrolled_students` projection, which may run as a catch-up subscriber: lagging,
/// it would let an acceptance right after enrolling miss its disbursement (and the reaction to
/// `Enrolled`, if it ran first, would not disburse it either).
pub fn is_enrolled(conn: &mut PgConnection, student_id: Uuid) -> QueryResult<bool> {
    use crate::schema::events;
    let latest: Option<(String, serde_json::Value)> = events::table
        .filter(events::stream_type.eq("enrollment"))
        .filter(events::stream_id.eq(student_id.to_string()))
        .filter(events::event_type.eq_any(super::projections::ENROLLED_OR_NOT))
        .order(events::stream_version.desc())
        .select((events::event_type, events::payload))
        .first(conn)
        .optional()?;
    Ok(latest.is_some_and(|(t, payload)| super::projections::says_enrolled(&t, &payload)))
}
