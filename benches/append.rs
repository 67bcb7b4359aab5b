//! Commands per second and latency of the command executor (load, decide, append one event, one
//! inline projection, commit) from 1 and 8 clients, against the same SQL run as bare transactions
//! at their fastest, as pgbench runs them: each statement prepared once per connection, over
//! connections with PostgreSQL's default settings (no per-statement planning, no ping): the
//! database's own limit for this work on this machine. The executor runs on the application's
//! pool (`db::pool`, as `serve` does).
//!
//! Every run, bare or executor, is a fixed number of commands on the same sequence of streams, so
//! each run meets streams of the same lengths whatever the rates of the runs before it (a command
//! loads its whole stream: when runs were timed, a slow bare run left shorter streams for the
//! executor after it, and a build with a slow bare SQL looked faster; docs/BENCHMARKS.md, issue 22).
//! Runs alternate bare, executor, bare, executor, so each executor run meets streams about one event
//! longer than the bare run before it: the same in every build.
//! The bare SQL is the storage's own statements: on a partitioned log (a `streams` table) the load
//! through `events_load_stream` and the insert with its claim in `streams`; on the unpartitioned log
//! of before (34ef0cd) a plain read of `events` and a plain insert. So one source builds and runs
//! against both, for an A/B of the storage.
//!
//! Run: cargo bench --bench append   (APPEND_BENCH_COMMANDS=N to change the commands per run;
//! default 10,000)

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Text};
use heyboss::es::projection::ProjectionError;
use heyboss::es::{
    Actor, CommandContext, Decider, DomainEvent, EventStore, Metadata, Projection, Projections,
    RecordedEvent,
};
use heyboss::testing::TestDatabase;
use serde::{Deserialize, Serialize};

const STREAMS: u64 = 10_000;

/// One command (or its bare-SQL twin) on a stream, over a pooled connection.
type Work = Arc<dyn Fn(&mut PgConnection, &str) + Send + Sync>;

struct Tally;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TallyEvent {
    Counted { by: i64 },
}
impl DomainEvent for TallyEvent {}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Decider for Tally {
    const STREAM_TYPE: &'static str = "tally";
    type State = i64;
    type Command = i64;
    type Event = TallyEvent;
    type Rejection = Never;
    fn decide(_: &i64, by: &i64) -> Result<Vec<TallyEvent>, Never> {
        Ok(vec![TallyEvent::Counted { by: *by }])
    }
    fn evolve(state: i64, e: &TallyEvent) -> i64 {
        match e {
            TallyEvent::Counted { by } => state + by,
        }
    }
}

struct TallyTotals;
impl Projection for TallyTotals {
    fn name(&self) -> &'static str {
        "tally_totals"
    }
    fn handles(&self) -> &'static [&'static str] {
        &["Counted"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["tally_totals"]
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let TallyEvent::Counted { by } = event.decode()?;
        heyboss::prepared::prepared(UPSERT)
            .bind::<Text, _>(&event.stream_id)
            .bind::<BigInt, _>(by)
            .execute(conn)?;
        Ok(())
    }
}

// The partitioned log's statements, as es::store runs them. The load through `events_load_stream`:
// its plans are generic and kept per connection, and they prune the partitions at start-up. A bare
// read of the partitioned `events` without bounds, planned at default plan caching, probes every
// partition and made the baseline slower than the executor (580-1,102 cmd/s at 8 clients): not the
// statements at their fastest.
const LOAD: &str = "SELECT position, stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at, transaction_id FROM events_load_stream($1, $2)";
// The stream's next version claimed in `streams` in the same statement, as es::store does.
const INSERT_NEW: &str = "WITH claim AS (INSERT INTO streams (stream_type, stream_id, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1) INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata) SELECT $1, $2, $3, 'Counted', 1, $4, $5 FROM claim RETURNING position";
const INSERT_NEXT: &str = "WITH claim AS (UPDATE streams SET version = $3 WHERE stream_type = $1 AND stream_id = $2 AND version = $3 - 1 RETURNING 1) INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata) SELECT $1, $2, $3, 'Counted', 1, $4, $5 FROM claim RETURNING position";
// The unpartitioned log's (before the `streams` table): a read of `events`, and an insert that
// the unique (stream, version) key fails on a conflict.
const LOAD_UNPARTITIONED: &str = "SELECT position, stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at, transaction_id FROM events WHERE stream_type = $1 AND stream_id = $2 ORDER BY stream_version";
const INSERT_UNPARTITIONED: &str = "INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata) VALUES ($1, $2, $3, 'Counted', 1, $4, $5) RETURNING position";
const UPSERT: &str = "INSERT INTO tally_totals (id, total) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET total = tally_totals.total + EXCLUDED.total";

#[derive(QueryableByName)]
struct Loaded {
    #[diesel(sql_type = BigInt)]
    stream_version: i64,
}

