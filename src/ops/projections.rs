//! The projections page (`/admin/projections`): each projection's mode, position, rows and state,
//! with rebuild and verify run in the background. Their progress is kept in `projection_runs`, so
//! whichever instance serves the polling request shows it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;
use tera::Context;

use crate::accounts::{Role, Viewer};
use crate::db::{quote_ident, PgPool};
use crate::es::shadow::{self, ShadowProgress};
use crate::es::{subscriber, Projection};
use crate::schema::{events, projection_runs};
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
}

/// A run as the page shows it.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub run: Run,
    pub percent: i64,
    pub rate: i64,
    pub seconds_left: Option<i64>,
}

impl RunView {
    fn of(run: Run) -> RunView {
        let end = run.finished_at.unwrap_or(run.updated_at);
        let secs = (end - run.started_at).num_milliseconds().max(1) as f64 / 1000.0;
        let rate = run.events_done as f64 / secs;
        let left = (run.events_total - run.events_done).max(0) as f64;
        RunView {
            percent: if run.events_total > 0 {
                (run.events_done * 100 / run.events_total).min(100)
            } else if run.state == "running" {
                0
            } else {
                100
            },
            rate: rate as i64,
            seconds_left: (run.state == "running" && rate > 0.0)
                .then(|| (left / rate).ceil() as i64),
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
    pub rows: i64,
    pub tables: Vec<String>,
    pub run: Option<RunView>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn rows_of(conn: &mut PgConnection, p: &dyn Projection) -> QueryResult<i64> {
    let mut n = 0;
    for t in p.tables() {
        let c: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {}", quote_ident(t)))
            .get_result(conn)?;
        n += c.n;
    }
    Ok(n)
}

pub fn run_of(conn: &mut PgConnection, name: &str) -> QueryResult<Option<Run>> {
    projection_runs::table
        .find(name)
        .select(Run::as_select())
        .first(conn)
        .optional()
}

/// Every projection's state.
pub fn overview(
    conn: &mut PgConnection,
    projections: &crate::es::Projections,
) -> QueryResult<Vec<ProjectionRow>> {
    let statuses = subscriber::statuses(conn)?;
    let mut out = Vec::new();
    for p in projections.iter() {
        let catch_up = projections.is_catch_up(p.name());
        let status = statuses.iter().find(|s| s.name == p.name());
        let position = match (catch_up, status) {
            (true, Some(s)) => s.last_position,
            (true, None) => 0,
            (false, _) => events::table
                .filter(events::event_type.eq_any(p.handles().to_vec()))
                .select(diesel::dsl::max(events::position))
                .first::<Option<i64>>(conn)?
                .unwrap_or(0),
        };
        out.push(ProjectionRow {
            name: p.name().to_owned(),
            mode: if catch_up { "catch-up" } else { "inline" },
            position,
            events_handled: status.filter(|_| catch_up).map(|s| s.events_handled),
            behind: status.filter(|_| catch_up).map(|s| s.behind),
            rows: rows_of(conn, p.as_ref())?,
            tables: p.tables().iter().map(|t| t.to_string()).collect(),
            run: run_of(conn, p.name())?.map(RunView::of),
        });
    }
    Ok(out)
}

/// Record the start of a run; `false` when one is already running (and alive: it reported in the
/// last minute).
pub fn claim_run(conn: &mut PgConnection, name: &str, kind: &str) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO projection_runs (name, kind, state) VALUES ($1, $2, 'running') \
         ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, state = 'running', events_total = 0, \
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
    let on_progress = |p: ShadowProgress| {
        if last_report.elapsed() >= Duration::from_millis(200) {
            last_report = Instant::now();
            report(pool, name, |conn| {
                diesel::update(projection_runs::table.find(name))
                    .set((
                        projection_runs::events_done.eq(p.events_done as i64),
                        projection_runs::events_total.eq(p.events_total as i64),
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
    let (rows, subscribers, replicas) = st
        .db(move |conn| {
            Ok((
                overview(conn, store.projections())?,
                subscriber::statuses(conn)?,
                replicas.lag(conn),
            ))
        })
        .await?;
    let mut ctx = Context::new();
    ctx.insert("projections", &rows);
    ctx.insert("subscribers", &subscribers);
    ctx.insert("replicas", &replicas);
    render(&req, "ops/projections.html", "ops/projections.html", ctx)
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
