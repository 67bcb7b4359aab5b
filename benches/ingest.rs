//! `cargo bench --bench ingest`: sensor events per second through the real HTTP API in batches
//! of 500, with every inline projection, at 100,000 and 1,000,000 events (HEYBOSS_BENCH_SCALE
//! scales both), against a baseline in the same run: the same API with one event per request.
//!
//! Then 1,000,000 events with the reports delayed (`threat_hits` a catch-up subscriber): events
//! per second, and the seconds from the last answer until the reports have applied every event.
//!
//! Then several daemons scoring the same sessions at once: sessions and files posted first, then
//! `FileScored` batches of 500 for random files (a tenth as many sessions as events) from 1, 2, 4
//! and 8 posters, each a fresh store; the baseline is the one poster. Each must reach the one
//! poster's rate in aggregate with no deadlock (PostgreSQL's count for the database), no batch
//! retried by the server and no 409.
//!
//! `HEYBOSS_BENCH_ONLY=inline`, `=delayed` or `=overlap` runs one part. `=alone` runs the
//! ceiling of the delayed part (not part of a full run): the same events with the reports
//! delayed and no subscriber running, so that no report work is done at all.
//!
//! Each batched run also prints the CPU it took per event: the bench process (clients, HTTP
//! server, validation) and the PostgreSQL backends of its database, from `/proc`.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use heyboss::es::{Actor, CommandContext, Metadata};
use heyboss::testing::TestApp;
use heyboss::threats::simulate::{self, EventSource, HttpClient, Scorers};
use heyboss::threats::{ingest, service};

fn clients() -> u64 {
    std::env::var("HEYBOSS_BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// The demo signatures and a sensor; returns the sensor's token and the signature names.
fn sensor(app: &TestApp) -> (String, Vec<String>) {
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    for (name, group) in simulate::DEMO_SIGNATURES {
        service::set_signature(&mut conn, &app.state.store, &ctx, name, group, None, None).unwrap();
    }
    let token = service::create_sensor(&mut conn, &app.state.store, &ctx, "bench")
        .unwrap()
        .1;
    let names = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    (token, names)
}

/// The report projection run as a catch-up subscriber ("delay the writes to the report").
const DELAYED: &str = "threat_hits";

/// What one run did: events per second through the API, and with the reports delayed, the
/// seconds from the last answer until the report projection had applied every event.
struct Rate {
    rate: f64,
    lag_after: Option<f64>,
    /// CPU-seconds of the run: the bench process, and its database's backends.
    cpu: (f64, f64),
    events: u64,
}

impl Rate {
    /// "CPU per event: ..." for the line of a run.
    fn cpu_line(&self) -> String {
        let (app, db) = self.cpu;
        let per = |s: f64| s * 1e6 / self.events as f64;
        format!(
            "CPU {:.1} s (bench process {app:.1} s, its backends {db:.1} s): {:.0} us an event ({:.0} + {:.0})",
            app + db,
            per(app + db),
            per(app),
            per(db)
        )
    }
}

/// The user and system CPU-seconds a process has used, from `/proc/<pid>/stat` (in clock ticks
/// of 1/100 s, Linux's USER_HZ); 0 when it is gone.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis: state is the 3rd field, utime the 14th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

#[derive(QueryableByName)]
struct Backend {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The CPU-seconds of the backends connected to the app's database now (its pool and its
/// subscribers keep theirs for the whole run; the server runs on this machine).
fn backends_cpu(app: &TestApp) -> f64 {
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        .load::<Backend>(&mut conn)
        .unwrap()
        .iter()
        .map(|b| cpu_seconds(&b.pid.to_string()))
        .sum()
}

/// Post `total` events from CLIENTS concurrent sensors-clients, with the reports inline or
/// delayed.
fn run(total: u64, batch: usize, delayed: bool) -> Rate {
    run_with(total, batch, delayed, true)
}

/// As [`run`]; without `subscribers` no catch-up subscriber runs (delayed reports are then
/// never written, and the lag is not waited for).
fn run_with(total: u64, batch: usize, delayed: bool, subscribers: bool) -> Rate {
    let app = TestApp::spawn_with(|s| {
        s.pool_size = 8;
        s.run_subscribers = subscribers;
        if delayed {
            s.catch_up_projections = vec![DELAYED.to_owned()];
        }
    });
    let (token, names) = sensor(&app);
    let app_cpu_before = cpu_seconds("self");
    let db_cpu_before = backends_cpu(&app);
    let started = Instant::now();
    let clients = clients();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (base, token, names) = (app.address.clone(), token.clone(), names.clone());
            std::thread::spawn(move || {
                let mut generator = simulate::Generator::new(1000 + i, names, 50_000);
                simulate::run(&base, &token, &mut generator, total / clients, batch, 0).unwrap()
            })
        })
        .collect();
    let events: u64 = handles.into_iter().map(|h| h.join().unwrap().events).sum();
    let seconds = started.elapsed().as_secs_f64();
    let lag_after = (delayed && subscribers).then(|| {
        let answered = Instant::now();
        let mut conn = app.state.pool.get().unwrap();
        let head = heyboss::es::store::head_position(&mut conn).unwrap();
        let caught_up =
            heyboss::es::subscriber::wait_for(&mut conn, DELAYED, head, Duration::from_secs(600))
                .unwrap();
        assert!(caught_up, "the reports caught up within 10 minutes");
        answered.elapsed().as_secs_f64()
    });
    let cpu = (
        cpu_seconds("self") - app_cpu_before,
        backends_cpu(&app) - db_cpu_before,
    );
    let stored = common_count(&app);
    assert_eq!(
        stored as u64,
        events + simulate::DEMO_SIGNATURES.len() as u64 + 1,
        "every event stored once"
    );
    Rate {
        rate: events as f64 / seconds,
        lag_after,
        cpu,
        events,
    }
}

fn common_count(app: &TestApp) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    heyboss::schema::events::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

/// What one overlap run did.
struct Overlap {
    rate: f64,
    slowest: Duration,
    /// Answers other than 200, with their bodies.
    refused: Vec<String>,
    retries: u64,
    deadlocks: i64,
    /// Batches a transaction wrote, on average (the sensor API's group commit).
    per_transaction: f64,
}

#[derive(QueryableByName)]
struct Deadlocks {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    deadlocks: i64,
}

/// PostgreSQL's count of deadlocks detected in the current database.
fn deadlocks(app: &TestApp) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .get_result::<Deadlocks>(&mut conn)
        .unwrap()
        .deadlocks
}

