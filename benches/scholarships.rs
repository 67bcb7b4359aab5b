//! Benchmark of the committee board and the fund report on a large fund.
//!
//!     cargo bench --bench scholarships
//!
//! Two sizes: 5,000 applications with 20,000 reviews, and 50,000 with 200,000 (one fund, four
//! reviews per application by twenty reviewers, 70% decided). The read models are bulk-loaded
//! with `INSERT ... SELECT generate_series` (the shape the projections write), each size into a
//! fresh database. Timings are medians; the baseline is fetching one application by id in the
//! same run, so the ratios say what the board and report cost relative to the cheapest read.
//! `SCHOLARSHIPS_BENCH_SCALE=0.1` shrinks both sizes for a quick look.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use heyboss::accounts::{Role, Viewer};
use heyboss::scholarships::queries;
use heyboss::testing::TestDatabase;
use uuid::Uuid;

const REVIEWERS: i64 = 20;

fn load(conn: &mut PgConnection, applications: i64, reviews: i64) -> (Uuid, Duration) {
    let started = Instant::now();
    let fund = Uuid::new_v4();
    let per_app = (reviews / applications).max(1);
    let statements = [
        format!(
            "INSERT INTO users (id, username, display_name, email, role, active, created_at, updated_at)
             SELECT md5('s' || g)::uuid, 'student' || g, 'Student ' || g, '', 'student', true, now(), now()
             FROM generate_series(1, {applications}) g"
        ),
        format!(
            "INSERT INTO users (id, username, display_name, email, role, active, created_at, updated_at)
             SELECT md5('r' || g)::uuid, 'reviewer' || g, 'Reviewer ' || g, '', 'staff', true, now(), now()
             FROM generate_series(0, {}) g",
            REVIEWERS - 1
        ),
        format!(
            "INSERT INTO scholarship_funds (id, name, term, budget_cents, awarded_cents, criteria, opens_on, closes_on, is_open, created_at, updated_at)
             VALUES ('{fund}', 'Bench fund', '2027-fall', {}, 0, 'merit', '2027-01-01', '2027-12-31', true, now(), now())",
            applications * 100_000
        ),
        format!(
            "INSERT INTO scholarship_applications (id, fund_id, student_id, statement, submitted_at, outcome,
                 decision_reason, decided_at, award_cents, award_status)
             SELECT md5('a' || g)::uuid, '{fund}', md5('s' || g)::uuid, 'Statement number ' || g,
                    now() - interval '90 days' + (g % 1000) * interval '1 minute',
                    (ARRAY['awarded','declined','waitlisted','submitted','submitted','awarded','declined','waitlisted','awarded','submitted'])[g % 10 + 1],
                    CASE WHEN g % 10 IN (3, 4, 9) THEN NULL ELSE 'reason ' || g END,
                    CASE WHEN g % 10 IN (3, 4, 9) THEN NULL ELSE now() - interval '30 days' + (g % 500) * interval '1 hour' END,
                    CASE WHEN g % 10 IN (0, 5, 8) THEN 50000 END,
                    CASE WHEN g % 10 IN (0, 5, 8) THEN (ARRAY['offered','accepted','disbursed'])[g % 3 + 1] END
             FROM generate_series(1, {applications}) g"
        ),
        format!(
            "INSERT INTO scholarship_assignments (application_id, reviewer_id, assigned_at)
             SELECT md5('a' || g)::uuid, md5('r' || ((g + k) % {REVIEWERS}))::uuid, now()
             FROM generate_series(1, {applications}) g, generate_series(0, {}) k",
            per_app - 1
        ),
        format!(
            "INSERT INTO scholarship_reviews (application_id, reviewer_id, scores, score, comment, revision, updated_at)
             SELECT md5('a' || g)::uuid, md5('r' || ((g + k) % {REVIEWERS}))::uuid,
                    ARRAY[1 + (g + k) % 5, 1 + (g * 7 + k) % 5, 1 + (g * 3) % 5, 1 + k % 5],
                    (4 + (g + k) % 5 + (g * 7 + k) % 5 + (g * 3) % 5 + k % 5)::float8 / 4,
                    'Comment ' || k, 1 + k % 2, now()
             FROM generate_series(1, {applications}) g, generate_series(0, {}) k",
            per_app - 1
        ),
        "UPDATE scholarship_applications a SET review_count = s.n, avg_score = s.avg
         FROM (SELECT application_id, count(*)::int AS n, avg(score) AS avg FROM scholarship_reviews GROUP BY application_id) s
         WHERE a.id = s.application_id".to_owned(),
        format!(
            "INSERT INTO scholarship_decisions (position, fund_id, application_id, student_id, kind, amount_cents, reason, actor, recorded_at)
             SELECT g, '{fund}', id, student_id, outcome, award_cents, decision_reason, md5('r0')::uuid::text, decided_at
             FROM (SELECT row_number() OVER (ORDER BY decided_at, id) AS g, * FROM scholarship_applications
                   WHERE decided_at IS NOT NULL) d"
        ),
        format!(
            "UPDATE scholarship_funds SET awarded_cents = (SELECT coalesce(sum(award_cents), 0)
             FROM scholarship_applications WHERE fund_id = '{fund}') WHERE id = '{fund}'"
        ),
        "ANALYZE".to_owned(),
    ];
    for s in &statements {
        diesel::sql_query(s).execute(conn).expect("bulk load");
    }
    (fund, started.elapsed())
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    f(); // warm the cache
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let scale: f64 = std::env::var("SCHOLARSHIPS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("cargo bench --bench scholarships   (SCHOLARSHIPS_BENCH_SCALE={scale})");
    let viewer = Viewer {
        user_id: Uuid::new_v4(),
        username: "bench".into(),
        display_name: "Bench".into(),
        role: Role::Staff,
        csrf_token: String::new(),
        session_digest: String::new(),
        time_zone: None,
    };
    let mut previous: Option<(Duration, Duration)> = None;
    for (apps, reviews) in [(5_000i64, 20_000i64), (50_000, 200_000)] {
        let (apps, reviews) = (
            ((apps as f64) * scale).max(10.0) as i64,
            ((reviews as f64) * scale).max(40.0) as i64,
        );
        let db = TestDatabase::new();
        let mut conn = db.connect();
        let (fund, loaded) = load(&mut conn, apps, reviews);
        let some_app: Uuid = heyboss::schema::scholarship_applications::table
            .select(heyboss::schema::scholarship_applications::id)
            .first(&mut conn)
            .unwrap();
        let runs = 15;
        let baseline = median(
            || {
                queries::application(&mut conn, &viewer, some_app).unwrap();
            },
            runs,
        );
        let board_first = median(
            || {
                let b = queries::board(&mut conn, &viewer, fund, &mut page(1)).unwrap();
                assert_eq!(b.rows.len() as i64, queries::BOARD_PAGE.min(apps));
            },
            runs,
        );
        let middle = (apps / queries::BOARD_PAGE / 2).max(1);
        let board_middle = median(
            || {
                queries::board(&mut conn, &viewer, fund, &mut page(middle)).unwrap();
            },
            runs,
        );
        let report_page = median(
            || {
                let r = queries::report(
                    &mut conn,
                    &viewer,
                    fund,
                    Some(queries::REPORT_HISTORY_LINES),
                )
                .unwrap();
                assert_eq!(r.applications, apps);
            },
            runs,
        );
        let report_csv = median(
            || {
                let r = queries::report(&mut conn, &viewer, fund, None).unwrap();
                assert_eq!(r.history.len() as i64, r.history_total);
            },
            5,
        );
        let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
        println!();
        println!(
            "{apps} applications, {reviews} reviews (bulk load {:.1} s)",
            loaded.as_secs_f64()
        );
        println!(
            "  baseline: one application by id       {:>10}",
            ms(baseline)
        );
        println!(
            "  committee board, page 1 (50 rows)      {:>10}  ({:.0}x baseline)",
            ms(board_first),
            ratio(board_first)
        );
        println!(
            "  committee board, page {middle:<5}            {:>10}  ({:.0}x baseline)",
            ms(board_middle),
            ratio(board_middle)
        );
        println!(
            "  fund report page (200 history lines)   {:>10}  ({:.0}x baseline)",
            ms(report_page),
            ratio(report_page)
        );
        println!(
            "  fund report, full history (CSV rows)   {:>10}  ({:.0}x baseline)",
            ms(report_csv),
            ratio(report_csv)
        );
        if let Some((b, r)) = previous {
            println!(
                "  growth from the smaller size (10x data): board page 1 {:.1}x, report page {:.1}x",
                board_first.as_secs_f64() / b.as_secs_f64(),
                report_page.as_secs_f64() / r.as_secs_f64()
            );
        }
        previous = Some((board_first, report_page));
    }
}

/// The board's default order at page `n`.
fn page(n: i64) -> heyboss::web::paging::Paging {
    let params = heyboss::web::paging::PageParams {
        page: Some(n.to_string()),
        ..Default::default()
    };
    heyboss::web::paging::Paging::parse(queries::BOARD_LIST, &params)
}
