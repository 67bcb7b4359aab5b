//! `/metrics` in the Prometheus text format, without a metrics crate: a few maps behind one
//! mutex, filled by the request frame (requests by matched route pattern and status, latency),
//! the event store's counters (`es::stats`), and queries at scrape time (subscriber lag, pool).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::es::{stats, subscriber};
use crate::web::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Registry {
    /// (method, route, status) -> count
    requests: BTreeMap<(String, String, u16), u64>,
    /// route -> latency
    latency: BTreeMap<String, Histogram>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

/// Count one request. `route` is the matched pattern (`/admin/accounts/{id}`), never the raw
/// path, so the number of series stays bounded.
pub fn observe_request(method: &str, route: &str, status: u16, seconds: f64) {
    let Ok(mut guard) = REGISTRY.lock() else {
        return;
    };
    let reg = guard.get_or_insert_with(Registry::default);
    *reg.requests
        .entry((method.to_owned(), route.to_owned(), status))
        .or_default() += 1;
    let h = reg.latency.entry(route.to_owned()).or_default();
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            h.counts[i] += 1;
        }
    }
    h.count += 1;
    h.sum += seconds;
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition (without the parts that need the database).
pub fn render_process() -> String {
    let mut out = String::new();
    let guard = REGISTRY.lock();
    let empty = Registry::default();
    let reg = match &guard {
        Ok(g) => g.as_ref().unwrap_or(&empty),
        Err(_) => &empty,
    };
    out.push_str("# HELP heyboss_http_requests_total HTTP requests by matched route and status.\n");
    out.push_str("# TYPE heyboss_http_requests_total counter\n");
    for ((method, route, status), n) in &reg.requests {
        let _ = writeln!(
            out,
            "heyboss_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
            label(method),
            label(route)
        );
    }
    out.push_str(
        "# HELP heyboss_http_request_duration_seconds Request latency by matched route.\n",
    );
    out.push_str("# TYPE heyboss_http_request_duration_seconds histogram\n");
    for (route, h) in &reg.latency {
        let route = label(route);
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "heyboss_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "heyboss_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "heyboss_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "heyboss_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
            h.count
        );
    }
    drop(guard);
    out.push_str(
        "# HELP heyboss_events_appended_total Events appended by this process, by type.\n",
    );
    out.push_str("# TYPE heyboss_events_appended_total counter\n");
    for (event_type, n) in stats::appended_by_type() {
        let _ = writeln!(
            out,
            "heyboss_events_appended_total{{event_type=\"{}\"}} {n}",
            label(&event_type)
        );
    }
    out.push_str("# HELP heyboss_command_conflicts_total Commands that met a concurrent change.\n");
    out.push_str("# TYPE heyboss_command_conflicts_total counter\n");
    let _ = writeln!(
        out,
        "heyboss_command_conflicts_total {}",
        stats::conflicts()
    );
    out
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(metrics).service(healthz);
}

/// `/healthz`: 200 when the database answers, 503 otherwise (DESIGN section 6).
#[get("/healthz")]
async fn healthz(state: web::Data<crate::web::AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ok = web::block(move || -> bool {
        use diesel::RunQueryDsl;
        pool.get()
            .ok()
            .and_then(|mut c| diesel::sql_query("SELECT 1").execute(&mut c).ok())
            .is_some()
    })
    .await
    .unwrap_or(false);
    if ok {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "ok"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "database": "unreachable"}))
    }
}

/// When `HEYBOSS_METRICS_TOKEN` is set, a scrape must send `Authorization: Bearer <token>`.
fn authorized(req: &HttpRequest) -> bool {
    let Ok(token) = std::env::var("HEYBOSS_METRICS_TOKEN") else {
        return true;
    };
    if token.is_empty() {
        return true;
    }
    req.headers()
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| crate::secrets::constant_time_eq(given, &token))
}

