//! The projections page (`/admin/projections`): each projection's mode, position, rows and state,
//! with rebuild and verify run in the background. Their progress is kept in `projection_runs`, so
//! whichever instance serves the polling request shows it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde::Serialize;
use tera::Context;

use crate::accounts::{Role, Viewer};
use crate::db::{quote_ident, PgPool};
use crate::es::shadow::{self, ShadowProgress};
use crate::es::subscriber::{self, SubscriberStatus};
use crate::es::Projection;
use crate::schema::projection_runs;
use crate::web::render::state;
use crate::web::{flash_redirect, is_htmx, render, AppError};

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = projection_runs, check_for_backend(diesel::pg::Pg))]
pub struct Run {
    pub name: String,
    pub kind: String,
    pub state: String,
    pub events_total: i64,
    pub events_done: i64,
    pub differences: Option<i64>,
    pub message: String,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub phase: String,
}

/// A run as the page shows it.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub run: Run,
    /// What the run is doing: a phase while it runs ("preparing", "replaying", "indexing",
    /// "analyzing", "swapping", "comparing"), then "done" or "failed".
    pub step: String,
    /// `None` while the total is not known yet (the bar is then indeterminate).
    pub percent: Option<i64>,
    pub rate: i64,
    pub seconds_left: Option<i64>,
    /// The first line of the outcome, and the rows of a verify's differences (behind a
    /// disclosure).
    pub summary: String,
    pub details: Vec<String>,
}

