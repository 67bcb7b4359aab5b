//! The `enrollment` projection: one row per student (the folded state) and the counts per term
//! and stage that the staff pipeline reads. A batch of events is folded in memory and written
//! with two multi-row statements, so a rebuild of the whole log is fast.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel::upsert::excluded;
use uuid::Uuid;

use super::commands::Decision;
use super::decider::{Enrollment, EnrollmentState, Step};
use super::events::EnrollmentEvent;
use crate::es::projection::ProjectionError;
use crate::es::{Decider, Projection, RecordedEvent};
use crate::schema::{enrollment_stage_counts, enrollment_students};

pub struct EnrollmentProjection;

/// A row of `enrollment_students`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = enrollment_students, check_for_backend(diesel::pg::Pg))]
pub struct StudentRow {
    pub student_id: Uuid,
    pub term: String,
    pub step: i16,
    pub stage: String,
    pub decision: Option<String>,
    pub transcript: bool,
    pub identification: bool,
    pub deposit_cents: Option<i64>,
    pub courses: Vec<String>,
    pub withdrawn: bool,
    pub version: i64,
    pub started_at: DateTime<Utc>,
    pub last_event_at: DateTime<Utc>,
}

impl StudentRow {
    pub fn state(&self) -> EnrollmentState {
        EnrollmentState {
            step: Step::from_rank(self.step),
            term: self.term.clone(),
            transcript: self.transcript,
            identification: self.identification,
            decision: self
                .decision
                .as_deref()
                .and_then(|d| Decision::parse(d).ok()),
            deposit_cents: self.deposit_cents,
            courses: self.courses.clone(),
            withdrawn: self.withdrawn,
            legacy_id: None,
        }
    }

    fn set_state(&mut self, s: &EnrollmentState) {
        self.term.clone_from(&s.term);
        self.step = s.step.map_or(0, Step::rank);
        self.stage = s.stage().map_or("inquiry", |st| st.as_str()).to_owned();
        self.decision = s.decision.map(|d| d.as_str().to_owned());
        self.transcript = s.transcript;
        self.identification = s.identification;
        self.deposit_cents = s.deposit_cents;
        self.courses.clone_from(&s.courses);
        self.withdrawn = s.withdrawn;
    }
}

/// Rows per multi-row statement: 13 columns stay far below PostgreSQL's 65,535 parameters.
const CHUNK: usize = 2_000;

impl Projection for EnrollmentProjection {
    fn name(&self) -> &'static str {
        "enrollment"
    }

    fn handles(&self) -> &'static [&'static str] {
        EnrollmentEvent::TYPES
    }

    fn tables(&self) -> &'static [&'static str] {
        &["enrollment_students", "enrollment_stage_counts"]
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(conn, &[event])
    }

    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let events: Vec<&RecordedEvent> = events
            .iter()
            .copied()
            .filter(|e| e.stream_type == Enrollment::STREAM_TYPE)
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        let mut ids = events
            .iter()
            .map(|e| e.stream_uuid())
            .collect::<Result<Vec<Uuid>, _>>()?;
        ids.sort_unstable();
        ids.dedup();

        let mut rows: HashMap<Uuid, StudentRow> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            for row in enrollment_students::table
                .filter(enrollment_students::student_id.eq_any(chunk))
                .select(StudentRow::as_select())
                .load(conn)?
            {
                rows.insert(row.student_id, row);
            }
        }

        // (term, stage) -> change in students; sorted, so concurrent writers lock in one order.
        let mut deltas: BTreeMap<(String, String), i64> = BTreeMap::new();
        for e in events {
            let id = e.stream_uuid()?;
            let event: EnrollmentEvent = e.decode()?;
            let row = rows.entry(id).or_insert_with(|| StudentRow {
                student_id: id,
                term: event.term().to_owned(),
                step: 0,
                stage: String::new(),
                decision: None,
                transcript: false,
                identification: false,
                deposit_cents: None,
                courses: Vec::new(),
                withdrawn: false,
                version: 0,
                started_at: e.recorded_at,
                last_event_at: e.recorded_at,
            });
            if !row.stage.is_empty() {
                *deltas
                    .entry((row.term.clone(), row.stage.clone()))
                    .or_default() -= 1;
            }
            let state = if row.stage.is_empty() {
                EnrollmentState::default()
            } else {
                row.state()
            };
            row.set_state(&Enrollment::evolve(state, &event));
            row.version = e.stream_version;
            row.last_event_at = e.recorded_at;
            *deltas
                .entry((row.term.clone(), row.stage.clone()))
                .or_default() += 1;
        }

        // Every row in `rows` belongs to a stream of this batch, so every one changed.
        let mut out: Vec<&StudentRow> = rows.values().collect();
        out.sort_unstable_by_key(|r| r.student_id);
        for chunk in out.chunks(CHUNK) {
            let values: Vec<StudentRow> = chunk.iter().map(|r| (*r).clone()).collect();
            diesel::insert_into(enrollment_students::table)
                .values(&values)
                .on_conflict(enrollment_students::student_id)
                .do_update()
                .set((
                    enrollment_students::term.eq(excluded(enrollment_students::term)),
                    enrollment_students::step.eq(excluded(enrollment_students::step)),
                    enrollment_students::stage.eq(excluded(enrollment_students::stage)),
                    enrollment_students::decision.eq(excluded(enrollment_students::decision)),
                    enrollment_students::transcript.eq(excluded(enrollment_students::transcript)),
                    enrollment_students::identification
                        .eq(excluded(enrollment_students::identification)),
                    enrollment_students::deposit_cents
                        .eq(excluded(enrollment_students::deposit_cents)),
                    enrollment_students::courses.eq(excluded(enrollment_students::courses)),
                    enrollment_students::withdrawn.eq(excluded(enrollment_students::withdrawn)),
                    enrollment_students::version.eq(excluded(enrollment_students::version)),
                    enrollment_students::last_event_at
                        .eq(excluded(enrollment_students::last_event_at)),
                ))
                .execute(conn)?;
        }

        // A count that fell to zero goes: a rebuild never writes one.
        let (emptied_terms, emptied_stages): (Vec<String>, Vec<String>) = deltas
            .iter()
            .filter(|(_, d)| **d < 0)
            .map(|(key, _)| key.clone())
            .unzip();
        let counts: Vec<_> = deltas
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|((term, stage), d)| {
                (
                    enrollment_stage_counts::term.eq(term),
                    enrollment_stage_counts::stage.eq(stage),
                    enrollment_stage_counts::students.eq(d),
                )
            })
            .collect();
        if !counts.is_empty() {
            diesel::insert_into(enrollment_stage_counts::table)
                .values(&counts)
                .on_conflict((
                    enrollment_stage_counts::term,
                    enrollment_stage_counts::stage,
                ))
                .do_update()
                .set(
                    enrollment_stage_counts::students.eq(enrollment_stage_counts::students
                        + excluded(enrollment_stage_counts::students)),
                )
                .execute(conn)?;
        }
        if !emptied_terms.is_empty() {
            diesel::sql_query(
                "DELETE FROM enrollment_stage_counts c \
                 USING unnest($1::text[], $2::text[]) AS k(term, stage) \
                 WHERE c.term = k.term AND c.stage = k.stage AND c.students = 0",
            )
            .bind::<Array<Text>, _>(&emptied_terms)
            .bind::<Array<Text>, _>(&emptied_stages)
            .execute(conn)?;
        }
        Ok(())
    }
}
