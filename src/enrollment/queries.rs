//! Reads of enrollment data. Every function takes the viewer: students see only their own
//! enrollment, staff see everyone's, anyone else sees nothing.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::decider::{Enrollment, EnrollmentState, Stage};
use super::events::EnrollmentEvent;
use crate::accounts::{queries as accounts, Role, Viewer};
use crate::es::{store, Actor, Decider, RecordedEvent};
use crate::schema::{enrollment_stage_counts, enrollment_students, users};
use crate::web::paging::{Column, ListSpec, Paging};

/// May the viewer see this student's enrollment? Anyone else gets "not found", never "forbidden",
/// so a student cannot even learn that another student's page exists.
pub fn may_see(viewer: &Viewer, student_id: Uuid) -> bool {
    viewer.role == Role::Staff || (viewer.role == Role::Student && viewer.user_id == student_id)
}

#[derive(Debug, Clone, Serialize)]
pub struct Student {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: String,
}

/// One line of the timeline: what happened, who did it, when.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub event_type: String,
    pub description: String,
    pub who: String,
    pub at: DateTime<Utc>,
    pub version: i64,
}

/// A student's enrollment as a page shows it.
#[derive(Debug, Clone)]
pub struct Progress {
    pub student: Student,
    /// The state folded from the events shown (all of them, or those up to the "as of" moment).
    pub state: EnrollmentState,
    /// The stream's current version (whatever "as of" says): forms carry it back.
    pub version: i64,
    pub timeline: Vec<TimelineEntry>,
}

/// A student's enrollment, folded from the events recorded before `until` (all when `None`).
pub fn progress(
    conn: &mut PgConnection,
    viewer: &Viewer,
    student_id: Uuid,
    until: Option<DateTime<Utc>>,
) -> QueryResult<Progress> {
    if !may_see(viewer, student_id) {
        return Err(diesel::result::Error::NotFound);
    }
    let student = users::table
        .find(student_id)
        .filter(users::role.eq(Role::Student.as_str()))
        .select((
            users::id,
            users::username,
            users::display_name,
            users::email,
        ))
        .first::<(Uuid, String, String, String)>(conn)
        .optional()?
        .map(|(id, username, display_name, email)| Student {
            id,
            username,
            display_name,
            email,
        })
        .ok_or(diesel::result::Error::NotFound)?;
    let history = store::load_stream(conn, Enrollment::STREAM_TYPE, &student_id.to_string())?;
    let version = history.last().map_or(0, |e| e.stream_version);
    let shown: Vec<&RecordedEvent> = history
        .iter()
        .filter(|e| until.is_none_or(|u| e.recorded_at < u))
        .collect();
    let mut state = EnrollmentState::default();
    let mut decoded = Vec::with_capacity(shown.len());
    for e in &shown {
        let event: EnrollmentEvent = e.decode()?;
        state = Enrollment::evolve(state, &event);
        decoded.push((*e, event));
    }
    let actor_ids: Vec<Uuid> = shown
        .iter()
        .filter_map(|e| e.actor().and_then(|a| a.user_id()))
        .collect();
    let names = accounts::display_names(conn, &actor_ids)?;
    let timeline = decoded
        .into_iter()
        .map(|(e, event)| TimelineEntry {
            event_type: e.event_type.clone(),
            description: event.describe(),
            who: match e.actor() {
                Some(Actor::User(id)) if id == viewer.user_id => {
                    format!("you ({})", names.get(&id).cloned().unwrap_or_default())
                }
                Some(Actor::User(id)) => names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| "a former user".into()),
                Some(Actor::Cli) => "the command line".into(),
                Some(Actor::Sensor(_)) => "a sensor".into(),
                Some(Actor::System(name)) => format!("the system ({name})"),
                None => "unknown".into(),
            },
            at: e.recorded_at,
            version: e.stream_version,
        })
        .collect();
    Ok(Progress {
        student,
        state,
        version,
        timeline,
    })
}

/// Students per term and stage, from the counts the projection keeps (one small read).
#[derive(Debug, Clone, Serialize, Queryable)]
pub struct StageCount {
    pub term: String,
    pub stage: String,
    pub students: i64,
}

pub fn stage_counts(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<StageCount>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    enrollment_stage_counts::table
        .filter(enrollment_stage_counts::students.ne(0))
        .order((
            enrollment_stage_counts::term.asc(),
            enrollment_stage_counts::stage.asc(),
        ))
        .select((
            enrollment_stage_counts::term,
            enrollment_stage_counts::stage,
            enrollment_stage_counts::students,
        ))
        .load(conn)
}

/// The pipeline list's filters, parsed from the query string.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineFilter {
    pub stage: Option<Stage>,
    pub term: Option<String>,
    /// A part of the student's name or username.
    pub name: Option<String>,
}

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    pub student_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub term: String,
    pub stage: String,
    pub stage_label: &'static str,
    pub last_event_at: DateTime<Utc>,
    pub days_since: i64,
}

type RowTuple = (Uuid, String, String, String, String, DateTime<Utc>);

/// Every student's pipeline row with their names, as [`RowTuple`]s.
#[diesel::dsl::auto_type]
fn pipeline_rows() -> _ {
    enrollment_students::table
        .inner_join(users::table.on(users::id.eq(enrollment_students::student_id)))
        .select((
            enrollment_students::student_id,
            users::username,
            users::display_name,
            enrollment_students::term,
            enrollment_students::stage,
            enrollment_students::last_event_at,
        ))
}

