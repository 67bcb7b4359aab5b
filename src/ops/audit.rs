//! The audit log (`/audit`) and entity histories (`/history/{stream_type}/{stream_id}`): every
//! event with stream, type, actor, time and payload, filtered, keyset-paged by global position,
//! and scoped to what the viewer may see.
//!
//! # Visibility
//! Admins see every event. Anyone else sees the events some registered [`AuditScope`] grants and
//! none denies. Contexts register rules in `startup::operations()`; the default
//! [`OwnEvents`] grants a user their own user stream and the events they caused.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::{Deserialize, Serialize};
use tera::Context;
use uuid::Uuid;

use super::Registry;
use crate::accounts::{Role, Viewer};
use crate::db::lower;
use crate::es::RecordedEvent;
use crate::schema::{events, users};
use crate::web::csv::CsvExport;
use crate::web::form::{Fields, FormErrors};
use crate::web::paging::{Column, ListSpec, PageParams, Paging};
use crate::web::render::state;
use crate::web::{render, AppError};

/// A condition on a row of `events`, e.g.
/// `Box::new(events::stream_type.eq("signature").and(sql::<Bool>("payload->>'group' = ").bind::<Text, _>(g)))`.
pub type EventPredicate = Box<dyn BoxableExpression<events::table, Pg, SqlType = Bool>>;

/// A visibility rule of the audit log for users other than admins.
pub trait AuditScope: Send + Sync + 'static {
    /// Events this rule lets the viewer see (`None`: it grants nothing to this viewer).
    fn grant(&self, _viewer: &Viewer) -> Option<EventPredicate> {
        None
    }
    /// Events this rule hides from the viewer even when another rule grants them (`None`: hides
    /// nothing). The predicate must be true or false, never NULL (use `COALESCE`).
    fn deny(&self, _viewer: &Viewer) -> Option<EventPredicate> {
        None
    }
}

/// The default rule: a user sees the events of their own user stream and the events they caused.
pub struct OwnEvents;

impl AuditScope for OwnEvents {
    fn grant(&self, viewer: &Viewer) -> Option<EventPredicate> {
        let me = viewer.user_id.to_string();
        Some(Box::new(
            events::stream_type
                .eq("user")
                .and(events::stream_id.eq(me.clone()))
                .or(sql::<Bool>("(metadata -> 'actor' ->> 'id') = ").bind::<Text, _>(me)),
        ))
    }
}

/// The condition on `events` for what `viewer` may see under `scopes`.
pub fn visible_to(viewer: &Viewer, scopes: &[std::sync::Arc<dyn AuditScope>]) -> EventPredicate {
    if viewer.is(Role::Admin) {
        return Box::new(sql::<Bool>("TRUE"));
    }
    let mut granted: EventPredicate = Box::new(sql::<Bool>("FALSE"));
    for scope in scopes {
        if let Some(g) = scope.grant(viewer) {
            granted = Box::new(granted.or(g));
        }
    }
    for scope in scopes {
        if let Some(d) = scope.deny(viewer) {
            granted = Box::new(granted.and(diesel::dsl::not(d)));
        }
    }
    granted
}

/// The events of one stream the viewer may see, in version order: the history tab of an entity
/// page (render with `templates/_history.html`, passing them as `history`).
pub fn visible_history(
    conn: &mut PgConnection,
    viewer: &Viewer,
    registry: &Registry,
    stream_type: &str,
    stream_id: &str,
) -> QueryResult<Vec<RecordedEvent>> {
    events::table
        .filter(events::stream_type.eq(stream_type))
        .filter(events::stream_id.eq(stream_id))
        .filter(visible_to(viewer, &registry.audit_scopes))
        .order(events::stream_version.asc())
        .select(RecordedEvent::as_select())
        .load(conn)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(audit_page).service(history_page);
}