impl RunView {
    fn of(run: Run) -> RunView {
        let end = run.finished_at.unwrap_or(run.updated_at);
        let secs = (end - run.started_at).num_milliseconds().max(1) as f64 / 1000.0;
        let rate = run.events_done as f64 / secs;
        let left = (run.events_total - run.events_done).max(0) as f64;
        let running = run.state == "running";
        let step = match run.phase.as_str() {
            p if running && !p.is_empty() => p.to_owned(),
            _ if running => "preparing".to_owned(),
            _ => run.state.clone(),
        };
        let percent = if run.events_total > 0 {
            Some((run.events_done * 100 / run.events_total).min(100))
        } else if step == "preparing" {
            None
        } else {
            Some(100)
        };
        let mut lines = run.message.lines().map(str::to_owned);
        let summary = lines.next().unwrap_or_default();
        RunView {
            percent,
            rate: rate as i64,
            seconds_left: (step == "replaying" && rate > 0.0).then(|| (left / rate).ceil() as i64),
            step,
            summary,
            details: lines.collect(),
            run,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProjectionRow {
    pub name: String,
    pub mode: &'static str,
    pub position: i64,
    pub events_handled: Option<i64>,
    pub behind: Option<i64>,
    /// `behind` is estimated from positions (a long backlog is not counted on each load).
    pub behind_estimated: bool,
    pub rows: i64,
    /// `rows` is the planner's estimate (the tables are too large to count on each load).
    pub rows_estimated: bool,
    pub tables: Vec<String>,
    pub run: Option<RunView>,
}

/// Tables of up to this many rows are counted on each load; larger ones are estimated (a count
/// of millions of rows took most of the page's 1.4 s).
const COUNTED: i64 = 1_000;

#[derive(QueryableByName)]
struct TableSize {
    #[diesel(sql_type = Text)]
    name: String,
    /// `count(*)`, stopped at `COUNTED + 1`.
    #[diesel(sql_type = BigInt)]
    counted: i64,
    /// Live rows by the statistics that every insert and delete keeps (autovacuum or not), else
    /// by the last analysis. Read with `pg_stat_get_live_tuples`, not the `pg_stat_user_tables`
    /// view, which reads every table's statistics each time (20 ms a table).
    #[diesel(sql_type = BigInt)]
    estimate: i64,
}

/// The statement of [`table_sizes`]: per table its name, its rows counted up to `COUNTED + 1`,
/// and its statistics' estimate (public for the benchmark's EXPLAIN).
pub fn table_sizes_sql(tables: &[&str]) -> String {
    let parts: Vec<String> = tables
        .iter()
        .map(|t| {
            let literal = format!("'{}'", t.replace('\'', "''"));
            format!(
                "SELECT {literal}::text AS name, \
                   (SELECT count(*) FROM (SELECT 1 FROM {ident} LIMIT {limit}) x) AS counted, \
                   COALESCE((SELECT GREATEST(pg_stat_get_live_tuples(c.oid), c.reltuples::bigint) \
                     FROM pg_class c WHERE c.oid = to_regclass(quote_ident({literal}))), 0)::bigint \
                   AS estimate",
                ident = quote_ident(t),
                limit = COUNTED + 1,
            )
        })
        .collect();
    parts.join(" UNION ALL ")
}

/// Each table's rows: exact when there are few, else an estimate (`true`).
fn table_sizes(
    conn: &mut PgConnection,
    tables: &[&str],
) -> QueryResult<HashMap<String, (i64, bool)>> {
    if tables.is_empty() {
        return Ok(HashMap::new());
    }
    let sizes: Vec<TableSize> = diesel::sql_query(table_sizes_sql(tables)).load(conn)?;
    Ok(sizes
        .into_iter()
        .map(|s| {
            let size = if s.counted <= COUNTED {
                (s.counted, false)
            } else {
                (s.estimate.max(s.counted), true)
            };
            (s.name, size)
        })
        .collect())
}

#[derive(QueryableByName)]
struct TypeHead {
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// The position of the last event of each of `types`: one probe of the (event_type, position)
/// index per type.
fn last_positions(
    conn: &mut PgConnection,
    types: Vec<String>,
) -> QueryResult<HashMap<String, i64>> {
    let heads: Vec<TypeHead> = diesel::sql_query(
        "SELECT t.ty AS event_type, x.position FROM unnest($1::text[]) AS t(ty) \
         CROSS JOIN LATERAL (SELECT position FROM events WHERE event_type = t.ty \
           ORDER BY position DESC LIMIT 1) x",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(types)
    .load(conn)?;
    Ok(heads
        .into_iter()
        .map(|h| (h.event_type, h.position))
        .collect())
}

pub fn run_of(conn: &mut PgConnection, name: &str) -> QueryResult<Option<Run>> {
    projection_runs::table
        .find(name)
        .select(Run::as_select())
        .first(conn)
        .optional()
}

/// How long each part of the page took, sent as a `Server-Timing` header (read by the
/// benchmark and by a browser's network panel) so that a slow load says where its time went.
#[derive(Debug, Default)]
pub struct Timings(Vec<(&'static str, Duration)>);

impl Timings {
    pub fn time<T>(&mut self, part: &'static str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.0.push((part, started.elapsed()));
        out
    }

    pub fn parts(&self) -> &[(&'static str, Duration)] {
        &self.0
    }

    /// `part;dur=milliseconds, ...` (RFC: Server Timing, W3C).
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(part, d)| format!("{part};dur={:.2}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every projection's state, and the catch-up subscribers' checkpoints, each query timed in
/// `timings`. Nothing here reads more than a few index entries per projection or subscriber:
/// the page stays fast however long the log. One transaction, without JIT: the planner costs
/// these probes by the size of the tables they probe, and compiling them took longer than
/// running them.
pub fn overview(
    conn: &mut PgConnection,
    projections: &crate::es::Projections,
    timings: &mut Timings,
) -> QueryResult<(Vec<ProjectionRow>, Vec<SubscriberStatus>)> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL jit = off").execute(conn)?;
        overview_of(conn, projections, timings)
    })
}

fn overview_of(
    conn: &mut PgConnection,
    projections: &crate::es::Projections,
    timings: &mut Timings,
) -> QueryResult<(Vec<ProjectionRow>, Vec<SubscriberStatus>)> {
    let statuses = timings.time("subscribers", || subscriber::statuses(conn))?;
    let inline_types: BTreeSet<String> = projections
        .iter()
        .filter(|p| !projections.is_catch_up(p.name()))
        .flat_map(|p| p.handles().iter().map(|t| t.to_string()))
        .collect();
    let heads = timings.time("positions", || {
        last_positions(conn, inline_types.into_iter().collect())
    })?;
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    let sizes = timings.time("rows", || table_sizes(conn, &tables))?;
    let mut runs: HashMap<String, Run> = timings
        .time("runs", || {
            projection_runs::table.select(Run::as_select()).load(conn)
        })?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect();
    let mut out = Vec::new();
    for p in projections.iter() {
        let catch_up = projections.is_catch_up(p.name());
        let status = statuses.iter().find(|s| s.name == p.name());
        let position = match (catch_up, status) {
            (true, Some(s)) => s.last_position,
            (true, None) => 0,
            (false, _) => p
                .handles()
                .iter()
                .filter_map(|t| heads.get(*t))
                .copied()
                .max()
                .unwrap_or(0),
        };
        let (mut rows, mut rows_estimated) = (0, false);
        for t in p.tables() {
            let (n, estimated) = sizes.get(*t).copied().unwrap_or((0, false));
            rows += n;
            rows_estimated |= estimated;
        }
        out.push(ProjectionRow {
            name: p.name().to_owned(),
            mode: if catch_up { "catch-up" } else { "inline" },
            position,
            events_handled: status.filter(|_| catch_up).map(|s| s.events_handled),
            behind: status.filter(|_| catch_up).map(|s| s.behind),
            behind_estimated: status.is_some_and(|s| catch_up && s.behind_estimated),
            rows,
            rows_estimated,
            tables: p.tables().iter().map(|t| t.to_string()).collect(),
            run: runs.remove(p.name()).map(RunView::of),
        });
    }
    Ok((out, statuses))
}

/// Record the start of a run; `false` when one is already running (and alive: it reported in the
/// last minute).
pub fn claim_run(conn: &mut PgConnection, name: &str, kind: &str) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO projection_runs (name, kind, state, phase) VALUES ($1, $2, 'running', 'preparing') \
         ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, state = 'running', phase = 'preparing', events_total = 0, \
           events_done = 0, differences = NULL, message = '', started_at = now(), updated_at = now(), \
           finished_at = NULL \
         WHERE projection_runs.state <> 'running' OR projection_runs.updated_at < now() - interval '1 minute'",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .bind::<diesel::sql_types::Text, _>(kind)
    .execute(conn)?;
    Ok(n == 1)
}

fn report(pool: &PgPool, name: &str, f: impl FnOnce(&mut PgConnection) -> QueryResult<usize>) {
    if let Ok(mut conn) = pool.get() {
        if let Err(e) = f(&mut conn) {
            tracing::warn!(projection = name, error = %e, "cannot record progress");
        }
    } else {
        tracing::warn!(projection = name, "no connection to record progress");
    }
}

/// Run a rebuild or verify to its end, recording progress (called on a background thread).
pub fn execute_run(pool: &PgPool, projection: &dyn Projection, catch_up: bool, kind: &str) {
    let name = projection.name();
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let mut last_phase = None;
    let on_progress = |p: ShadowProgress| {
        // A new phase is shown at once; progress within one, at most five times a second.
        if last_phase != Some(p.phase) || last_report.elapsed() >= Duration::from_millis(200) {
            last_report = Instant::now();
            last_phase = Some(p.phase);
            report(pool, name, |conn| {
                diesel::update(projection_runs::table.find(name))
                    .set((
                        projection_runs::events_done.eq(p.events_done as i64),
                        projection_runs::events_total.eq(p.events_total as i64),
                        projection_runs::phase.eq(p.phase.as_str()),
                        projection_runs::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)
            });
        }
    };
    let outcome: Result<(String, Option<i64>, i64), String> = match pool.get() {
        Err(e) => Err(e.to_string()),
        Ok(mut conn) => {
            // A second connection, when the pool has one to spare, builds indexes alongside
            // at the end of the replay.
            let mut helper = pool.get_timeout(Duration::from_secs(1)).ok();
            let helper = helper.as_deref_mut();
            if kind == "verify" {
                shadow::verify(&mut conn, helper, projection, catch_up, 2_000, on_progress)
                    .map(|d| {
                        let mut msg = if d.is_empty() {
                            "no difference from a rebuild".to_owned()
                        } else {
                            format!("{} rows differ from a rebuild", d.len())
                        };
                        for diff in d.iter().take(20) {
                            msg.push('\n');
                            msg.push_str(&diff.to_string());
                        }
                        (msg, Some(d.len() as i64), 0)
                    })
                    .map_err(|e| e.to_string())
            } else {
                shadow::rebuild(&mut conn, helper, projection, catch_up, 2_000, on_progress)
                    .map(|r| {
                        (
                            format!("{} events replayed, {} rows", r.events, r.rows),
                            None,
                            r.events as i64,
                        )
                    })
                    .map_err(|e| e.to_string())
            }
        }
    };
    report(pool, name, |conn| {
        let (state, message, differences) = match &outcome {
            Ok((m, d, _)) => ("done", m.clone(), *d),
            Err(e) => ("failed", e.clone(), None),
        };
        diesel::update(projection_runs::table.find(name))
            .set((
                projection_runs::state.eq(state),
                projection_runs::phase.eq(""),
                projection_runs::message.eq(message),
                projection_runs::differences.eq(differences),
                projection_runs::events_done.eq(diesel::dsl::sql::<BigInt>(
                    "GREATEST(events_done, events_total)",
                )),
                projection_runs::updated_at.eq(diesel::dsl::now),
                projection_runs::finished_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
    });
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(projections_page)
        .service(start_run)
        .service(progress);
}

#[get("/admin/projections")]
async fn projections_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let st = state(&req).clone();
    let store = st.store.clone();
    let replicas = st.replicas.clone();
    let waited = Instant::now();
    let (((rows, subscribers), replicas), mut timings) = st
        .query(move |conn| {
            let mut timings = Timings::default();
            timings.0.push(("connection", waited.elapsed()));
            let overview = overview(conn, store.projections(), &mut timings)?;
            let lag = timings.time("replicas", || replicas.lag(conn));
            Ok(((overview, lag), timings))
        })
        .await?;
    let mut ctx = Context::new();
    ctx.insert("projections", &rows);
    ctx.insert("subscribers", &subscribers);
    ctx.insert("replicas", &replicas);
    let mut res = timings.time("render", || {
        render(&req, "ops/projections.html", "ops/projections.html", ctx)
    })?;
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&timings.header()) {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("server-timing"),
            v,
        );
    }
    Ok(res)
}

#[post("/admin/projections/{name}/{kind}")]
async fn start_run(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let (name, kind) = path.into_inner();
    if kind != "rebuild" && kind != "verify" {
        return Err(AppError::NotFound);
    }
    let st = state(&req).clone();
    let projection: Arc<dyn Projection> = st
        .store
        .projections()
        .get(&name)
        .cloned()
        .ok_or(AppError::NotFound)?;
    let catch_up = st.store.projections().is_catch_up(&name);
    let (n, k) = (name.clone(), kind.clone());
    let claimed = st.db(move |conn| Ok(claim_run(conn, &n, &k)?)).await?;
    if !claimed {
        return Err(AppError::Conflict(format!(
            "A rebuild or verify of {name} is already running; wait for it to finish."
        )));
    }
    let pool = st.pool.clone();
    let k = kind.clone();
    std::thread::Builder::new()
        .name(format!("{kind}-{name}"))
        .spawn(move || execute_run(&pool, projection.as_ref(), catch_up, &k))
        .map_err(AppError::internal)?;
    tracing::info!(projection = %name, %kind, user_id = %viewer.user_id, "projection run started");
    if is_htmx(&req) {
        let run = st.db(move |conn| Ok(run_of(conn, &name)?)).await?;
        let mut ctx = Context::new();
        ctx.insert(
            "p",
            &serde_json::json!({"name": run.as_ref().map(|r| r.name.clone())}),
        );
        ctx.insert("run", &run.map(RunView::of));
        let mut res = render(&req, "ops/_progress.html", "ops/_progress.html", ctx)?;
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("hx-trigger"),
            actix_web::http::header::HeaderValue::from_static("ProjectionRunStarted"),
        );
        return Ok(res);
    }
    Ok(flash_redirect(
        "/admin/projections",
        "success",
        &format!("The {kind} of {} started.", path_name(&req)),
    ))
}

fn path_name(req: &HttpRequest) -> String {
    req.match_info().get("name").unwrap_or("").to_owned()
}

/// The progress of the last run of a projection (polled by HTMX while it runs).
#[get("/admin/projections/{name}/progress")]
async fn progress(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let name = path.into_inner();
    let st = state(&req).clone();
    if st.store.projections().get(&name).is_none() {
        return Err(AppError::NotFound);
    }
    let n = name.clone();
    let run = st.db(move |conn| Ok(run_of(conn, &n)?)).await?;
    let mut ctx = Context::new();
    ctx.insert("p", &serde_json::json!({"name": name}));
    ctx.insert("run", &run.map(RunView::of));
    render(&req, "ops/progress.html", "ops/_progress.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &str, phase: &str, done: i64, total: i64, message: &str) -> Run {
        let now = Utc::now();
        Run {
            name: "users".into(),
            kind: "rebuild".into(),
            state: state.into(),
            events_total: total,
            events_done: done,
            differences: None,
            message: message.into(),
            started_at: now - chrono::Duration::seconds(2),
            updated_at: now,
            finished_at: (state != "running").then_some(now),
            phase: phase.into(),
        }
    }

    #[test]
    fn every_step_of_a_run_is_named() {
        // Just claimed: no total yet, so no "0 / 0" but an indeterminate "preparing".
        let v = RunView::of(run("running", "preparing", 0, 0, ""));
        assert_eq!((v.step.as_str(), v.percent), ("preparing", None));
        let v = RunView::of(run("running", "replaying", 50, 200, ""));
        assert_eq!((v.step.as_str(), v.percent), ("replaying", Some(25)));
        assert!(v.seconds_left.is_some());
        // At 100% the run says what it still does.
        for phase in ["indexing", "analyzing", "swapping", "comparing"] {
            let v = RunView::of(run("running", phase, 200, 200, ""));
            assert_eq!(
                (v.step.as_str(), v.percent, v.seconds_left),
                (phase, Some(100), None)
            );
        }
        let v = RunView::of(run(
            "done",
            "",
            200,
            200,
            "3 rows differ from a rebuild\na\nb",
        ));
        assert_eq!(v.step, "done");
        assert_eq!(v.summary, "3 rows differ from a rebuild");
        assert_eq!(v.details, ["a", "b"]);
    }
}
