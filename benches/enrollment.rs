//! The staff pipeline page at 10,000 and 100,000 students.
//!
//! `cargo bench --bench enrollment` (set `HEYBOSS_BENCH_SCALE=0.1` for a quick run at a tenth of the
//! sizes). Students and their events are bulk-inserted with SQL (one multi-row statement per
//! 20,000 students, consistent with what the commands would record), then the `enrollment`
//! projection is rebuilt from the log by the application's own code. The page is then fetched over
//! HTTP from the real application; the same counts derived on demand from the event log are the
//! baseline, measured in the same run.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use heyboss::accounts::{Role, Viewer};
use heyboss::enrollment::queries::{self, PipelineFilter};
use heyboss::es::projection::rebuild;
use heyboss::testing::TestApp;

const PASSWORD: &str = "bench password 123";
const CHUNK: i64 = 20_000;

/// Students `from..=to`: their accounts (user events and `users` rows) and enrollment events.
/// Student i has 1 + (i / 13) % 10 steps; every 7th is denied and every 5th waitlisted (their paths stop
/// at the decision); every 11th withdraws. The last event is up to 60 days old.
const LOAD_SQL: &str = r#"
WITH base AS (
    SELECT i,
           md5('bench-student-' || i)::uuid AS id,
           (ARRAY['2027-spring', '2027-fall', '2028-spring'])[1 + i % 3] AS term,
           CASE WHEN i % 7 = 0 THEN 'denied' WHEN i % 5 = 0 THEN 'waitlisted' ELSE 'admitted' END AS decision,
           1 + (i / 13) % 10 AS raw_depth,
           now() - make_interval(days => (i % 60)::int, mins => (i % 1440)::int) AS last_at
    FROM generate_series($1::bigint, $2::bigint) AS i
), s AS (
    SELECT *, CASE WHEN decision <> 'admitted' THEN least(raw_depth, 6) ELSE raw_depth END AS depth
    FROM base
), students AS (
    SELECT *, (i % 11 = 0 AND depth < 10 AND NOT (decision = 'denied' AND depth >= 6)) AS withdrawn
    FROM s
), new_users AS (
    INSERT INTO users (id, username, display_name, email, role, active, created_at, updated_at)
    SELECT id, 'bench' || i, 'Bench Student ' || i, '', 'student', TRUE, last_at, last_at FROM students
    RETURNING id
), user_events AS (
    INSERT INTO events (stream_type, stream_id, stream_version, event_type, payload, metadata, recorded_at)
    SELECT 'user', id::text, 1, 'UserRegistered',
           jsonb_build_object('username', 'bench' || i, 'display_name', 'Bench Student ' || i,
                              'email', '', 'role', 'student'),
           '{"actor":{"kind":"cli"},"command_id":"00000000-0000-0000-0000-000000000000","correlation_id":"00000000-0000-0000-0000-000000000000"}',
           last_at - interval '30 days'
    FROM students ORDER BY i
    RETURNING 1
)
INSERT INTO events (stream_type, stream_id, stream_version, event_type, payload, metadata, recorded_at)
SELECT 'enrollment', st.id::text, e.v, e.type, e.payload || jsonb_build_object('term', st.term),
       '{"actor":{"kind":"cli"},"command_id":"00000000-0000-0000-0000-000000000000","correlation_id":"00000000-0000-0000-0000-000000000000"}',
       st.last_at - make_interval(hours => (st.depth + st.withdrawn::int - e.v)::int)
FROM students st
CROSS JOIN LATERAL (
    SELECT CASE WHEN x.n = 11 THEN st.depth + 1 ELSE x.n END AS v, x.type, x.payload
    FROM (VALUES
        (1, 'Inquired', '{}'::jsonb),
        (2, 'ApplicationStarted', '{}'),
        (3, 'ApplicationSubmitted', '{}'),
        (4, 'DocumentReceived', '{"document":"transcript"}'),
        (5, 'DocumentReceived', '{"document":"identification"}'),
        (6, 'AdmissionDecided', jsonb_build_object('decision', st.decision)),
        (7, 'OfferAccepted', '{"deposit_cents":50000}'),
        (8, 'OrientationCompleted', '{}'),
        (9, 'CoursesRegistered', '{"courses":["CS101","MATH201"]}'),
        (10, 'Enrolled', '{}'),
        (11, 'Withdrawn', '{"reason":"bench"}')
    ) AS x(n, type, payload)
    WHERE x.n <= st.depth OR (x.n = 11 AND st.withdrawn)
) AS e
ORDER BY st.i, e.v
"#;

/// The baseline: where each student stands, derived on demand from the log (the latest event of
/// every enrollment stream, grouped by term and type): what a page would do without a projection.
const FROM_LOG_SQL: &str = r#"
SELECT count(*) AS n FROM (
    SELECT e.payload->>'term', e.event_type, count(*)
    FROM events e
    JOIN (SELECT stream_id, max(stream_version) AS v FROM events
          WHERE stream_type = 'enrollment' GROUP BY stream_id) last
      ON last.stream_id = e.stream_id AND last.v = e.stream_version
    WHERE e.stream_type = 'enrollment'
    GROUP BY 1, 2
) g
"#;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn load(conn: &mut PgConnection, from: i64, to: i64) {
    let mut start = from;
    while start <= to {
        let end = (start + CHUNK - 1).min(to);
        diesel::sql_query(LOAD_SQL)
            .bind::<diesel::sql_types::BigInt, _>(start)
            .bind::<diesel::sql_types::BigInt, _>(end)
            .execute(conn)
            .expect("bulk load");
        start = end + 1;
    }
    // The streams' versions, which appends check, up to the log loaded around them.
    diesel::sql_query("SELECT events_sync_streams()")
        .execute(conn)
        .expect("streams");
}

