//! `cargo bench --bench rebuild`: replay speed and memory of a projection rebuild through shadow
//! tables (`es::shadow::rebuild`), at 100,000 and 1,000,000 events, against the in-place rebuild
//! (`es::projection::rebuild`, one transaction, no shadow) measured in the same run.
//!
//! The projection is bench-local and threat-like: `FileScored`-shaped events (file, integration,
//! signature, score) folded into one row per hit with a set-based `apply_batch` (one
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE` per batch). Sizes can be scaled with
//! `HEYBOSS_BENCH_SIZES=100000,1000000` (the default). A read-only projection (applies nothing) gives
//! the ceiling that reading and decoding the log put on any rebuild.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text};
use heyboss::es::projection::{self, ProjectionError};
use heyboss::es::shadow;
use heyboss::es::{Projection, RecordedEvent};
use heyboss::testing::TestDatabase;

struct BenchHits;

impl Projection for BenchHits {
    fn name(&self) -> &'static str {
        "bench_hits"
    }
    fn handles(&self) -> &'static [&'static str] {
        &["BenchScored"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["bench_hits"]
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(conn, &[event])
    }
    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // Last score and count per hit within the batch (one INSERT may touch a row only once).
        let mut hits: HashMap<(String, String, String), (i32, i64, i64)> = HashMap::new();
        for e in events {
            let p = &e.payload;
            let key = (
                p["file_id"].as_str().unwrap_or_default().to_owned(),
                p["integration"].as_str().unwrap_or_default().to_owned(),
                p["signature"].as_str().unwrap_or_default().to_owned(),
            );
            let score = p["score"].as_i64().unwrap_or(0) as i32;
            let entry = hits.entry(key).or_insert((score, 0, e.position));
            entry.0 = score;
            entry.1 += 1;
            entry.2 = e.position;
        }
        let mut files = Vec::with_capacity(hits.len());
        let mut integrations = Vec::with_capacity(hits.len());
        let mut signatures = Vec::with_capacity(hits.len());
        let mut scores = Vec::with_capacity(hits.len());
        let mut counts = Vec::with_capacity(hits.len());
        let mut positions = Vec::with_capacity(hits.len());
        for ((f, i, s), (score, n, pos)) in hits {
            files.push(f);
            integrations.push(i);
            signatures.push(s);
            scores.push(score);
            counts.push(n);
            positions.push(pos);
        }
        diesel::sql_query(
            "INSERT INTO bench_hits (file_id, integration, signature, score, scorings, last_position) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[]) \
             ON CONFLICT (file_id, integration, signature) DO UPDATE \
             SET score = EXCLUDED.score, scorings = bench_hits.scorings + EXCLUDED.scorings, \
                 last_position = EXCLUDED.last_position",
        )
        .bind::<Array<Text>, _>(files)
        .bind::<Array<Text>, _>(integrations)
        .bind::<Array<Text>, _>(signatures)
        .bind::<Array<Integer>, _>(scores)
        .bind::<Array<BigInt>, _>(counts)
        .bind::<Array<BigInt>, _>(positions)
        .execute(conn)?;
        Ok(())
    }
}

/// Reads the log and does nothing: the ceiling the log reading and decoding put on any rebuild.
struct ReadOnly;

impl Projection for ReadOnly {
    fn name(&self) -> &'static str {
        "bench_read_only"
    }
    fn handles(&self) -> &'static [&'static str] {
        &["BenchScored"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["bench_read_only"]
    }
    fn apply(&self, _: &mut PgConnection, _: &RecordedEvent) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// Append `n` more events straight into the log (set-based; the append path has its own bench).
fn generate(conn: &mut PgConnection, from: i64, n: i64) {
    let files = 50_000i64;
    diesel::sql_query(
        "INSERT INTO events (stream_type, stream_id, stream_version, event_type, payload, metadata) \
         SELECT 'benchfile', 'f' || (i % $3), i / $3 + 1, 'BenchScored', \
           jsonb_build_object('file_id', 'f' || (i % $3), 'integration', 'int' || (i % 3), \
             'signature', 'sig' || (i % 97), 'score', (i * 7919) % 101), \
           '{\"actor\":{\"kind\":\"sensor\",\"id\":\"00000000-0000-0000-0000-000000000000\"}}'::jsonb \
         FROM generate_series($1::bigint, $2::bigint) AS i",
    )
    .bind::<BigInt, _>(from)
    .bind::<BigInt, _>(from + n - 1)
    .bind::<BigInt, _>(files)
    .execute(conn)
    .unwrap();
    diesel::sql_query("ANALYZE events").execute(conn).unwrap();
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

fn main() {
    let sizes: Vec<i64> = std::env::var("HEYBOSS_BENCH_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("cargo bench --bench rebuild  (sizes {sizes:?}, batch 5000)");
    let db = TestDatabase::new();
    let mut conn = db.connect();
    diesel::sql_query(
        "CREATE TABLE bench_hits (file_id TEXT NOT NULL, integration TEXT NOT NULL, signature TEXT NOT NULL, \
         score INTEGER NOT NULL, scorings BIGINT NOT NULL, last_position BIGINT NOT NULL, \
         PRIMARY KEY (file_id, integration, signature))",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("CREATE TABLE bench_read_only (id BIGINT PRIMARY KEY)")
        .execute(&mut conn)
        .unwrap();
    let projection = BenchHits;
    let mut have = 0i64;
    println!(
        "{:>10} {:>14} {:>12} {:>14} {:>8} {:>12} {:>10} {:>14}",
        "events",
        "shadow ev/s",
        "peak RSS MiB",
        "in-place ev/s",
        "ratio",
        "rows",
        "VmHWM MiB",
        "read-only ev/s"
    );
    for &size in &sizes {
        let started = Instant::now();
        generate(&mut conn, have, size - have);
        have = size;
        eprintln!(
            "generated {size} events in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        let t = Instant::now();
        let (report, peak) =
            sampled(|| shadow::rebuild(&mut conn, &projection, false, 5_000, |_| {}).unwrap());
        let shadow_secs = t.elapsed().as_secs_f64();
        assert_eq!(report.events as i64, size);

        let t = Instant::now();
        let n = projection::rebuild(&mut conn, &projection, 5_000, |_| {}).unwrap();
        let inplace_secs = t.elapsed().as_secs_f64();
        assert_eq!(n as i64, size);

        let t = Instant::now();
        let read = shadow::rebuild(&mut conn, &ReadOnly, false, 5_000, |_| {}).unwrap();
        let read_secs = t.elapsed().as_secs_f64();
        assert_eq!(read.events as i64, size);

        let shadow_rate = size as f64 / shadow_secs;
        let inplace_rate = size as f64 / inplace_secs;
        println!(
            "{:>10} {:>14.0} {:>12.1} {:>14.0} {:>8.2} {:>12} {:>10.1} {:>14.0}",
            size,
            shadow_rate,
            peak,
            inplace_rate,
            shadow_rate / inplace_rate,
            report.rows,
            status_kib("VmHWM:") as f64 / 1024.0,
            size as f64 / read_secs
        );
    }
    println!(
        "goal: >= 50000 events/s replayed; peak RSS flat from the smallest to the largest size"
    );
}