/// The same statements as a command, written by hand: the floor the executor is compared with.
/// `partitioned`: the store has the `streams` table (the partitioned log).
fn bare_command(conn: &mut PgConnection, stream: &str, partitioned: bool) -> QueryResult<()> {
    conn.transaction(|conn| {
        let loaded: Vec<Loaded> = heyboss::prepared::prepared(if partitioned {
            LOAD
        } else {
            LOAD_UNPARTITIONED
        })
        .bind::<Text, _>("tally")
        .bind::<Text, _>(stream)
        .load(conn)?;
        let version = loaded.last().map_or(0, |l| l.stream_version);
        let meta = serde_json::json!({"actor": {"kind": "cli"}});
        let insert = match (partitioned, version) {
            (false, _) => INSERT_UNPARTITIONED,
            (true, 0) => INSERT_NEW,
            (true, _) => INSERT_NEXT,
        };
        let inserted = heyboss::prepared::prepared(insert)
            .bind::<Text, _>("tally")
            .bind::<Text, _>(stream)
            .bind::<BigInt, _>(version + 1)
            .bind::<Jsonb, _>(serde_json::json!({"by": 1}))
            .bind::<Jsonb, _>(meta)
            .execute(conn)?;
        if inserted == 0 {
            // Someone else took the version: roll back and retry, as on a unique violation.
            return Err(diesel::result::Error::RollbackTransaction);
        }
        heyboss::prepared::prepared(UPSERT)
            .bind::<Text, _>(stream)
            .bind::<BigInt, _>(1)
            .execute(conn)?;
        Ok(())
    })
}

struct RunResult {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `commands` commands shared out among `clients`, command `i` on the `i`-th stream of one fixed
/// sequence: every run adds one event to the same streams, whatever its rate.
fn run(clients: usize, commands: u64, pool: &heyboss::db::PgPool, work: Work) -> RunResult {
    let barrier = Arc::new(Barrier::new(clients));
    let next = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, work, barrier, next) =
                (pool.clone(), work.clone(), barrier.clone(), next.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                let mut latencies = Vec::with_capacity(commands as usize);
                barrier.wait();
                let start = Instant::now();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= commands {
                        break;
                    }
                    // splitmix64 of the command's index: a stream spread like a random pick.
                    let mut z = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    let stream = format!("s{}", z % STREAMS);
                    let t = Instant::now();
                    work(&mut conn, &stream);
                    latencies.push(t.elapsed());
                }
                (latencies, start.elapsed())
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut wall = Duration::ZERO;
    for h in handles {
        let (l, w) = h.join().unwrap();
        all.extend(l);
        wall = wall.max(w);
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    RunResult {
        per_second: all.len() as f64 / wall.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn main() {
    let commands: u64 = std::env::var("APPEND_BENCH_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    if std::env::var_os("APPEND_BENCH_SECONDS").is_some() {
        eprintln!(
            "APPEND_BENCH_SECONDS is no longer read: runs are APPEND_BENCH_COMMANDS commands"
        );
    }
    let db = TestDatabase::new();
    let pool = db.pool(8);
    diesel::sql_query("CREATE TABLE tally_totals (id TEXT PRIMARY KEY, total BIGINT NOT NULL)")
        .execute(&mut pool.get().unwrap())
        .unwrap();
    let store = EventStore::new(Projections::new().with(TallyTotals));
    let mut bare_options = heyboss::db::PoolOptions::new(8);
    bare_options.test_on_check_out = false;
    bare_options.session_settings = Vec::new();
    let bare_pool = heyboss_es::db::pool_with(&db.url, bare_options).unwrap();

    let executor: Work = Arc::new(move |conn, stream| {
        let ctx = CommandContext::new(Metadata::new(Actor::Cli)).retry_on_conflict(10);
        store
            .execute::<Tally>(conn, stream, &1, &ctx)
            .expect("command");
    });
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let partitioned = diesel::sql_query("SELECT to_regclass('streams') IS NOT NULL AS found")
        .get_result::<Found>(&mut pool.get().unwrap())
        .unwrap()
        .found;
    let bare: Work = Arc::new(move |conn, stream| {
        // A conflict on a random stream is rare; retry like the executor does.
        while bare_command(conn, stream, partitioned).is_err() {}
    });

    let storage = if partitioned {
        "partitioned log (streams claim)"
    } else {
        "unpartitioned log"
    };
    println!("append benchmark: one-event command + one inline projection, {commands} commands per run, {STREAMS} streams, {storage}");
    println!("command: cargo bench --bench append");
    println!(
        "{:>7} | {:>12} {:>9} {:>9} | {:>12} {:>9} {:>9} | {:>6}",
        "clients", "executor/s", "p50 ms", "p99 ms", "bare SQL/s", "p50 ms", "p99 ms", "ratio"
    );
    // Warm up the caches and the connection pool.
    run(8, commands / 5, &bare_pool, bare.clone());
    for clients in [1, 8] {
        // Alternate bare and executor runs twice and keep the better of each, to damp noise.
        let mut best_exec: Option<RunResult> = None;
        let mut best_bare: Option<RunResult> = None;
        for _ in 0..2 {
            let b = run(clients, commands, &bare_pool, bare.clone());
            let e = run(clients, commands, &pool, executor.clone());
            if best_bare
                .as_ref()
                .is_none_or(|x| b.per_second > x.per_second)
            {
                best_bare = Some(b);
            }
            if best_exec
                .as_ref()
                .is_none_or(|x| e.per_second > x.per_second)
            {
                best_exec = Some(e);
            }
        }
        let (e, b) = (best_exec.unwrap(), best_bare.unwrap());
        println!(
            "{clients:>7} | {:>12.0} {:>9.2} {:>9.2} | {:>12.0} {:>9.2} {:>9.2} | {:>5.0}%",
            e.per_second,
            e.p50_ms,
            e.p99_ms,
            b.per_second,
            b.p50_ms,
            b.p99_ms,
            100.0 * e.per_second / b.per_second
        );
    }
}
