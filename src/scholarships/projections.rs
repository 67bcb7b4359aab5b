//! Read models of the scholarships context, each table owned by one projection.

use diesel::prelude::*;
use uuid::Uuid;

use super::commands::mean;
use super::events::{ApplicationEvent, FundEvent, ReviewEvent};
use crate::es::projection::ProjectionError;
use crate::es::{Actor, Projection, RecordedEvent};
use crate::schema::{
    scholarship_applications as apps, scholarship_assignments as assignments,
    scholarship_decisions as decisions, scholarship_enrolled_students as enrolled,
    scholarship_funds as funds, scholarship_reviews as reviews,
};

/// How the decision history names who acted: a user's id, or the name of a system actor.
pub fn actor_label(event: &RecordedEvent) -> String {
    match event.actor() {
        Some(Actor::User(id)) => id.to_string(),
        Some(Actor::System(name)) => name,
        Some(Actor::Cli) => "cli".into(),
        Some(Actor::Sensor(id)) => format!("sensor {id}"),
        None => "unknown".into(),
    }
}

/// `scholarship_funds`: one row per fund with its running total of live awards.
pub struct FundsProjection;

impl Projection for FundsProjection {
    fn name(&self) -> &'static str {
        "scholarship_funds"
    }

    fn handles(&self) -> &'static [&'static str] {
        FundEvent::TYPES
    }

    fn tables(&self) -> &'static [&'static str] {
        &["scholarship_funds"]
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.stream_type != "fund" {
            return Ok(());
        }
        let id = event.stream_uuid()?;
        let at = event.recorded_at;
        let row = funds::table.find(id);
        let change_awarded = |conn: &mut PgConnection, delta: i64| {
            diesel::update(funds::table.find(id))
                .set((
                    funds::awarded_cents.eq(funds::awarded_cents + delta),
                    funds::updated_at.eq(at),
                ))
                .execute(conn)
        };
        match event.decode::<FundEvent>()? {
            FundEvent::FundCreated {
                name,
                term,
                budget_cents,
                criteria,
                opens_on,
                closes_on,
            } => {
                diesel::insert_into(funds::table)
                    .values((
                        funds::id.eq(id),
                        funds::name.eq(name),
                        funds::term.eq(term),
                        funds::budget_cents.eq(budget_cents),
                        funds::criteria.eq(criteria),
                        funds::opens_on.eq(opens_on),
                        funds::closes_on.eq(closes_on),
                        funds::created_at.eq(at),
                        funds::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            FundEvent::FundOpened {} => {
                diesel::update(row)
                    .set((funds::is_open.eq(true), funds::updated_at.eq(at)))
                    .execute(conn)?;
            }
            FundEvent::FundClosed {} => {
                diesel::update(row)
                    .set((funds::is_open.eq(false), funds::updated_at.eq(at)))
                    .execute(conn)?;
            }
            FundEvent::AwardGranted { amount_cents, .. } => {
                change_awarded(conn, amount_cents)?;
            }
            FundEvent::AwardRevoked { amount_cents, .. }
            | FundEvent::AwardRefused { amount_cents, .. } => {
                change_awarded(conn, -amount_cents)?;
            }
            FundEvent::AwardImported {
                amount_cents,
                status,
                ..
            } => {
                if status.is_live() {
                    change_awarded(conn, amount_cents)?;
                }
            }
            FundEvent::ApplicationDeclined { .. }
            | FundEvent::ApplicationWaitlisted { .. }
            | FundEvent::AwardAccepted { .. }
            | FundEvent::AwardDisbursed { .. } => {}
        }
        Ok(())
    }
}

/// The fund events that change an application's decision or award.
const DECISION_TYPES: &[&str] = &[
    "AwardGranted",
    "ApplicationDeclined",
    "ApplicationWaitlisted",
    "AwardAccepted",
    "AwardRefused",
    "AwardDisbursed",
    "AwardRevoked",
    "AwardImported",
];

const APPLICATION_TYPES: &[&str] = &[
    "ScholarshipApplied",
    "ReviewerAssigned",
    "ReviewSubmitted",
    "ReviewRevised",
    "AwardGranted",
    "ApplicationDeclined",
    "ApplicationWaitlisted",
    "AwardAccepted",
    "AwardRefused",
    "AwardDisbursed",
    "AwardRevoked",
    "AwardImported",
];

/// `scholarship_applications` (with review summary and decision), `scholarship_assignments`,
/// `scholarship_reviews` (latest revision) and `scholarship_decisions` (the decision history).
pub struct ApplicationsProjection;

impl Projection for ApplicationsProjection {
    fn name(&self) -> &'static str {
        "scholarship_applications"
    }

    fn handles(&self) -> &'static [&'static str] {
        APPLICATION_TYPES
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "scholarship_applications",
            "scholarship_assignments",
            "scholarship_reviews",
            "scholarship_decisions",
        ]
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let at = event.recorded_at;
        match event.stream_type.as_str() {
            "scholarship_application" => {
                let id = event.stream_uuid()?;
                match event.decode::<ApplicationEvent>()? {
                    ApplicationEvent::ScholarshipApplied {
                        fund_id,
                        student_id,
                        statement,
                    } => {
                        diesel::insert_into(apps::table)
                            .values((
                                apps::id.eq(id),
                                apps::fund_id.eq(fund_id),
                                apps::student_id.eq(student_id),
                                apps::statement.eq(statement),
                                apps::submitted_at.eq(at),
                            ))
                            .execute(conn)?;
                    }
                    ApplicationEvent::ReviewerAssigned { reviewer_id } => {
                        diesel::insert_into(assignments::table)
                            .values((
                                assignments::application_id.eq(id),
                                assignments::reviewer_id.eq(reviewer_id),
                                assignments::assigned_at.eq(at),
                            ))
                            .on_conflict_do_nothing()
                            .execute(conn)?;
                    }
                }
            }
            "scholarship_review" => {
                let (ReviewEvent::ReviewSubmitted {
                    application_id,
                    reviewer_id,
                    scores,
                    comment,
                    revision,
                }
                | ReviewEvent::ReviewRevised {
                    application_id,
                    reviewer_id,
                    scores,
                    comment,
                    revision,
                }) = event.decode::<ReviewEvent>()?;
                let score = mean(&scores);
                diesel::insert_into(reviews::table)
                    .values((
                        reviews::application_id.eq(application_id),
                        reviews::reviewer_id.eq(reviewer_id),
                        reviews::scores.eq(&scores),
                        reviews::score.eq(score),
                        reviews::comment.eq(&comment),
                        reviews::revision.eq(revision),
                        reviews::updated_at.eq(at),
                    ))
                    .on_conflict((reviews::application_id, reviews::reviewer_id))
                    .do_update()
                    .set((
                        reviews::scores.eq(&scores),
                        reviews::score.eq(score),
                        reviews::comment.eq(&comment),
                        reviews::revision.eq(revision),
                        reviews::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                diesel::sql_query(
                    "UPDATE scholarship_applications a SET review_count = s.n, avg_score = s.avg \
                     FROM (SELECT count(*)::int AS n, avg(score) AS avg FROM scholarship_reviews \
                           WHERE application_id = $1) s WHERE a.id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(application_id)
                .execute(conn)?;
            }
            "fund" if DECISION_TYPES.contains(&event.event_type.as_str()) => {
                let fund_id = event.stream_uuid()?;
                let fund_event = event.decode::<FundEvent>()?;
                self.apply_decision(conn, event, fund_id, fund_event)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl ApplicationsProjection {
    fn apply_decision(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
        fund_id: Uuid,
        fund_event: FundEvent,
    ) -> Result<(), ProjectionError> {
        use FundEvent as E;
        let at = event.recorded_at;
        let (application_id, student_id, kind, amount, reason) = match &fund_event {
            E::AwardGranted {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => (
                *application_id,
                *student_id,
                "awarded",
                Some(*amount_cents),
                reason.clone(),
            ),
            E::ApplicationDeclined {
                application_id,
                student_id,
                reason,
            } => (
                *application_id,
                *student_id,
                "declined",
                None,
                reason.clone(),
            ),
            E::ApplicationWaitlisted {
                application_id,
                student_id,
                reason,
            } => (
                *application_id,
                *student_id,
                "waitlisted",
                None,
                reason.clone(),
            ),
            E::AwardAccepted {
                application_id,
                student_id,
            } => (
                *application_id,
                *student_id,
                "accepted",
                None,
                String::new(),
            ),
            E::AwardRefused {
                application_id,
                student_id,
                amount_cents,
            } => (
                *application_id,
                *student_id,
                "refused",
                Some(*amount_cents),
                String::new(),
            ),
            E::AwardDisbursed {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => (
                *application_id,
                *student_id,
                "disbursed",
                Some(*amount_cents),
                reason.clone(),
            ),
            E::AwardRevoked {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => (
                *application_id,
                *student_id,
                "revoked",
                Some(*amount_cents),
                reason.clone(),
            ),
            E::AwardImported {
                application_id,
                student_id,
                amount_cents,
                status,
                legacy_id,
                legacy_status,
                ..
            } => {
                // The application the legacy system never showed: what is known of it.
                let words = imported_words(legacy_id, legacy_status);
                diesel::insert_into(apps::table)
                    .values((
                        apps::id.eq(application_id),
                        apps::fund_id.eq(fund_id),
                        apps::student_id.eq(student_id),
                        apps::statement.eq(&words),
                        apps::submitted_at.eq(at),
                        apps::outcome.eq("awarded"),
                        apps::award_cents.eq(amount_cents),
                        apps::award_status.eq(status.as_str()),
                        apps::decision_reason.eq(&words),
                        apps::decided_at.eq(at),
                    ))
                    .execute(conn)?;
                (
                    *application_id,
                    *student_id,
                    "imported",
                    Some(*amount_cents),
                    words,
                )
            }
            E::FundCreated { .. } | E::FundOpened {} | E::FundClosed {} => return Ok(()),
        };
        let row = apps::table.find(application_id);
        match kind {
            "imported" => {}
            "awarded" => {
                diesel::update(row)
                    .set((
                        apps::outcome.eq("awarded"),
                        apps::award_cents.eq(amount),
                        apps::award_status.eq("offered"),
                        apps::decision_reason.eq(&reason),
                        apps::decided_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            "declined" | "waitlisted" => {
                diesel::update(row)
                    .set((
                        apps::outcome.eq(kind),
                        apps::decision_reason.eq(&reason),
                        apps::decided_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            status => {
                diesel::update(row)
                    .set(apps::award_status.eq(status))
                    .execute(conn)?;
            }
        }
        diesel::insert_into(decisions::table)
            .values((
                decisions::position.eq(event.position),
                decisions::fund_id.eq(fund_id),
                decisions::application_id.eq(application_id),
                decisions::student_id.eq(student_id),
                decisions::kind.eq(kind),
                decisions::amount_cents.eq(amount),
                decisions::reason.eq(reason),
                decisions::actor.eq(actor_label(event)),
                decisions::recorded_at.eq(at),
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// How an imported award's application, decision and history line read: "Imported from the
/// legacy system (award AWD-1, status ACCEPTED)".
pub fn imported_words(legacy_id: &str, legacy_status: &str) -> String {
    format!("Imported from the legacy system (award {legacy_id}, status {legacy_status})")
}

/// `scholarship_enrolled_students`: who the enrollment context records as enrolled now.
pub struct EnrolledStudentsProjection;

/// The enrollment events that say whether a student is enrolled: `Enrolled`, `Withdrawn`, and a
/// legacy record imported at the stage `enrolled` (or any other).
pub const ENROLLED_OR_NOT: &[&str] = &["Enrolled", "Withdrawn", "EnrollmentImported"];

/// Whether an event of [`ENROLLED_OR_NOT`] leaves the student enrolled.
pub fn says_enrolled(event_type: &str, payload: &serde_json::Value) -> bool {
    match event_type {
        "Enrolled" => true,
        "EnrollmentImported" => payload.get("stage").and_then(|s| s.as_str()) == Some("enrolled"),
        _ => false,
    }
}

impl Projection for EnrolledStudentsProjection {
    fn name(&self) -> &'static str {
        "scholarship_enrolled_students"
    }

    fn handles(&self) -> &'static [&'static str] {
        ENROLLED_OR_NOT
    }

    fn tables(&self) -> &'static [&'static str] {
        &["scholarship_enrolled_students"]
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.stream_type != "enrollment" {
            return Ok(());
        }
        // Another context's stream: the enrollment projections report a bad id; this one skips it.
        let Ok(student_id) = event.stream_uuid() else {
            return Ok(());
        };
        let now_enrolled = says_enrolled(&event.event_type, &event.payload);
        diesel::insert_into(enrolled::table)
            .values((
                enrolled::student_id.eq(student_id),
                enrolled::enrolled.eq(now_enrolled),
                enrolled::updated_at.eq(event.recorded_at),
            ))
            .on_conflict(enrolled::student_id)
            .do_update()
            .set((
                enrolled::enrolled.eq(now_enrolled),
                enrolled::updated_at.eq(event.recorded_at),
            ))
            .execute(conn)?;
        Ok(())
    }
}