/// Read replicas: lag behind the primary and where the read-only pages' reads went.
async fn render_replicas(out: &mut String, state: &AppState) {
    let (pool, replicas) = (state.pool.clone(), state.replicas.clone());
    let lags = web::block(move || {
        let mut conn = pool.get().ok()?;
        Some(replicas.lag(&mut conn))
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_default();
    out.push_str("# HELP heyboss_replica_up Whether a read replica answers (1) or not (0).\n");
    out.push_str("# TYPE heyboss_replica_up gauge\n");
    for l in &lags {
        let _ = writeln!(
            out,
            "heyboss_replica_up{{replica=\"{}\"}} {}",
            label(&l.replica),
            u8::from(l.up)
        );
    }
    out.push_str("# HELP heyboss_replica_lag_bytes WAL a read replica has still to replay.\n");
    out.push_str("# TYPE heyboss_replica_lag_bytes gauge\n");
    for l in &lags {
        if let Some(bytes) = l.lag_bytes {
            let _ = writeln!(
                out,
                "heyboss_replica_lag_bytes{{replica=\"{}\"}} {bytes}",
                label(&l.replica)
            );
        }
    }
    out.push_str("# HELP heyboss_replica_lag_seconds Age of the newest commit a read replica has replayed, while it is behind (0 when caught up).\n");
    out.push_str("# TYPE heyboss_replica_lag_seconds gauge\n");
    for l in &lags {
        if let Some(seconds) = l.lag_seconds {
            let _ = writeln!(
                out,
                "heyboss_replica_lag_seconds{{replica=\"{}\"}} {seconds:.3}",
                label(&l.replica)
            );
        }
    }
    out.push_str(
        "# HELP heyboss_reads_total Reads of the read-only pages, by where they were served.\n",
    );
    out.push_str("# TYPE heyboss_reads_total counter\n");
    for (served, n) in crate::replicas::served_counts() {
        let _ = writeln!(
            out,
            "heyboss_reads_total{{served_by=\"{}\"}} {n}",
            served.label()
        );
    }
}

#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !authorized(&req) {
        return HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .content_type("text/plain; charset=utf-8")
            .body("a bearer token is required\n");
    }
    let mut out = render_process();
    let pool_state = state.pool.state();
    let max = state.pool.max_size();
    out.push_str("# HELP heyboss_db_pool_connections Database connections by state.\n");
    out.push_str("# TYPE heyboss_db_pool_connections gauge\n");
    let _ = writeln!(
        out,
        "heyboss_db_pool_connections{{state=\"idle\"}} {}",
        pool_state.idle_connections
    );
    let _ = writeln!(
        out,
        "heyboss_db_pool_connections{{state=\"in_use\"}} {}",
        pool_state.connections - pool_state.idle_connections
    );
    let _ = writeln!(out, "heyboss_db_pool_max_connections {max}");
    let pool = state.pool.clone();
    let (statuses, unsent) = web::block(move || {
        let Ok(mut conn) = pool.get() else {
            return (None, None);
        };
        (
            subscriber::statuses(&mut conn).ok(),
            super::mail::unsent(&mut conn).ok(),
        )
    })
    .await
    .unwrap_or((None, None));
    out.push_str("# HELP heyboss_subscriber_lag_events Committed events after a catch-up subscriber's checkpoint.\n");
    out.push_str("# TYPE heyboss_subscriber_lag_events gauge\n");
    let mut seconds = String::new();
    for s in statuses.iter().flatten() {
        let _ = writeln!(
            out,
            "heyboss_subscriber_lag_events{{subscriber=\"{}\"}} {}",
            label(&s.name),
            s.behind
        );
        let _ = writeln!(
            seconds,
            "heyboss_subscriber_checkpoint_position{{subscriber=\"{}\"}} {}",
            label(&s.name),
            s.last_position
        );
    }
    out.push_str(
        "# HELP heyboss_subscriber_checkpoint_position Last position handled by a subscriber.\n",
    );
    out.push_str("# TYPE heyboss_subscriber_checkpoint_position gauge\n");
    out.push_str(&seconds);
    if let Some(n) = unsent {
        out.push_str("# HELP heyboss_notification_emails_unsent Emails in the outbox not yet accepted by the SMTP server.\n");
        out.push_str("# TYPE heyboss_notification_emails_unsent gauge\n");
        let _ = writeln!(out, "heyboss_notification_emails_unsent {n}");
    }
    render_replicas(&mut out, &state).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(out)
}