fn to_rows(rows: Vec<RowTuple>, now: DateTime<Utc>) -> Vec<PipelineRow> {
    rows.into_iter()
        .map(
            |(student_id, username, display_name, term, stage, last_event_at)| PipelineRow {
                student_id,
                username,
                display_name,
                stage_label: Stage::parse(&stage).map_or("?", Stage::label),
                term,
                stage,
                days_since: (now - last_event_at).num_days(),
                last_event_at,
            },
        )
        .collect()
}

fn escape_like(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// How the pipeline sorts and pages (`?sort=&dir=&page=`, DESIGN section 7): by last activity
/// (newest first) unless asked otherwise.
pub const PIPELINE_LIST: ListSpec = ListSpec {
    columns: &[
        Column::desc("activity"),
        Column::asc("name"),
        Column::asc("username"),
        Column::asc("term"),
        Column::asc("step"),
    ],
    per_page: PAGE_SIZE,
};

/// A term's place in the calendar in SQL ("2027-spring" before "2027-fall"), as
/// `web::format::term_key` orders them in Rust.
fn term_order_sql(desc: bool) -> String {
    let seasons: String = crate::enrollment::commands::SEASONS
        .iter()
        .enumerate()
        .map(|(i, s)| format!(" WHEN '{s}' THEN {i}"))
        .collect();
    let dir = if desc { "DESC" } else { "ASC" };
    format!(
        "NULLIF(split_part(enrollment_students.term, '-', 1), '')::text {dir}, \
         CASE lower(split_part(enrollment_students.term, '-', 2)){seasons} ELSE 99 END {dir}"
    )
}

/// A step's place on the way (inquiry first, withdrawn last) in SQL.
fn stage_order_sql(desc: bool) -> String {
    let steps: String = Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| format!(" WHEN '{}' THEN {i}", s.as_str()))
        .collect();
    let dir = if desc { "DESC" } else { "ASC" };
    format!("CASE enrollment_students.stage{steps} ELSE 99 END {dir}")
}

/// The pipeline rows the filter matches, unordered.
fn matching(filter: &PipelineFilter) -> _BoxedPipeline<'static> {
    let mut query = pipeline_rows().into_boxed();
    if let Some(stage) = filter.stage {
        query = query.filter(enrollment_students::stage.eq(stage.as_str()));
    }
    if let Some(term) = &filter.term {
        query = query.filter(enrollment_students::term.eq(term.clone()));
    }
    if let Some(name) = &filter.name {
        let pattern = format!("%{}%", escape_like(name));
        query = query.filter(
            users::display_name
                .ilike(pattern.clone())
                .or(users::username.ilike(pattern)),
        );
    }
    query
}

type _BoxedPipeline<'a> = diesel::dsl::IntoBoxed<'a, pipeline_rows, diesel::pg::Pg>;

/// The pipeline's ORDER BY for a sort column; the student id breaks ties, so pages never overlap
/// or skip.
fn pipeline_order(paging: &Paging) -> String {
    let desc = paging.desc;
    let dir = if desc { "DESC" } else { "ASC" };
    let order = match paging.sort {
        "name" => format!("lower(users.display_name) {dir}, users.username {dir}"),
        "username" => format!("users.username {dir}"),
        "term" => format!("{}, users.username ASC", term_order_sql(desc)),
        "step" => format!("{}, users.username ASC", stage_order_sql(desc)),
        _ => format!("enrollment_students.last_event_at {dir}"),
    };
    format!("{order}, enrollment_students.student_id ASC")
}

/// Every student the filter matches, in the list's order (for CSV).
pub fn pipeline(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &PipelineFilter,
    paging: &Paging,
) -> QueryResult<Vec<PipelineRow>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    let rows = matching(filter)
        .order(diesel::dsl::sql::<diesel::sql_types::Bool>(
            &pipeline_order(paging),
        ))
        .load::<RowTuple>(conn)?;
    Ok(to_rows(rows, Utc::now()))
}

/// One page of the pipeline in the order asked for, with the number of students the filter
/// matches. A page past the last shows the last.
pub fn pipeline_page(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &PipelineFilter,
    paging: &mut Paging,
) -> QueryResult<(Vec<PipelineRow>, i64)> {
    if viewer.role != Role::Staff {
        return Ok((Vec::new(), 0));
    }
    let total: i64 = matching(filter).count().get_result(conn)?;
    paging.clamp(total);
    let rows = matching(filter)
        .order(diesel::dsl::sql::<diesel::sql_types::Bool>(
            &pipeline_order(paging),
        ))
        .offset(paging.offset())
        .limit(paging.limit())
        .load::<RowTuple>(conn)?;
    Ok((to_rows(rows, Utc::now()), total))
}

/// Students still on their way (not enrolled, denied or withdrawn) with no event for `days` days,
/// longest-waiting first.
pub fn stalled(
    conn: &mut PgConnection,
    viewer: &Viewer,
    days: i64,
    limit: i64,
) -> QueryResult<Vec<PipelineRow>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let closed: Vec<&str> = Stage::ALL
        .into_iter()
        .filter(|s| !s.is_open())
        .map(Stage::as_str)
        .collect();
    let rows = pipeline_rows()
        .filter(enrollment_students::last_event_at.lt(now - Duration::days(days)))
        .filter(enrollment_students::stage.ne_all(closed))
        .order((
            enrollment_students::last_event_at.asc(),
            enrollment_students::student_id.asc(),
        ))
        .limit(limit)
        .load::<RowTuple>(conn)?;
    Ok(to_rows(rows, now))
}

/// The terms that have students, in calendar order, for the filter's choice.
pub fn terms(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<String>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    let mut terms: Vec<String> = enrollment_stage_counts::table
        .select(enrollment_stage_counts::term)
        .distinct()
        .load(conn)?;
    crate::web::format::sort_terms(&mut terms);
    Ok(terms)
}
