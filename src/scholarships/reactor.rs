//! The reaction to enrollment (the talk's "process events for multiple contexts"): an accepted
//! award is disbursed when the student is enrolled and revoked when the student withdraws. Each
//! reaction is a fund command with its own event, caused by the enrollment event.

use diesel::prelude::*;
use uuid::Uuid;

use super::commands::FundCommand;
use super::decider::Fund;
use super::service::{lock_student, FUND_RETRIES};
use crate::es::{Actor, CommandContext, EventStore, Metadata, Reactor, RecordedEvent};
use crate::schema::scholarship_applications as apps;

pub const REACTOR_NAME: &str = "scholarships-enrollment-reaction";

pub struct EnrollmentReaction;

impl Reactor for EnrollmentReaction {
    fn name(&self) -> &'static str {
        REACTOR_NAME
    }

    fn handles(&self) -> &'static [&'static str] {
        &["Enrolled", "Withdrawn"]
    }

    fn react(
        &self,
        conn: &mut PgConnection,
        store: &EventStore,
        event: &RecordedEvent,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if event.stream_type != "enrollment" {
            return Ok(());
        }
        let Ok(student_id) = event.stream_id.parse::<Uuid>() else {
            return Ok(());
        };
        // Serializes with a student accepting an award at this moment (see `respond_to_award`).
        lock_student(conn, student_id)?;
        let (statuses, reason): (&[&str], String) = match event.event_type.as_str() {
            "Enrolled" => (&["accepted"], "the student is enrolled".into()),
            "Withdrawn" => {
                let why = event
                    .payload
                    .get("reason")
                    .and_then(|r| r.as_str())
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no reason given");
                (
                    &["offered", "accepted", "disbursed"],
                    format!("the student withdrew: {why}"),
                )
            }
            _ => return Ok(()),
        };
        let awards: Vec<(Uuid, Uuid)> = apps::table
            .filter(apps::student_id.eq(student_id))
            .filter(apps::award_status.eq_any(statuses))
            .order(apps::submitted_at.asc())
            .select((apps::id, apps::fund_id))
            .load(conn)?;
        let ctx = CommandContext::new(Metadata::caused_by(
            Actor::System(REACTOR_NAME.into()),
            event,
        ));
        for (application_id, fund_id) in awards {
            let command = if event.event_type == "Enrolled" {
                FundCommand::DisburseAward {
                    application_id,
                    reason: reason.clone(),
                }
            } else {
                FundCommand::RevokeAward {
                    application_id,
                    reason: reason.clone(),
                }
            };
            // In a savepoint: a concurrent decision on the same fund makes the append conflict;
            // rolling back to the savepoint and deciding again keeps the enrollment's transaction.
            let mut attempt = 0;
            loop {
                let result = conn.transaction(|conn| {
                    store.execute_in::<Fund>(conn, &fund_id.to_string(), &command, &ctx)
                });
                match result {
                    Err(e) if e.is_conflict() && attempt < FUND_RETRIES => attempt += 1,
                    other => {
                        other?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
