//! `cargo bench --bench projections_page`: the admins' projections page (`GET /admin/projections`,
//! through the real HTTP stack, signed in) over a log of 1,000,000 sensor events with the threat
//! projections rebuilt from it (about 1.4 million read-model rows), against a baseline measured in
//! the same run: one bare `SELECT` of the same facts by the fastest query known (each handled
//! event type's last position by one index probe, each table's statistics, the checkpoints).
//! Also timed, for the record: what the page computed on each load before (a `count(*)` of every
//! read-model table and a `max(position)` over each projection's event types).
//!
//! Goal: the page under 100 ms (median and p95) at 1,000,000 events.
//! `HEYBOSS_BENCH_EVENTS` (default 1000000), `HEYBOSS_BENCH_REQUESTS` (default 50).

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::time::Instant;

use diesel::prelude::*;
use heyboss::es::{shadow, Actor, CommandContext, Metadata};
use heyboss::testing::{TestApp, TestDatabase};
use heyboss::threats::{service, simulate};

const PASSWORD: &str = "correct horse battery";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Milliseconds of each run of `f`, sorted.
fn timed(n: usize, mut f: impl FnMut()) -> Vec<f64> {
    let mut ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ms
}

fn row(what: &str, ms: &[f64]) {
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what:<46} {:>9.2} {:>9.2} {:>9.2}",
        at(0.5),
        at(0.95),
        ms[ms.len() - 1]
    );
}

/// `part;dur=1.25, other;dur=0.5` as (part, milliseconds).
fn server_timing(header: &str) -> Vec<(String, f64)> {
    header
        .split(',')
        .filter_map(|entry| {
            let (name, rest) = entry.trim().split_once(";dur=")?;
            Some((name.to_owned(), rest.trim().parse().ok()?))
        })
        .collect()
}