pub const PAGE_SIZE: i64 = 50;
/// At most this many rows in one CSV export.
pub const CSV_LIMIT: i64 = 50_000;

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default)]
    pub stream_type: String,
    #[serde(default)]
    pub stream_id: String,
    #[serde(default)]
    pub event_type: String,
    /// A username, a user id, or `cli`, `sensor`, `system`.
    #[serde(default)]
    pub actor: String,
    /// From this time (inclusive): `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`, UTC.
    #[serde(default)]
    pub from: String,
    /// Until this time (exclusive; a date means the end of that day).
    #[serde(default)]
    pub to: String,
    /// Older page: events before this position.
    #[serde(default)]
    pub before: Option<i64>,
    /// Newer page: events after this position.
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub format: String,
}

/// The parsed filters, ready for SQL.
struct Filters {
    stream_type: Option<String>,
    stream_id: Option<String>,
    event_type: Option<String>,
    actor: Option<ActorFilter>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

enum ActorFilter {
    Kind(&'static str),
    /// The users whose name or username contains what was typed (none: matches nothing).
    Ids(Vec<String>),
}

/// What can go wrong with an audit search: a filter that does not parse (shown with the form), or
/// the database.
#[derive(Debug, thiserror::Error)]
enum AuditError {
    /// Filters that do not parse, every one of them.
    #[error("{}", .0.summary())]
    Invalid(FormErrors),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    NoConnection(#[from] crate::db::NoConnection),
}

impl From<AuditError> for AppError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Invalid(m) => AppError::Unprocessable(m.summary()),
            AuditError::Database(d) => d.into(),
            AuditError::NoConnection(n) => n.into(),
        }
    }
}

/// What an audit search answers: a page of the log, or every matching row for a CSV export.
enum AuditAnswer {
    Page(AuditPage),
    Export(Vec<AuditRow>),
}

fn parse_time(raw: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let d = if end_of_day {
            d.succ_opt().unwrap_or(d)
        } else {
            d
        };
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(format!(
        "{raw:?} is not a time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
    ))
}

fn non_empty(s: &str, name: &str) -> Result<Option<String>, String> {
    let v = crate::text::check(name, s, 200, crate::text::Lines::One)?;
    Ok((!v.is_empty()).then_some(v))
}

/// The filter form's fields, in its order.
const FILTER_FIELDS: Fields = &[
    ("stream_type", "Stream type"),
    ("stream_id", "Stream id"),
    ("event_type", "Event type"),
    ("actor", "Actor"),
    ("from", "From"),
    ("to", "To"),
];

/// The filters of `q`, or every one that does not parse.
fn parse_filters(conn: &mut PgConnection, q: &AuditQuery) -> Result<Filters, AuditError> {
    let mut errors = FormErrors::new("f", FILTER_FIELDS, "The log was not searched");
    let actor = match errors
        .check("actor", non_empty(&q.actor, "actor"))
        .flatten()
    {
        None => None,
        Some(a) => Some(match a.to_lowercase().as_str() {
            "cli" | "the command line" | "command line" => ActorFilter::Kind("cli"),
            "sensor" | "a sensor" => ActorFilter::Kind("sensor"),
            "system" | "the system" => ActorFilter::Kind("system"),
            _ => match Uuid::parse_str(&a) {
                Ok(id) => ActorFilter::Ids(vec![id.to_string()]),
                // By name or username, in any letter case, anywhere in it.
                Err(_) => {
                    let pattern = crate::web::paging::contains_pattern(&a);
                    ActorFilter::Ids(
                        users::table
                            .filter(
                                lower(users::display_name)
                                    .like(pattern.clone())
                                    .or(lower(users::username).like(pattern)),
                            )
                            .select(users::id)
                            .limit(500)
                            .load::<Uuid>(conn)?
                            .into_iter()
                            .map(|id| id.to_string())
                            .collect(),
                    )
                }
            },
        }),
    };
    let choices = AuditChoices::load(conn)?;
    let stream_type = errors
        .check("stream_type", non_empty(&q.stream_type, "stream type"))
        .flatten()
        .map(|t| choices.stream_type(&t));
    let event_type = errors
        .check("event_type", non_empty(&q.event_type, "event type"))
        .flatten()
        .map(|t| choices.event_type(&t));
    let stream_id = errors
        .check("stream_id", non_empty(&q.stream_id, "stream id"))
        .flatten();
    let from = errors.check("from", parse_time(&q.from, false)).flatten();
    let to = errors.check("to", parse_time(&q.to, true)).flatten();
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            errors.add(
                "to",
                "the time range is empty: \"from\" must be before \"to\"",
            );
        }
    }
    if !errors.is_empty() {
        return Err(AuditError::Invalid(errors));
    }
    Ok(Filters {
        stream_type,
        stream_id,
        event_type,
        actor,
        from,
        to,
    })
}