/// `posters` daemons each post `events / posters` scores of random files of `events / 10`
/// sessions (two files each), in batches of 500, after the sessions and files were posted.
fn overlapping(posters: u64, events: u64) -> Overlap {
    let app = TestApp::spawn_with(|s| s.pool_size = 8);
    let (token, names) = sensor(&app);
    let plan = Scorers {
        sessions: (events / 10).max(1),
        files_per_session: 2,
    };
    let mut discoveries = plan.discoveries();
    let total = discoveries.len() as u64;
    simulate::run(&app.address, &token, &mut discoveries, total, 500, 0).unwrap();
    // Each poster's bodies are written before the clock starts: the posters share the 2 cores
    // with the server, and what is measured is the server.
    let bodies: Vec<Vec<(u64, String)>> = (0..posters)
        .map(|p| {
            let mut scorer = plan.scorer(p, names.clone());
            let mut left = events / posters;
            std::iter::from_fn(|| {
                let batch = scorer.batch(500.min(left as usize));
                left -= batch.len() as u64;
                let body = serde_json::json!({ "events": batch }).to_string();
                (!batch.is_empty()).then_some((batch.len() as u64, body))
            })
            .collect()
        })
        .collect();
    let (retries_before, deadlocks_before) = (ingest::retries(), deadlocks(&app));
    let writes_before = ingest::group_writes();
    let started = Instant::now();
    let outcomes: Vec<(u64, Duration, Vec<String>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = bodies
            .iter()
            .map(|bodies| {
                let (app, token) = (&app, &token);
                scope.spawn(move || {
                    let mut client = HttpClient::connect(&app.address).unwrap();
                    let (mut sent, mut slowest, mut refused) = (0, Duration::ZERO, Vec::new());
                    for (n, body) in bodies {
                        let posted = Instant::now();
                        let (status, answer) =
                            client.post_json("/api/v1/events", token, body).unwrap();
                        slowest = slowest.max(posted.elapsed());
                        if status != 200 {
                            refused.push(format!("{status} {answer}"));
                        }
                        sent += n;
                    }
                    (sent, slowest, refused)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let writes = ingest::group_writes();
    let per_transaction =
        (writes.1 - writes_before.1) as f64 / (writes.0 - writes_before.0).max(1) as f64;
    // Other backends report their counts when idle for a second.
    std::thread::sleep(Duration::from_millis(1500));
    Overlap {
        rate: outcomes.iter().map(|o| o.0).sum::<u64>() as f64 / seconds,
        slowest: outcomes.iter().map(|o| o.1).max().unwrap_or_default(),
        refused: outcomes.into_iter().flat_map(|o| o.2).collect(),
        retries: ingest::retries() - retries_before,
        deadlocks: deadlocks(&app) - deadlocks_before,
        per_transaction,
    }
}

fn main() {
    let scale: f64 = std::env::var("HEYBOSS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("cargo bench --bench ingest   ({} concurrent clients, keep-alive HTTP/1.1, all inline projections)", clients());
    // HEYBOSS_BENCH_ONLY=inline, =delayed or =overlap runs one part only.
    let only = std::env::var("HEYBOSS_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "inline" {
        ingest_rates(scale);
    }
    if only.is_empty() || only == "delayed" {
        delayed_rate(scale);
    }
    if only.is_empty() || only == "overlap" {
        overlap_rates(scale);
    }
    if only == "alone" {
        ingest_alone(scale);
    }
}

fn ingest_rates(scale: f64) {
    let baseline_events = (4_000.0 * scale.min(1.0)).max(400.0) as u64;
    let baseline = run(baseline_events, 1, false).rate;
    println!("baseline: {baseline_events} events, 1 event per request: {baseline:>9.0} events/s");
    for size in [100_000u64, 1_000_000] {
        let n = ((size as f64 * scale) as u64).max(clients() * 500);
        let r = run(n, 500, false);
        let rate = r.rate;
        println!(
            "{n:>9} events, batches of 500:      {rate:>9.0} events/s  ({:.1}x the baseline; goal 20,000/s: {}); {}",
            rate / baseline,
            if rate >= 20_000.0 { "met" } else { "NOT met" },
            r.cpu_line()
        );
    }
}

fn delayed_rate(scale: f64) {
    println!("reports delayed (HEYBOSS_CATCHUP_PROJECTIONS={DELAYED}):");
    let n = ((1_000_000.0 * scale) as u64).max(clients() * 500);
    let r = run(n, 500, true);
    let (rate, lag) = (r.rate, r.lag_after.unwrap_or_default());
    println!(
        "{n:>9} events, batches of 500:      {rate:>9.0} events/s  (goal 50,000/s: {}); \
         reports caught up {lag:.1} s after the last answer (goal 10 s: {}); {}",
        if rate >= 50_000.0 { "met" } else { "NOT met" },
        if lag <= 10.0 { "met" } else { "NOT met" },
        r.cpu_line()
    );
}

/// The ceiling of the delayed part: the same events with no report work at all (the report
/// projection delayed and no subscriber running), the CPU it takes per event.
fn ingest_alone(scale: f64) {
    println!("reports not written at all (HEYBOSS_CATCHUP_PROJECTIONS={DELAYED}, no subscriber):");
    let n = ((1_000_000.0 * scale) as u64).max(clients() * 500);
    let r = run_with(n, 500, true, false);
    println!(
        "{n:>9} events, batches of 500:      {:>9.0} events/s; {}",
        r.rate,
        r.cpu_line()
    );
}

fn overlap_rates(scale: f64) {
    let events = ((100_000.0 * scale) as u64).max(8 * 500);
    println!(
        "\nseveral daemons scoring the same sessions: {events} FileScored events in batches of 500 \
         for random files of {} sessions (2 files each), posted after them",
        events / 10
    );
    let mut one_poster = None;
    for posters in [1u64, 2, 4, 8] {
        let o = overlapping(posters, events);
        let baseline = *one_poster.get_or_insert(o.rate);
        let met = o.rate >= baseline && o.refused.is_empty() && o.retries == 0 && o.deadlocks == 0;
        println!(
            "  {posters} poster(s): {:>7.0} events/s ({:.2}x one poster), slowest batch {:>5} ms, \
             {:.1} batches a transaction, deadlocks {}, batches retried {}, refused {}: {}",
            o.rate,
            o.rate / baseline,
            o.slowest.as_millis(),
            o.per_transaction,
            o.deadlocks,
            o.retries,
            o.refused.len(),
            if met { "met" } else { "NOT met" }
        );
        for r in o.refused.iter().take(3) {
            println!("      {r}");
        }
    }
}