fn main() {
    let size = env("HEYBOSS_BENCH_EVENTS", 1_000_000);
    let requests = env("HEYBOSS_BENCH_REQUESTS", 50);
    println!(
        "cargo bench --bench projections_page  ({size} sensor events, {requests} requests per row)"
    );
    let db = TestDatabase::new();
    let mut conn = db.connect();
    let store = heyboss::startup::event_store();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    for (name, group) in simulate::DEMO_SIGNATURES {
        service::set_signature(&mut conn, &store, &ctx, name, group, None, None).unwrap();
    }
    let names = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let mut generator = simulate::Generator::new(42, names, 50_000);
    let started = Instant::now();
    simulate::append_unprojected(&mut conn, &mut generator, &mut HashMap::new(), size);
    eprintln!(
        "appended {size} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let projections = heyboss::startup::projections();
    let mut helper = db.connect();
    let mut rows = 0;
    for name in ["threat_sessions", "threat_hits"] {
        let p = projections.get(name).unwrap();
        rows += shadow::rebuild(
            &mut conn,
            Some(&mut helper),
            p.as_ref(),
            false,
            5_000,
            |_| {},
        )
        .unwrap()
        .rows;
    }
    eprintln!(
        "rebuilt {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The application on this database, and an admin's browser signed in to it.
    let url = db.url.clone();
    let app = TestApp::spawn_with(move |s| s.database_url = url);
    app.create_account("boss", "admin", PASSWORD);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let login = agent
        .get(&app.url("/login"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let token = heyboss::testing::csrf_token(&login).unwrap();
    let res = agent
        .post(&app.url("/login"))
        .send_form(&[
            ("csrf_token", &token),
            ("username", "boss"),
            ("password", PASSWORD),
        ])
        .unwrap();
    assert_eq!(res.status(), 303);
    let page_url = app.url("/admin/projections");
    // Each load's parts, from the page's Server-Timing header.
    let parts: RefCell<Vec<(String, f64)>> = RefCell::new(Vec::new());
    let load = || {
        let res = agent.get(&page_url).call().unwrap();
        assert_eq!(res.status(), 200);
        parts.borrow_mut().extend(server_timing(
            res.header("server-timing").unwrap_or_default(),
        ));
        let mut body = String::new();
        res.into_reader().read_to_string(&mut body).unwrap();
        body
    };
    let body = load();
    parts.borrow_mut().clear();
    assert!(
        body.contains("threat_hits"),
        "the page lists the projections"
    );

    // The same facts by one bare statement.
    let types: Vec<String> = projections
        .iter()
        .flat_map(|p| p.handles().iter().map(|t| t.to_string()))
        .collect();
    let tables: Vec<String> = projections
        .iter()
        .flat_map(|p| p.tables().iter().map(|t| t.to_string()))
        .collect();
    let bare = "SELECT (SELECT array_agg(x.position) FROM unnest($1::text[]) t(ty) CROSS JOIN LATERAL \
                  (SELECT position FROM events WHERE event_type = t.ty ORDER BY position DESC LIMIT 1) x), \
                (SELECT array_agg(pg_stat_get_live_tuples(to_regclass(t))) FROM unnest($2::text[]) t), \
                (SELECT array_agg(c.last_position) FROM subscriber_checkpoints c)";
    let before: Vec<String> = projections
        .iter()
        .map(|p| {
            let counts: Vec<String> = p
                .tables()
                .iter()
                .map(|t| format!("(SELECT count(*) FROM {t})"))
                .collect();
            let types: Vec<String> = p.handles().iter().map(|t| format!("'{t}'")).collect();
            format!(
                "SELECT {}, (SELECT max(position) FROM events WHERE event_type IN ({}))",
                counts.join(" + "),
                types.join(", ")
            )
        })
        .collect();

    println!("{:<46} {:>9} {:>9} {:>9}", "ms", "p50", "p95", "max");
    let before_runs = requests.min(5);
    let mut check = db.connect();
    row(
        &format!("before: counts and max per load ({before_runs} runs)"),
        &timed(before_runs, || {
            for q in &before {
                diesel::sql_query(q.as_str()).execute(&mut check).unwrap();
            }
        }),
    );
    row(
        "baseline: one bare SELECT of the same facts",
        &timed(requests, || {
            diesel::sql_query(bare)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&types)
                .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&tables)
                .execute(&mut check)
                .unwrap();
        }),
    );
    // The subscribers' backlog, counted as before (up to 10,000 events each) and as now.
    let behind_before = "SELECT c.name, CASE WHEN b.n <= 10000 THEN b.n \
           ELSE GREATEST(b.n, (SELECT max(position) FROM events) - c.last_position) END AS behind \
         FROM subscriber_checkpoints c CROSS JOIN LATERAL \
           (SELECT count(*) AS n FROM (SELECT 1 FROM events e \
              WHERE (e.transaction_id, e.position) > (c.last_transaction_id, c.last_position) \
              LIMIT 10001) x) b ORDER BY c.name";
    row(
        "before: subscribers' backlog counted to 10,000",
        &timed(requests, || {
            diesel::sql_query(behind_before)
                .execute(&mut check)
                .unwrap();
        }),
    );
    let behind_capped = behind_before
        .replace(
            "10000",
            &heyboss::es::subscriber::BEHIND_COUNTED.to_string(),
        )
        .replace(
            "10001",
            &(heyboss::es::subscriber::BEHIND_COUNTED + 1).to_string(),
        );
    row(
        "  the same counted to 1,000 (JIT as configured)",
        &timed(requests, || {
            diesel::sql_query(&behind_capped)
                .execute(&mut check)
                .unwrap();
        }),
    );
    row(
        "now: subscribers' backlog (1,000, no JIT)",
        &timed(requests, || {
            heyboss::es::subscriber::statuses(&mut check).unwrap();
        }),
    );
    if std::env::var("HEYBOSS_BENCH_EXPLAIN").is_ok() {
        #[derive(QueryableByName)]
        struct Plan {
            #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
            line: String,
        }
        let table_names: Vec<&str> = tables.iter().map(String::as_str).collect();
        let sizes = heyboss::ops::projections::table_sizes_sql(&table_names);
        for (what, q, jit) in [
            ("subscribers' backlog, before", behind_before, "on"),
            ("subscribers' backlog, now", behind_capped.as_str(), "off"),
            ("rows of the read models, now", sizes.as_str(), "off"),
        ] {
            diesel::sql_query(format!("SET jit = {jit}"))
                .execute(&mut check)
                .unwrap();
            let plan: Vec<Plan> = diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {q}"))
                .load(&mut check)
                .unwrap();
            eprintln!("-- {what} (jit {jit}):");
            for p in plan {
                eprintln!("{}", p.line);
            }
        }
        diesel::sql_query("RESET jit").execute(&mut check).unwrap();
    }
    let http = timed(requests, || {
        load();
    });
    row("GET /admin/projections (HTTP, signed in)", &http);
    // Where each load's time went, by the page's own timing of its parts; "outside" is the rest
    // of the request (session, middleware, HTTP, reading the body).
    let parts = parts.into_inner();
    let mut names: Vec<&str> = Vec::new();
    for (name, _) in &parts {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for name in &names {
        let mut ms: Vec<f64> = parts
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, ms)| *ms)
            .collect();
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        row(&format!("  part: {name}"), &ms);
    }
    let inside: f64 = parts.iter().map(|(_, ms)| ms).sum::<f64>() / requests as f64;
    let mean = http.iter().sum::<f64>() / requests as f64;
    println!(
        "  (mean {mean:.2} ms a load, of which {inside:.2} ms in the parts above, {:.2} ms outside)",
        mean - inside
    );
    let events: i64 = diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM events")
        .get_result(&mut check)
        .unwrap();
    println!("events in the log: {events}; read-model rows rebuilt: {rows}");
    let behind: Vec<String> = heyboss::es::subscriber::statuses(&mut check)
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s.name, s.behind))
        .collect();
    println!("subscribers behind at the end: {}", behind.join(", "));
}
