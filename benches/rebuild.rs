//! `cargo bench --bench rebuild`: replay speed and memory of rebuilding the threat projections
//! (`threat_sessions`, then `threat_hits` with the four reports) through shadow tables
//! (`es::shadow::rebuild`), at 100,000 and 1,000,000 sensor events, against a baseline measured in
//! the same run: the same projections replayed the way the ingest applies batches (events decoded
//! in the application, reports updated batch by batch, every index maintained row by row). The
//! rebuild itself replays each batch with statements that read the log in the database
//! (`Projection::replay_range`), aggregates the reports once and indexes the tables at the end.
//!
//! The log is written by `heyboss::threats::simulate`'s generator (the sensor API's events, with
//! sessions, files, scores by several integrations, rescans) appended with `store::append_many`,
//! 8 signatures in 4 groups. Sizes: `HEYBOSS_BENCH_SIZES=100000,1000000` (the default).
//!
//! Each size is replayed twice: first on the log as appended, with its planner statistics
//! dropped (a store after a bulk load, an import or the sensor API where autovacuum has not run),
//! then after `VACUUM ANALYZE events`. A rebuild must not depend on which of the two it meets.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use heyboss::es::projection::ProjectionError;
use heyboss::es::{shadow, Actor, CommandContext, Metadata};
use heyboss::es::{Projection, RecordedEvent};
use heyboss::testing::TestDatabase;
use heyboss::threats::{service, simulate};

/// A projection replayed as the ingest applies it: no deferred aggregates, no deferred indexes.
struct AsIngest(Arc<dyn Projection>);

impl Projection for AsIngest {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn handles(&self) -> &'static [&'static str] {
        self.0.handles()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.0.tables()
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.0.apply(conn, event)
    }
    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.0.apply_batch(conn, events)
    }
}

/// Leave `events` as a bulk load leaves it where autovacuum has not run: no planner statistics,
/// no size estimate, no activity counters (needs a superuser, as the test server's role is).
fn drop_statistics(conn: &mut PgConnection) {
    for statement in [
        "DELETE FROM pg_statistic WHERE starelid = 'events'::regclass",
        "UPDATE pg_class SET reltuples = -1, relpages = 0, relallvisible = 0 WHERE oid = 'events'::regclass",
        "SELECT pg_stat_reset_single_table_counters('events'::regclass)",
    ] {
        diesel::sql_query(statement).execute(conn).unwrap();
    }
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Run `f` while sampling this process's resident memory; returns (result, peak RSS in MiB).
fn sampled<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(status_kib("VmRSS:")));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(status_kib("VmRSS:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed) as f64 / 1024.0)
}

/// Rebuild the projections in order through shadow tables; (events replayed, rows, seconds).
fn rebuild_all(
    conn: &mut PgConnection,
    helper: &mut PgConnection,
    projections: &[&dyn Projection],
) -> (u64, i64, f64) {
    let started = Instant::now();
    let (mut events, mut rows) = (0, 0);
    for p in projections {
        let report = shadow::rebuild(conn, Some(&mut *helper), *p, false, 5_000, |_| {}).unwrap();
        events += report.events;
        rows += report.rows;
    }
    (events, rows, started.elapsed().as_secs_f64())
}

fn main() {
    let sizes: Vec<usize> = std::env::var("HEYBOSS_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("cargo bench --bench rebuild  (threat_sessions + threat_hits, sizes {sizes:?}, batches of 5000)");
    let db = TestDatabase::new();
    let mut conn = db.connect();
    let mut helper = db.connect();
    let store = heyboss::startup::event_store();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    for (name, group) in simulate::DEMO_SIGNATURES {
        service::set_signature(&mut conn, &store, &ctx, name, group, None, None).unwrap();
    }
    let names: Vec<String> = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let mut generator = simulate::Generator::new(42, names, 50_000);
    let mut versions = HashMap::new();
    let all = heyboss::startup::projections();
    let sessions = all.get("threat_sessions").unwrap().clone();
    let hits = all.get("threat_hits").unwrap().clone();
    let (sessions_ingest, hits_ingest) = (AsIngest(sessions.clone()), AsIngest(hits.clone()));
    println!(
        "{:>10} {:>13} {:>12} {:>13} {:>12} {:>14} {:>7} {:>11} {:>10}",
        "events",
        "no-stats ev/s",
        "replay ev/s",
        "+RSS MiB",
        "seconds",
        "as-ingest ev/s",
        "ratio",
        "rows",
        "VmHWM MiB"
    );
    let mut have = 0;
    for &size in &sizes {
        let started = Instant::now();
        simulate::append_unprojected(&mut conn, &mut generator, &mut versions, size - have);
        have = size;
        eprintln!(
            "appended {size} sensor events in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // The bench's own bookkeeping (each session's version) grows with the log; the rebuild's
        // memory is the peak above what the process held before it.
        // First on the log as appended, without statistics (the rebuild gathers what it needs),
        // then after `VACUUM ANALYZE`, as a store is once autovacuum has been through it.
        drop_statistics(&mut conn);
        let (cold_events, _, cold_secs) =
            rebuild_all(&mut conn, &mut helper, &[sessions.as_ref(), hits.as_ref()]);
        eprintln!(
            "replayed {cold_events} events without statistics in {cold_secs:.1} s ({:.0} events/s); now analyzed",
            cold_events as f64 / cold_secs
        );
        heyboss::testing::vacuum_analyze_loaded(&mut conn, "events");
        let before = status_kib("VmRSS:") as f64 / 1024.0;
        let ((events, rows, secs), peak) =
            sampled(|| rebuild_all(&mut conn, &mut helper, &[sessions.as_ref(), hits.as_ref()]));
        let peak = peak - before;
        eprintln!(
            "replayed {events} events in {secs:.1} s ({:.0} events/s); now the baseline",
            events as f64 / secs
        );
        assert_eq!(cold_events, events);
        assert_eq!(events as usize, size, "every sensor event replayed once");
        let (b_events, b_rows, b_secs) =
            rebuild_all(&mut conn, &mut helper, &[&sessions_ingest, &hits_ingest]);
        assert_eq!(b_events, events);
        assert_eq!(b_rows, rows, "the baseline builds the same tables");
        let rate = events as f64 / secs;
        let baseline = b_events as f64 / b_secs;
        println!(
            "{:>10} {:>13.0} {:>12.0} {:>13.1} {:>12.1} {:>14.0} {:>7.2} {:>11} {:>10.1}",
            size,
            cold_events as f64 / cold_secs,
            rate,
            peak,
            secs,
            baseline,
            rate / baseline,
            rows,
            status_kib("VmHWM:") as f64 / 1024.0
        );
    }
    println!(
        "no-stats: the replay on the log as appended, with its planner statistics dropped; replay ev/s: after VACUUM ANALYZE. +RSS: peak resident memory during the rebuild above the process's before it. goal: >= 50000 events/s replayed into the threat projections; memory flat from the smallest to the largest size"
    );
}