struct Stats {
    median: Duration,
    p95: Duration,
}

fn measure(runs: usize, mut f: impl FnMut()) -> Stats {
    f(); // warm up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    Stats {
        median: times[times.len() / 2],
        p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Browser {
    agent: ureq::Agent,
    base: String,
}

impl Browser {
    fn login(base: &str, username: &str) -> Browser {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let page = agent
            .get(&format!("{base}/login"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        let token = &page[start..start + 64];
        let res = agent
            .post(&format!("{base}/login"))
            .send_form(&[
                ("csrf_token", token),
                ("username", username),
                ("password", PASSWORD),
            ])
            .unwrap();
        assert_eq!(res.status(), 303, "bench sign-in");
        Browser {
            agent,
            base: base.to_owned(),
        }
    }

    fn get(&self, path: &str) -> String {
        let res = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.into_string().unwrap()
    }
}

fn main() {
    let scale: f64 = std::env::var("HEYBOSS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let sizes = [(10_000.0 * scale) as i64, (100_000.0 * scale) as i64];
    let runs = 50;
    println!("cargo bench --bench enrollment (HEYBOSS_BENCH_SCALE={scale}): pipeline page at {sizes:?} students, {runs} runs each");

    let app = TestApp::spawn();
    let mut conn = app.db.connect();
    let staff_id = {
        let account = heyboss::accounts::NewAccount::parse(
            "benchstaff",
            "Bench Staff",
            "",
            "staff",
            PASSWORD,
        )
        .unwrap();
        heyboss::accounts::service::register(
            &mut conn,
            &app.state.store,
            heyboss::es::Metadata::new(heyboss::es::Actor::Cli),
            account,
            |_, _| Ok(()),
        )
        .unwrap()
    };
    let viewer = Viewer {
        user_id: staff_id,
        username: "benchstaff".into(),
        display_name: "Bench Staff".into(),
        role: Role::Staff,
        csrf_token: String::new(),
        session_digest: String::new(),
        time_zone: None,
    };
    let browser = Browser::login(&app.address, "benchstaff");
    let projection = app
        .state
        .store
        .projections()
        .get("enrollment")
        .unwrap()
        .clone();

    let mut loaded = 0;
    let mut results = Vec::new();
    for &size in &sizes {
        let t = Instant::now();
        load(&mut conn, loaded + 1, size);
        loaded = size;
        let load_time = t.elapsed();
        let t = Instant::now();
        let events = rebuild(&mut conn, projection.as_ref(), 10_000, |_| {}).unwrap();
        let rebuild_time = t.elapsed();
        // What autovacuum does in a running system: the rebuild's upserts leave dead row versions.
        heyboss::testing::vacuum_analyze_loaded(&mut conn, "");
        let students: i64 = diesel::sql_query("SELECT count(*) AS n FROM enrollment_students")
            .get_result::<N>(&mut conn)
            .unwrap()
            .n;
        assert_eq!(students, size, "every student is projected");
        println!(
            "\n{size} students: loaded in {:.1}s; rebuilt the projection from {events} events in {:.1}s ({:.0} events/s)",
            load_time.as_secs_f64(),
            rebuild_time.as_secs_f64(),
            events as f64 / rebuild_time.as_secs_f64()
        );

        let page = measure(runs, || {
            let body = browser.get("/enrollment/pipeline");
            assert!(body.contains("Bench Student"));
        });
        let filtered = measure(runs, || {
            browser.get("/enrollment/pipeline?stage=admitted&term=2027-fall");
        });
        let by_name = measure(runs, || {
            browser.get("/enrollment/pipeline?name=Student+4242");
        });
        let query = measure(runs, || {
            queries::stage_counts(&mut conn, &viewer).unwrap();
            {
                let mut paging = heyboss::web::paging::Paging::parse(
                    queries::PIPELINE_LIST,
                    &Default::default(),
                );
                queries::pipeline_page(&mut conn, &viewer, &PipelineFilter::default(), &mut paging)
                    .unwrap();
            }
            queries::stalled(&mut conn, &viewer, 14, 20).unwrap();
        });
        let counts = measure(runs, || {
            queries::stage_counts(&mut conn, &viewer).unwrap();
        });
        let from_log = measure(runs.min(10), || {
            diesel::sql_query(FROM_LOG_SQL)
                .get_result::<N>(&mut conn)
                .unwrap();
        });
        println!("  GET /enrollment/pipeline (counts, first page, stalled): median {:7.2} ms, p95 {:7.2} ms", ms(page.median), ms(page.p95));
        println!("  GET ?stage=admitted&term=2027-fall:                    median {:7.2} ms, p95 {:7.2} ms", ms(filtered.median), ms(filtered.p95));
        println!("  GET ?name=Student+4242 (substring match, scans names): median {:7.2} ms, p95 {:7.2} ms", ms(by_name.median), ms(by_name.p95));
        println!(
            "  the page's queries without HTTP:                       median {:7.2} ms",
            ms(query.median)
        );
        println!(
            "  counts per step per term from the projection:          median {:7.2} ms",
            ms(counts.median)
        );
        println!("  baseline: the same counts derived from the event log:  median {:7.2} ms ({:.0}x the projection)", ms(from_log.median), ms(from_log.median) / ms(counts.median));
        results.push((size, events, page, counts, from_log));
    }
    if let [(s1, e1, p1, c1, l1), (s2, e2, p2, c2, l2)] = &results[..] {
        println!(
            "\n{s2} vs {s1} students ({e2} vs {e1} events): page {:.2}x, projection counts {:.2}x, counts from the log {:.2}x",
            ms(p2.median) / ms(p1.median),
            ms(c2.median) / ms(c1.median),
            ms(l2.median) / ms(l1.median)
        );
    }
}
