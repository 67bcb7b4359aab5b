//! `cargo bench --bench top_threats`: the four top-threat reports read from the projections vs
//! the same reports computed on demand by a plain join + GROUP BY over normalized raw tables
//! (what the legacy system did), on the same data, in the same run.
//!
//! Data (scaled by HEYBOSS_BENCH_SCALE, default 1.0): 1,000,000 scoring events (900,000
//! FileScored creating hits + 100,000 FileRescored changing them) over 50,000 distinct md5s and
//! 200 signatures in 10 visibility groups; the analyst is cleared for 5 groups. Bulk-loaded with
//! SQL `generate_series` into the hits table, then rolled up into the report tables by the
//! projection's end-of-replay step (tests/threats_projections.rs proves the incremental
//! projection equals it); the raw tables hold the same rows, normalized.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use diesel::prelude::*;
use heyboss::accounts::{Role, Viewer};
use heyboss::es::BulkReplay;
use heyboss::testing::TestDatabase;
use heyboss::threats::projections::HitsProjection;
use heyboss::threats::queries::{self, Report, TimeRange, Window};

fn exec(conn: &mut PgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    hits: i64,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    max_score: i32,
}

/// The bench's database, dropped at the end unless `HEYBOSS_BENCH_KEEP=1` (then left behind,
/// its name printed, to look into).
struct Kept(Option<TestDatabase>);

impl Drop for Kept {
    fn drop(&mut self) {
        if std::env::var("HEYBOSS_BENCH_KEEP").is_ok_and(|k| k == "1") {
            if let Some(db) = self.0.take() {
                println!("kept the database {}", db.name);
                std::mem::forget(db);
            }
        }
    }
}

