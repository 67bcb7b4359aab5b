//! The reaction to enrollment (the talk's "process events for multiple contexts"): an accepted
//! award is disbursed when the student is enrolled and revoked when the student withdraws. Each
//! reaction is a fund command with its own event, caused by the enrollment event.
//!
//! It runs as a catch-up subscriber, after the enrollment commits: the fund commands and the
//! subscriber's checkpoint are written in one transaction, so each enrollment event has its
//! effect exactly once, and an enrollment never waits for (or fails because of) a fund.
//!
//! # Accepting an award while the student enrolls
//! `service::respond_to_award` takes the student's lock ([`lock_student`]) and then reads the
//! student's enrollment stream (`service::is_enrolled`: committed events, whatever mode the
//! projections run in): enrolled means the acceptance disburses at once. This subscriber takes the same lock (for every student of a
//! batch, before its first fund command) before it reads the student's awards. So either the acceptance read the enrollment (and disbursed itself, leaving
//! nothing `accepted` here), or it committed `accepted` before this subscriber's read (which then
//! disburses it): the subscriber reads the `Enrolled` event only after it committed, and reads the
//! awards only after the acceptance released the lock. No award is lost, none is disbursed twice
//! (the decider disburses only an `accepted` award).
//!
//! # Replays
//! Handling an event again changes nothing: `Enrolled` disburses only awards still `accepted`
//! (an enrolled student stays enrolled), and `Withdrawn` revokes only live awards granted before
//! the withdrawal in commit order (so an award granted after a reinstatement is not touched).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use uuid::Uuid;

use super::commands::FundCommand;
use super::decider::Fund;
use super::service::{lock_student, FUND_RETRIES};
use crate::es::subscriber::{self, Cursor, HandlerError, Subscriber};
use crate::es::{Actor, CommandContext, CommandError, EventStore, Metadata, RecordedEvent};

pub const REACTOR_NAME: &str = "scholarships-enrollment-reaction";

/// The enrollment events it reacts to.
pub const HANDLES: &[&str] = &["Enrolled", "Withdrawn"];

/// The catch-up subscriber; fund commands go through `store`, so they are projected inline.
pub struct EnrollmentReaction {
    pub store: EventStore,
}

#[derive(QueryableByName)]
struct Award {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    fund_id: Uuid,
}

/// The student's awards in one of `statuses`; when `granted_before` is given, only those whose
/// `AwardGranted` (or `AwardImported`) comes before it in commit-safe order.
fn awards(
    conn: &mut PgConnection,
    student_id: Uuid,
    statuses: &[&str],
    granted_before: Option<Cursor>,
) -> QueryResult<Vec<(Uuid, Uuid)>> {
    let before = granted_before.unwrap_or(Cursor {
        transaction_id: i64::MAX,
        position: i64::MAX,
    });
    diesel::sql_query(
        "SELECT a.id, a.fund_id FROM scholarship_applications a \
         WHERE a.student_id = $1 AND a.award_status = ANY($2) \
           AND EXISTS (SELECT 1 FROM events e \
             WHERE e.stream_type = 'fund' AND e.stream_id = a.fund_id::text \
               AND e.event_type IN ('AwardGranted', 'AwardImported') AND e.payload->>'application_id' = a.id::text \
               AND (e.transaction_id, e.position) < ($3, $4)) \
         ORDER BY a.submitted_at, a.id",
    )
    .bind::<diesel::sql_types::Uuid, _>(student_id)
    .bind::<Array<Text>, _>(statuses)
    .bind::<BigInt, _>(before.transaction_id)
    .bind::<BigInt, _>(before.position)
    .load::<Award>(conn)
    .map(|rows| rows.into_iter().map(|a| (a.id, a.fund_id)).collect())
}

impl EnrollmentReaction {
    /// React to one enrollment event, in the subscriber's transaction, holding the student's lock.
    fn react(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), HandlerError> {
        if event.stream_type != "enrollment" {
            return Ok(());
        }
        let Ok(student_id) = event.stream_id.parse::<Uuid>() else {
            return Ok(());
        };
        let enrolled = match event.event_type.as_str() {
            "Enrolled" => true,
            "Withdrawn" => false,
            _ => return Ok(()),
        };
        let (targets, reason) = if enrolled {
            (
                awards(conn, student_id, &["accepted"], None)?,
                "the student is enrolled".to_owned(),
            )
        } else {
            let why = event
                .payload
                .get("reason")
                .and_then(|r| r.as_str())
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .unwrap_or("no reason given");
            (
                awards(
                    conn,
                    student_id,
                    &["offered", "accepted", "disbursed"],
                    Some(Cursor::of(event)),
                )?,
                format!("the student withdrew: {why}"),
            )
        };
        let ctx = CommandContext::new(Metadata::caused_by(
            Actor::System(REACTOR_NAME.into()),
            event,
        ));
        for (application_id, fund_id) in targets {
            let command = if enrolled {
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
            // rolling back to the savepoint and deciding again keeps the batch's transaction.
            let mut attempt = 0;
            loop {
                let result = conn.transaction(|conn| {
                    self.store
                        .execute_in::<Fund>(conn, &fund_id.to_string(), &command, &ctx)
                });
                match result {
                    Err(e) if e.is_conflict() && attempt < FUND_RETRIES => attempt += 1,
                    // The fund's state moved on since the award was read (say, revoked by
                    // staff): nothing to do, and retrying would stall the subscriber forever.
                    Err(CommandError::Rejected(rejection)) => {
                        tracing::warn!(
                            subscriber = REACTOR_NAME,
                            position = event.position,
                            application = %application_id,
                            %rejection,
                            "the fund refused the reaction; skipped"
                        );
                        break;
                    }
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

impl Subscriber for EnrollmentReaction {
    fn name(&self) -> &str {
        REACTOR_NAME
    }

    fn handles(&self) -> Option<&[&'static str]> {
        Some(HANDLES)
    }

    fn handle(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        // Serialize with students accepting an award at this moment (see the module comment).
        // Every student of the batch is locked before the first fund append: a lock taken after
        // one would wait for an acceptance that may itself wait for that append (a deadlock).
        let mut students: Vec<Uuid> = events
            .iter()
            .filter(|e| e.stream_type == "enrollment")
            .filter_map(|e| e.stream_id.parse().ok())
            .collect();
        students.sort_unstable();
        students.dedup();
        for student_id in students {
            lock_student(conn, student_id)?;
        }
        for event in events {
            self.react(conn, event)?;
        }
        Ok(())
    }

    /// From the start of the log, also on a database whose enrollments were reacted to inline
    /// by an earlier version: replays are harmless (see the module comment), and starting at the
    /// end instead could miss an enrollment committed between the upgrade and the first start.
    fn initialize(&self, _conn: &mut PgConnection) -> Result<Cursor, HandlerError> {
        Ok(Cursor::START)
    }
}

/// Wait (at most `timeout`) until the reaction has handled the student's latest enrollment event
/// it reacts to, so a page shows the award as the enrollment left it. `false` on timeout.
pub fn wait_for_student(
    conn: &mut PgConnection,
    student_id: Uuid,
    timeout: Duration,
) -> QueryResult<bool> {
    use crate::schema::events;
    let last: Option<i64> = events::table
        .filter(events::stream_type.eq("enrollment"))
        .filter(events::stream_id.eq(student_id.to_string()))
        .filter(events::event_type.eq_any(HANDLES))
        .select(diesel::dsl::max(events::position))
        .first(conn)?;
    match last {
        Some(position) => subscriber::wait_for(conn, REACTOR_NAME, position, timeout),
        None => Ok(true),
    }
}