/// The stream and event types the log holds, for the filter's select lists.
#[derive(Debug, Default, Serialize)]
pub struct AuditChoices {
    pub stream_types: Vec<Choice>,
    pub event_types: Vec<Choice>,
}

/// One option of a select list: the stored name and how a person reads it.
#[derive(Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
}

/// `AdmissionDecided` or `threat_session` as words: "Admission decided", "Threat session".
pub fn humanize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch == '_' || ch == '-' {
            out.push(' ');
        } else if ch.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(ch.to_lowercase());
        } else if i == 0 {
            out.extend(ch.to_uppercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

impl AuditChoices {
    /// The distinct values of `stream_type` and `event_type`, each by a skip scan of an index
    /// that starts with it (a handful of probes however long the log).
    pub fn load(conn: &mut PgConnection) -> QueryResult<AuditChoices> {
        let distinct = |conn: &mut PgConnection, column: &str| -> QueryResult<Vec<Choice>> {
            let names: Vec<Name> = diesel::sql_query(format!(
                "WITH RECURSIVE t(name) AS ( \
                   (SELECT {column} FROM events ORDER BY {column} LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT {column} FROM events WHERE {column} > t.name ORDER BY {column} LIMIT 1) \
                   FROM t WHERE t.name IS NOT NULL) \
                 SELECT name FROM t WHERE name IS NOT NULL"
            ))
            .load(conn)?;
            let mut choices: Vec<Choice> = names
                .into_iter()
                .map(|n| Choice {
                    label: humanize(&n.name),
                    value: n.name,
                })
                .collect();
            choices.sort_by(|a, b| a.label.cmp(&b.label));
            Ok(choices)
        };
        Ok(AuditChoices {
            stream_types: distinct(conn, "stream_type")?,
            event_types: distinct(conn, "event_type")?,
        })
    }

    /// The stored name a typed one means, in any letter case or as words ("admission decided").
    fn resolve(choices: &[Choice], typed: &str) -> String {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        let want = squash(typed);
        choices
            .iter()
            .find(|c| squash(&c.value) == want)
            .map_or_else(|| typed.to_owned(), |c| c.value.clone())
    }

    fn stream_type(&self, typed: &str) -> String {
        Self::resolve(&self.stream_types, typed)
    }

    fn event_type(&self, typed: &str) -> String {
        Self::resolve(&self.event_types, typed)
    }
}

type BoxedEvents<'a> = events::BoxedQuery<'a, Pg>;

/// The viewer's visible events under the filters (no order, no limit).
fn filtered<'a>(viewer: &Viewer, registry: &Registry, f: &Filters) -> BoxedEvents<'a> {
    let mut query = events::table
        .filter(visible_to(viewer, &registry.audit_scopes))
        .into_boxed();
    if let Some(v) = &f.stream_type {
        query = query.filter(events::stream_type.eq(v.clone()));
    }
    if let Some(v) = &f.stream_id {
        query = query.filter(events::stream_id.eq(v.clone()));
    }
    if let Some(v) = &f.event_type {
        query = query.filter(events::event_type.eq(v.clone()));
    }
    match &f.actor {
        None => {}
        Some(ActorFilter::Kind(k)) => {
            query =
                query.filter(sql::<Bool>("(metadata -> 'actor' ->> 'kind') = ").bind::<Text, _>(*k))
        }
        Some(ActorFilter::Ids(ids)) => {
            query = query.filter(
                sql::<Bool>("(metadata -> 'actor' ->> 'id') = ANY(")
                    .bind::<diesel::sql_types::Array<Text>, _>(ids.clone())
                    .sql(")"),
            )
        }
    }
    if let Some(t) = f.from {
        query = query.filter(events::recorded_at.ge(t));
    }
    if let Some(t) = f.to {
        query = query.filter(events::recorded_at.lt(t));
    }
    query
}

/// One row of the audit log as shown.
#[derive(Debug, Serialize)]
pub struct AuditRow {
    pub position: i64,
    pub stream_type: String,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub actor: String,
    pub recorded_at: DateTime<Utc>,
    pub payload: String,
    /// The event in words (the page shows this; the CSV keeps the payload).
    pub description: super::describe::EventDescription,
    /// The stream's history page.
    pub history: String,
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub older: Option<i64>,
    pub newer: Option<i64>,
    /// How many events the filters match, counted up to [`COUNT_CAP`].
    pub total: Counted,
    /// The 1-based place of the page's first row among them (newest first), also counted up to
    /// the cap.
    pub first: Counted,
}

/// Counting is capped so that a page of a large log stays fast: beyond the cap the page says
/// "more than 10,000" rather than reading the whole log on every load.
pub const COUNT_CAP: i64 = 10_000;

/// A count that stops at [`COUNT_CAP`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counted {
    pub n: i64,
    /// More than the cap: `n` is the cap.
    pub more: bool,
}

impl Counted {
    fn of(found: usize) -> Counted {
        let found = found as i64;
        Counted {
            n: found.min(COUNT_CAP),
            more: found > COUNT_CAP,
        }
    }
}

pub(crate) fn to_rows(
    conn: &mut PgConnection,
    events: Vec<RecordedEvent>,
) -> QueryResult<Vec<AuditRow>> {
    let names = super::describe::actor_names(conn, &events)?;
    Ok(events
        .into_iter()
        .map(|e| {
            let actor = super::describe::actor_label(e.actor(), &names);
            AuditRow {
                description: super::describe::describe(&e),
                history: format!(
                    "/history/{}/{}",
                    crate::web::render::percent_encode(&e.stream_type),
                    crate::web::render::percent_encode(&e.stream_id)
                ),
                position: e.position,
                stream_type: e.stream_type,
                stream_id: e.stream_id,
                stream_version: e.stream_version,
                event_type: e.event_type,
                actor,
                recorded_at: e.recorded_at,
                payload: e.payload.to_string(),
            }
        })
        .collect())
}

/// One page of the audit log, newest first, keyset-paged by position.
fn load_page(
    conn: &mut PgConnection,
    viewer: &Viewer,
    registry: &Registry,
    f: &Filters,
    q: &AuditQuery,
) -> QueryResult<AuditPage> {
    let mut events: Vec<RecordedEvent> = match (q.before, q.after) {
        (_, Some(after)) => {
            let mut rows: Vec<RecordedEvent> = filtered(viewer, registry, f)
                .filter(events::position.gt(after))
                .order(events::position.asc())
                .limit(PAGE_SIZE)
                .select(RecordedEvent::as_select())
                .load(conn)?;
            rows.reverse();
            rows
        }
        (before, None) => {
            let mut query = filtered(viewer, registry, f);
            if let Some(b) = before {
                query = query.filter(events::position.lt(b));
            }
            query
                .order(events::position.desc())
                .limit(PAGE_SIZE)
                .select(RecordedEvent::as_select())
                .load(conn)?
        }
    };
    events.truncate(PAGE_SIZE as usize);
    let exists = |conn: &mut PgConnection, older: bool, pos: i64| -> QueryResult<bool> {
        let query = filtered(viewer, registry, f);
        let query = if older {
            query.filter(events::position.lt(pos))
        } else {
            query.filter(events::position.gt(pos))
        };
        diesel::select(diesel::dsl::exists(query.select(events::position))).get_result(conn)
    };
    let (older, newer) = match (events.first(), events.last()) {
        (Some(first), Some(last)) => (
            exists(conn, true, last.position)?.then_some(last.position),
            exists(conn, false, first.position)?.then_some(first.position),
        ),
        _ => (None, None),
    };
    // The total and the page's place in it, each read from the index up to the cap.
    let count = |conn: &mut PgConnection, newer_than: Option<i64>| -> QueryResult<Counted> {
        let mut query = filtered(viewer, registry, f);
        if let Some(p) = newer_than {
            query = query.filter(events::position.gt(p));
        }
        let found: Vec<i64> = query
            .select(events::position)
            .order(events::position.desc())
            .limit(COUNT_CAP + 1)
            .load(conn)?;
        Ok(Counted::of(found.len()))
    };
    let total = count(conn, None)?;
    let first = match (newer, events.first()) {
        (Some(_), Some(e)) => {
            let ahead = count(conn, Some(e.position))?;
            Counted {
                n: ahead.n + 1,
                more: ahead.more,
            }
        }
        _ => Counted { n: 1, more: false },
    };
    Ok(AuditPage {
        rows: to_rows(conn, events)?,
        older,
        newer,
        total,
        first,
    })
}

fn page_link(q: &AuditQuery, before: Option<i64>, after: Option<i64>) -> String {
    let mut pairs: Vec<(&str, String)> = vec![];
    for (k, v) in [
        ("stream_type", &q.stream_type),
        ("stream_id", &q.stream_id),
        ("event_type", &q.event_type),
        ("actor", &q.actor),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !v.trim().is_empty() {
            pairs.push((k, v.trim().to_owned()));
        }
    }
    if let Some(b) = before {
        pairs.push(("before", b.to_string()));
    }
    if let Some(a) = after {
        pairs.push(("after", a.to_string()));
    }
    format!(
        "/audit?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

#[tracing::instrument(skip_all, fields(user_id = %viewer.user_id))]
#[get("/audit")]
async fn audit_page(
    req: HttpRequest,
    viewer: Viewer,
    registry: web::Data<Registry>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let q = query.into_inner();
    let registry = registry.into_inner();
    let csv_wanted = q.format == "csv";
    let (v, q2) = (viewer.clone(), q.clone());
    let result = state(&req)
        .read(&req, move |conn| -> Result<AuditAnswer, AuditError> {
            let f = parse_filters(conn, &q2)?;
            if csv_wanted {
                let events = filtered(&v, &registry, &f)
                    .order(events::position.desc())
                    .limit(CSV_LIMIT)
                    .select(RecordedEvent::as_select())
                    .load(conn)?;
                return Ok(AuditAnswer::Export(to_rows(conn, events)?));
            }
            Ok(AuditAnswer::Page(load_page(conn, &v, &registry, &f, &q2)?))
        })
        .await;
    let mut ctx = Context::new();
    ctx.insert("q", &q);
    ctx.insert("is_admin", &viewer.is(Role::Admin));
    if !csv_wanted {
        ctx.insert("choices", &state(&req).query(AuditChoices::load).await?);
    }
    let filtered_by: Vec<String> = [
        ("stream type", &q.stream_type),
        ("stream id", &q.stream_id),
        ("event type", &q.event_type),
        ("actor", &q.actor),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k} “{}”", v.trim()))
    .collect();
    ctx.insert("filtered_by", &filtered_by.join(", "));
    // HTMX swaps the results; the filter form (its fields marked, or no longer) comes with them.
    ctx.insert("filter_oob", &crate::web::is_htmx(&req));
    match result {
        Err(AuditError::Invalid(errors)) => {
            errors.insert(&mut ctx);
            ctx.insert("rows", &Vec::<AuditRow>::new());
            let res = crate::web::render::render_status(
                &req,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                "ops/audit.html",
                "ops/_audit_results.html",
                ctx,
            )?;
            Ok(res)
        }
        Err(e) => Err(e.into()),
        Ok(AuditAnswer::Export(rows)) => {
            let mut export = CsvExport::new(
                "audit",
                &[
                    "position",
                    "recorded_at",
                    "stream_type",
                    "stream_id",
                    "stream_version",
                    "event_type",
                    "actor",
                    "payload",
                ],
            );
            for r in rows {
                export.row([
                    r.position.to_string(),
                    r.recorded_at.to_rfc3339(),
                    r.stream_type,
                    r.stream_id,
                    r.stream_version.to_string(),
                    r.event_type,
                    r.actor,
                    r.payload,
                ]);
            }
            Ok(export.into_response())
        }
        Ok(AuditAnswer::Page(page)) => {
            ctx.insert(
                "older_link",
                &page.older.map(|p| page_link(&q, Some(p), None)),
            );
            ctx.insert(
                "newer_link",
                &page.newer.map(|p| page_link(&q, None, Some(p))),
            );
            let mut csv_q = q.clone();
            csv_q.before = None;
            csv_q.after = None;
            ctx.insert(
                "csv_link",
                &format!("{}&format=csv", page_link(&csv_q, None, None)),
            );
            // "51–100 of 3,214", or "of more than 10,000" on a large log.
            let fmt = crate::web::format::count;
            let shown = page.rows.len() as i64;
            let counted = match (page.first.more, page.total.more) {
                (false, false) => format!(
                    "{}–{} of {}",
                    fmt(page.first.n),
                    fmt(page.first.n + shown - 1),
                    fmt(page.total.n)
                ),
                (false, true) => format!(
                    "{}–{} of more than {}",
                    fmt(page.first.n),
                    fmt(page.first.n + shown - 1),
                    fmt(COUNT_CAP)
                ),
                (true, _) => format!(
                    "{} events, more than {} newer ones before them",
                    fmt(shown),
                    fmt(COUNT_CAP)
                ),
            };
            ctx.insert("counted", &counted);
            ctx.insert("rows", &page.rows);
            render(&req, "ops/audit.html", "ops/_audit_results.html", ctx)
        }
    }
}

/// A stream's history page lists its events newest first, 50 a page.
pub const HISTORY_LIST: ListSpec = ListSpec {
    columns: &[Column::desc("newest")],
    per_page: 50,
};

/// The visible events of a stream for a page, or "not found" when there are none: nothing
/// visible and nothing there look the same, so no existence is leaked.
pub async fn history_or_404(
    req: &HttpRequest,
    viewer: Viewer,
    registry: web::Data<Registry>,
    stream_type: &str,
    stream_id: &str,
) -> Result<Vec<RecordedEvent>, AppError> {
    let registry = registry.into_inner();
    let (st, si) = (stream_type.to_owned(), stream_id.to_owned());
    let history = state(req)
        .read_query(req, move |conn| {
            visible_history(conn, &viewer, &registry, &st, &si)
        })
        .await?;
    // Nothing visible and nothing there look the same: no existence is leaked.
    if history.is_empty() {
        return Err(AppError::NotFound);
    }
    Ok(history)
}

#[get("/history/{stream_type}/{stream_id}")]
async fn history_page(
    req: HttpRequest,
    viewer: Viewer,
    registry: web::Data<Registry>,
    path: web::Path<(String, String)>,
    step: web::Query<super::replay::StepQuery>,
    page: web::Query<PageParams>,
) -> Result<HttpResponse, AppError> {
    let (stream_type, stream_id) = path.into_inner();
    let step = step.parse()?;
    let mut paging = Paging::parse(HISTORY_LIST, &page);
    let events = history_or_404(&req, viewer, registry, &stream_type, &stream_id).await?;
    // The listing pages, newest first; the replay below folds every event.
    let total = events.len() as i64;
    paging.clamp(total);
    let end = (total - paging.offset()).max(0) as usize;
    let start = (total - paging.offset() - paging.limit()).max(0) as usize;
    let described = events[start..end].to_vec();
    let history = state(&req)
        .read_query(&req, move |conn| super::describe::history(conn, &described))
        .await?;
    let path = format!(
        "/history/{}/{}",
        crate::web::render::percent_encode(&stream_type),
        crate::web::render::percent_encode(&stream_id)
    );
    let pager = paging.pager(total, history.len(), &path, &[], "history-list");
    let mut ctx = Context::new();
    ctx.insert("history", &history);
    ctx.insert("history_pager", &pager);
    ctx.insert("stream_type", &stream_type);
    ctx.insert("stream_id", &stream_id);
    super::replay::insert(&mut ctx, &stream_type, &stream_id, &events, step)?;
    render(&req, "ops/history.html", "ops/_history_list.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_stops_at_the_cap_and_says_so() {
        let under = Counted::of(120);
        assert_eq!((under.n, under.more), (120, false));
        let at = Counted::of(COUNT_CAP as usize);
        assert_eq!((at.n, at.more), (COUNT_CAP, false));
        let over = Counted::of(COUNT_CAP as usize + 1);
        assert_eq!((over.n, over.more), (COUNT_CAP, true));
    }
}