/// Load the bench's data into an empty database; the analyst's id.
fn load(conn: &mut PgConnection) -> uuid::Uuid {
    let scale: f64 = std::env::var("HEYBOSS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let files = (450_000.0 * scale) as i64; // two hits each: 900,000 hits
    let sessions = (200_000.0 * scale) as i64;
    let rescores = (100_000.0 * scale) as i64;
    let hashes = 50_000;
    let started = Instant::now();

    // Signatures: 200 in 10 groups; the analyst holds g0..g4.
    exec(conn, "INSERT INTO threat_signatures (name, rule_text, group_name, default_score, version, updated_at)
        SELECT 'sig-' || lpad(i::text, 3, '0'), '', 'g' || (i % 10), 50, 1, now() FROM generate_series(0, 199) i");
    let analyst = uuid::Uuid::new_v4();
    exec(
        conn,
        &format!(
            "INSERT INTO threat_clearances (user_id, group_name, granted_at)
        SELECT '{analyst}', 'g' || i, now() FROM generate_series(0, 4) i"
        ),
    );
    // Which hash a file has and which IP pair a session has: spread evenly by default, or with
    // HEYBOSS_BENCH_KEYS=heavy heavy-tailed (log-uniform ranks, P(rank r) ~ 1/r, as a SOC sees a
    // few files and hosts very often and most rarely), a separate run, not the default.
    let heavy = std::env::var("HEYBOSS_BENCH_KEYS").is_ok_and(|k| k == "heavy");
    let (hash_of, pair_of) = if heavy {
        (
            format!("floor(exp(((i::int8 * 2654435761) % 1000003) / 1000003.0 * ln({hashes})))::int8 - 1"),
            "floor(exp(((i::int8 * 40503) % 1000003) / 1000003.0 * ln(4800)))::int8 - 1".to_owned(),
        )
    } else {
        (format!("(i::int8 * 2654435761) % {hashes}"), "i".to_owned())
    };
    exec(conn, &format!("INSERT INTO threat_sessions (session_id, start_time, protocol, source_ip, destination_ip, source_port, destination_port, file_count)
        SELECT 's' || i, now() - (i % 43200) * interval '1 minute', (ARRAY['http','https','smtp','smb','ftp','dns'])[1 + i % 6],
               '10.' || (p % 4) || '.' || (p / 4 % 16) || '.' || (1 + p % 200), '198.51.100.' || (1 + (p * 7) % 30), 1024 + i % 60000, 443, 0
        FROM generate_series(0, {sessions} - 1) i CROSS JOIN LATERAL (SELECT {pair_of} AS p) AS k"));
    exec(
        conn,
        &format!(
            "INSERT INTO threat_files (file_id, session_id, md5, filename, file_type, size_bytes)
        SELECT 'f' || i, 's' || (i % {sessions}), md5(r::text),
               'file' || r || '.bin', (ARRAY['pe','pdf','docx','zip','js','elf'])[1 + r % 6], 1000
        FROM generate_series(0, {files} - 1) i CROSS JOIN LATERAL (SELECT {hash_of} AS r) AS k"
        ),
    );
    // Two hits per file (integrations av and yara), signatures spread pseudo-randomly.
    exec(conn, "INSERT INTO threat_hits (file_id, integration, signature, score, session_id, md5, filename, file_type, protocol, source_ip, destination_ip, start_time, scored_at)
        SELECT f.file_id, k.integration, 'sig-' || lpad((((substr(f.file_id, 2)::int8 * 40503 + k.n * 9973) % 200))::text, 3, '0'),
               ((substr(f.file_id, 2)::int8 * 7919 + k.n * 31) % 101)::int4, f.session_id, f.md5, f.filename, f.file_type,
               s.protocol, s.source_ip, s.destination_ip, s.start_time, now()
        FROM threat_files f JOIN threat_sessions s ON s.session_id = f.session_id
        CROSS JOIN (VALUES (0, 'av'), (1, 'yara')) AS k(n, integration)");
    // The rescores: new current scores for 100,000 hits.
    exec(conn, &format!("UPDATE threat_hits SET score = (score + 37) % 101
        WHERE integration = 'av' AND substr(file_id, 2)::int8 % 9 = 0 AND substr(file_id, 2)::int8 < {rescores} * 9"));
    // The rankings of the clearance sets held (the analyst's and the admins'), then the report
    // tables rolled up by the projection's own end-of-replay step.
    exec(conn, "INSERT INTO threat_views (view_id, groups) VALUES ('g0,g1,g2,g3,g4', ARRAY['g0','g1','g2','g3','g4']), ('*', '{}')");
    conn.transaction(|conn| HitsProjection.finish_replay(conn))
        .unwrap();
    // The legacy, normalized raw tables with the same data and ordinary foreign-key indexes.
    exec(
        conn,
        "CREATE TABLE legacy_signatures (id SERIAL PRIMARY KEY, name TEXT UNIQUE, group_name TEXT)",
    );
    exec(conn, "INSERT INTO legacy_signatures (name, group_name) SELECT name, group_name FROM threat_signatures ORDER BY name");
    exec(
        conn,
        "CREATE TABLE legacy_clearances (user_id UUID, group_name TEXT)",
    );
    exec(
        conn,
        "INSERT INTO legacy_clearances SELECT user_id, group_name FROM threat_clearances",
    );
    exec(conn, "CREATE TABLE legacy_sessions AS SELECT session_id AS id, start_time, protocol, source_ip, destination_ip FROM threat_sessions");
    exec(conn, "ALTER TABLE legacy_sessions ADD PRIMARY KEY (id)");
    exec(conn, "CREATE TABLE legacy_files AS SELECT file_id AS id, session_id, md5, filename, file_type FROM threat_files");
    exec(conn, "ALTER TABLE legacy_files ADD PRIMARY KEY (id)");
    exec(conn, "CREATE INDEX ON legacy_files (session_id)");
    exec(conn, "CREATE INDEX ON legacy_files (md5)");
    exec(conn, "CREATE TABLE legacy_scores AS SELECT h.file_id, h.integration, g.id AS signature_id, h.score FROM threat_hits h JOIN legacy_signatures g ON g.name = h.signature");
    exec(conn, "CREATE INDEX ON legacy_scores (file_id)");
    exec(conn, "CREATE INDEX ON legacy_scores (signature_id)");
    heyboss::testing::vacuum_analyze_loaded(conn, "");
    let hits: i64 = heyboss::schema::threat_hits::table
        .count()
        .get_result(conn)
        .unwrap();
    let distinct: i64 = diesel::sql_query("SELECT count(DISTINCT md5)::int8 AS n FROM threat_hits")
        .get_result::<Count>(conn)
        .unwrap()
        .n;
    println!(
        "loaded {hits} hits ({} scoring events incl. {rescores} rescores) over {distinct} md5s ({}), 200 signatures in 10 groups in {:.1} s",
        hits + rescores,
        if heavy { "heavy-tailed keys" } else { "keys spread evenly" },
        started.elapsed().as_secs_f64()
    );

    analyst
}

/// `runs` timings of `read` in ms, sorted, and what its last run read.
fn timed<T>(runs: usize, mut read: impl FnMut() -> T) -> (Vec<f64>, T) {
    let mut ms = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        last = Some(read());
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms, last.expect("at least one run"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // HEYBOSS_BENCH_DB=<name>: time the reports on a database kept by an earlier run
    // (HEYBOSS_BENCH_KEEP=1) instead of loading a new one, so that two builds are compared on
    // the same rows; its ranges end at its own load time (the newest session's start).
    let reused = std::env::var("HEYBOSS_BENCH_DB")
        .ok()
        .filter(|n| !n.is_empty());
    let db = Kept(reused.is_none().then(TestDatabase::new));
    let mut conn = match (&reused, &db.0) {
        (Some(name), _) => {
            let server = heyboss::db::Database::discover().expect("a PostgreSQL server");
            heyboss::db::connect(&heyboss::db::with_database(&server.url, name))
                .expect("connect to the kept database")
        }
        (None, Some(db)) => db.connect(),
        (None, None) => unreachable!("a database is made when none is reused"),
    };
    let (analyst, now) = if reused.is_some() {
        let kept: KeptStore = diesel::sql_query(
            "SELECT (SELECT user_id FROM threat_clearances LIMIT 1) AS analyst,
                    (SELECT max(start_time) FROM threat_sessions) AS now",
        )
        .get_result(&mut conn)
        .expect("a kept bench database");
        println!(
            "reusing the database {}",
            reused.as_deref().unwrap_or_default()
        );
        (kept.analyst, kept.now)
    } else {
        (load(&mut conn), chrono::Utc::now())
    };
    let viewer = Viewer {
        user_id: analyst,
        username: "ana".into(),
        display_name: "Ana".into(),
        role: Role::Analyst,
        csrf_token: String::new(),
        session_digest: String::new(),
        time_zone: None,
    };
    let fast_runs: usize = std::env::var("HEYBOSS_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let slow_runs = 10;
    // HEYBOSS_BENCH_ONLY=ranges: the time ranges alone (the second part).
    if std::env::var("HEYBOSS_BENCH_ONLY").is_ok_and(|o| o == "ranges") {
        ranges(&mut conn, &viewer, fast_runs, now);
        return;
    }
    println!("\ncargo bench --bench top_threats   (analyst cleared for 5 of 10 groups, top 10, window all)");
    println!(
        "{:<10} {:>12} {:>12} {:>14} {:>14} {:>10} {:>9}",
        "report",
        "proj p50 ms",
        "proj p99 ms",
        "legacy p50 ms",
        "legacy p99 ms",
        "p50 ratio",
        "same?"
    );
    for report in [
        Report::Hash,
        Report::FileType,
        Report::IpPair,
        Report::Protocol,
    ] {
        let mut fast = Vec::new();
        let mut fast_rows = Vec::new();
        for _ in 0..fast_runs {
            let t = Instant::now();
            fast_rows = queries::top(&mut conn, &viewer, report, Window::All, 10).unwrap();
            fast.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let key = match report {
            Report::Hash => "f.md5",
            Report::FileType => "f.file_type",
            Report::IpPair => "se.source_ip || ' ' || se.destination_ip",
            Report::Protocol => "se.protocol",
        };
        let legacy_sql = format!(
            "SELECT {key} AS key, count(*)::int8 AS hits, max(sc.score) AS max_score,
                    string_agg(DISTINCT sg.name, ';') AS signatures, max(se.start_time) AS last_seen
             FROM legacy_scores sc
             JOIN legacy_files f ON f.id = sc.file_id
             JOIN legacy_sessions se ON se.id = f.session_id
             JOIN legacy_signatures sg ON sg.id = sc.signature_id
             WHERE sg.group_name IN (SELECT group_name FROM legacy_clearances WHERE user_id = '{analyst}')
             GROUP BY 1 ORDER BY hits DESC, max_score DESC, key ASC LIMIT 10"
        );
        let mut slow = Vec::new();
        let mut slow_rows: Vec<Row> = Vec::new();
        for _ in 0..slow_runs {
            let t = Instant::now();
            slow_rows = diesel::sql_query(&legacy_sql).load(&mut conn).unwrap();
            slow.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        fast.sort_by(f64::total_cmp);
        slow.sort_by(f64::total_cmp);
        let same = fast_rows
            .iter()
            .map(|r| Row {
                key: r.key.clone(),
                hits: r.hits,
                max_score: r.max_score,
            })
            .collect::<Vec<_>>()
            == slow_rows;
        println!(
            "{:<10} {:>12.2} {:>12.2} {:>14.1} {:>14.1} {:>9.0}x {:>9}",
            report.slug(),
            percentile(&fast, 0.5),
            percentile(&fast, 0.99),
            percentile(&slow, 0.5),
            percentile(&slow, 0.99),
            percentile(&slow, 0.5) / percentile(&fast, 0.5),
            if same { "yes" } else { "NO" }
        );
    }
    println!("(projection: {fast_runs} runs per report; legacy join: {slow_runs} runs per report)");
    ranges(&mut conn, &viewer, fast_runs, now);
    histograms(&mut conn, &viewer, fast_runs, now);
}

/// The custom range: 6 d 23 h 20 min from 17 minutes past an hour ten days before `now`'s hour,
/// so that both ends lie inside hours and its unaligned edges always hold 80 minutes of hits (43
/// and 37). Taken from `now` itself, the edges held 20 or 80 minutes by the minute the load
/// started, and runs on two stores compared different work.
fn custom_range(now: chrono::DateTime<chrono::Utc>) -> TimeRange {
    let hour = heyboss::threats::buckets::bucket_start(now, heyboss::threats::buckets::Grain::Hour);
    let from = hour - chrono::Duration::days(10) + chrono::Duration::minutes(17);
    TimeRange {
        from: Some(from),
        to: Some(from + chrono::Duration::minutes(6 * 1440 + 23 * 60 + 20)),
    }
}

/// Every report over time ranges (issue 20.1): from the time buckets (whole days and hours, the
/// hits of the unaligned edges) against the same report computed on demand from the hits of
/// the range (the start-time index), same run, same data; rows compared.
fn ranges(
    conn: &mut PgConnection,
    viewer: &Viewer,
    runs: usize,
    now: chrono::DateTime<chrono::Utc>,
) {
    use heyboss::threats::filters::Filters;
    use heyboss::threats::scope::AnalystScope;
    use heyboss::web::paging::{ListSpec, PageParams, Paging};
    let runs = (runs / 4).max(5);
    let slow_runs = 5;
    let ranges = [
        ("1h", Window::Hour.range(now)),
        ("24h", Window::Day.range(now)),
        ("7d", Window::Week.range(now)),
        ("30d", Window::Month.range(now)),
        ("custom", custom_range(now)),
    ];
    // HEYBOSS_BENCH_RANGES=custom,7d: those ranges alone (all when unset).
    let only = std::env::var("HEYBOSS_BENCH_RANGES").ok();
    let ranges: Vec<_> = ranges
        .into_iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n == *name))
        })
        .collect();
    let scope = AnalystScope::of(conn, viewer).unwrap();
    // The report page's own query besides: its first page of 10 with the row count for the
    // pager (`queries::report_page`, as `/threats/top/{report}` reads it).
    let paging = Paging::parse(
        ListSpec {
            columns: &queries::REPORT_COLUMNS,
            per_page: 10,
        },
        &PageParams::default(),
    );
    let unfiltered = Filters::default();
    println!("\ntime ranges (analyst cleared for 5 of 10 groups, top 10; custom: 6 d 23 h 20 min, both ends inside hours, edges of 43 and 37 min)");
    println!("(proj: the top 10 rows; page: the page's first page as it answers (`queries::report_rows`: the row count where it comes with the rows, else one row more);");
    println!(" count: the page's first page with its row count (`queries::report_page`), what `/threats/top/{{report}}/count` reads after a page that did not count)");
    println!(
        "{:<10} {:<7} {:>12} {:>12} {:>12} {:>12} {:>6} {:>13} {:>13} {:>15} {:>15} {:>10} {:>8} {:>6}",
        "report",
        "range",
        "proj p50 ms",
        "proj p99 ms",
        "page p50 ms",
        "page p99 ms",
        "later",
        "count p50 ms",
        "count p99 ms",
        "on-demand p50",
        "on-demand p99",
        "p50 ratio",
        "rows",
        "same?"
    );
    for report in [
        Report::Hash,
        Report::FileType,
        Report::IpPair,
        Report::Protocol,
    ] {
        for (name, range) in &ranges {
            let mut fast = Vec::new();
            let mut fast_rows = Vec::new();
            for _ in 0..runs {
                let t = Instant::now();
                fast_rows = queries::top_behind(conn, &scope, report, range, 10, None).unwrap();
                fast.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            // The page as it answers (its count after, where it would cost more than its
            // rows), then the same page counted (what the count's request reads).
            let (first, shown) = timed(runs, || {
                queries::report_rows(
                    conn,
                    &scope,
                    report,
                    range,
                    &unfiltered,
                    &paging,
                    &[],
                    None,
                    false,
                )
                .unwrap()
            });
            let (paged, page) = timed(runs, || {
                queries::report_page(conn, &scope, report, range, &unfiltered, &paging, &[], None)
                    .unwrap()
            });
            let mut slow = Vec::new();
            let mut slow_page = None;
            for _ in 0..slow_runs {
                let t = Instant::now();
                slow_page = Some(
                    queries::report_page_from_hits(conn, &scope, report, range, &paging, &[])
                        .unwrap(),
                );
                slow.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let slow_page = slow_page.expect("at least one run");
            fast.sort_by(f64::total_cmp);
            slow.sort_by(f64::total_cmp);
            let key = |r: &queries::ReportRow| {
                (
                    r.key.clone(),
                    r.hits,
                    r.max_score,
                    r.last_seen,
                    r.signatures.clone(),
                )
            };
            let expected: Vec<_> = slow_page.rows.iter().map(key).collect();
            let same = fast_rows.iter().map(key).collect::<Vec<_>>() == expected
                && page.rows.iter().map(key).collect::<Vec<_>>() == expected
                && shown.rows.iter().map(key).collect::<Vec<_>>() == expected
                && shown.total.is_none_or(|t| t == slow_page.total)
                && shown.more == (slow_page.total > 10)
                && page.total == slow_page.total;
            println!(
                "{:<10} {:<7} {:>12.2} {:>12.2} {:>12.2} {:>12.2} {:>6} {:>13.2} {:>13.2} {:>15.1} {:>15.1} {:>9.1}x {:>8} {:>6}",
                report.slug(),
                name,
                percentile(&fast, 0.5),
                percentile(&fast, 0.99),
                percentile(&first, 0.5),
                percentile(&first, 0.99),
                if shown.total.is_some() { "no" } else { "yes" },
                percentile(&paged, 0.5),
                percentile(&paged, 0.99),
                percentile(&slow, 0.5),
                percentile(&slow, 0.99),
                percentile(&slow, 0.5) / percentile(&fast, 0.5),
                page.total,
                if same { "yes" } else { "NO" }
            );
        }
    }
    println!("(buckets: {runs} runs per report and range, each of proj, page and count; later: the page asks for its count after its rows; on demand: {slow_runs} runs; rows: the page's row count, equal to the on-demand count where same? is yes)");
}

/// The histogram above every report (issue 20.2) over the same ranges and all time: hour and
/// day bars from the rollups (the unaligned ends from the hits) against the same bars counted
/// from the hits of the range (a filter that keeps every hit takes that path), bars compared.
fn histograms(
    conn: &mut PgConnection,
    viewer: &Viewer,
    runs: usize,
    now: chrono::DateTime<chrono::Utc>,
) {
    use heyboss::threats::histogram::{histogram, HitFilter};
    use heyboss::threats::scope::AnalystScope;
    let runs = (runs / 4).max(5);
    let slow_runs = 5;
    let scope = AnalystScope::of(conn, viewer).unwrap();
    let every_hit = HitFilter::new("TRUE", |q| q);
    println!("\nhistogram of hits over time (analyst cleared for 5 of 10 groups; custom as above)");
    println!(
        "{:<7} {:>5} {:>12} {:>12} {:>15} {:>15} {:>10} {:>6}",
        "range",
        "bars",
        "proj p50 ms",
        "proj p99 ms",
        "on-demand p50",
        "on-demand p99",
        "p50 ratio",
        "same?"
    );
    for (name, range) in [
        ("1h", Window::Hour.range(now)),
        ("24h", Window::Day.range(now)),
        ("7d", Window::Week.range(now)),
        ("30d", Window::Month.range(now)),
        ("custom", custom_range(now)),
        ("all", Window::All.range(now)),
    ] {
        let zone = chrono_tz::Tz::UTC;
        let time = |filter: Option<&HitFilter>, n: usize, conn: &mut PgConnection| {
            let mut ms = Vec::new();
            let mut bars = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                let h = histogram(conn, &scope, &range, zone, now, None, filter).unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                bars = h.map(|h| h.bars).unwrap_or_default();
            }
            ms.sort_by(f64::total_cmp);
            (ms, bars)
        };
        let (fast, fast_bars) = time(None, runs, conn);
        let (slow, slow_bars) = time(Some(&every_hit), slow_runs, conn);
        println!(
            "{:<7} {:>5} {:>12.2} {:>12.2} {:>15.1} {:>15.1} {:>9.1}x {:>6}",
            name,
            fast_bars.len(),
            percentile(&fast, 0.5),
            percentile(&fast, 0.99),
            percentile(&slow, 0.5),
            percentile(&slow, 0.99),
            percentile(&slow, 0.5) / percentile(&fast, 0.5),
            if fast_bars == slow_bars { "yes" } else { "NO" }
        );
    }
    println!("(rollups: {runs} runs per range; from the hits: {slow_runs} runs)");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    n: i64,
}

#[derive(QueryableByName)]
struct KeptStore {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    analyst: uuid::Uuid,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    now: chrono::DateTime<chrono::Utc>,
}
