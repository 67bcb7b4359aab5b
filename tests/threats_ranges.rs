//! Time ranges, sorting and paging of the threat reports over real HTTP (issue 20): a custom
//! range with ends inside hours counts exactly the hits of sessions started in it, for each
//! analyst's scope; every report sorts by its columns and pages with a total; bad parameters are
//! a 400 that says which. Inline and delayed (`threats_support`).

mod common;
mod threats_support;

use chrono::{DateTime, Duration, Utc};
use common::{create_user, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::{json, Value};
use threats_support::Reports;

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

/// Sessions at 10:05, 10:40, 11:20 and 13:59:59 of a day two days ago (UTC), each with one file
/// of its own md5 ([`md5`]) hit by sig-a (group alpha) with score 10, 20, 30, 40; and
/// the file of the 10:40 session hit by sig-b (beta) too, with 99. ana holds alpha.
fn world(reports: Reports) -> (TestApp, DateTime<Utc>) {
    let app = reports.spawn();
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "admin", "admin", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    service::set_signature(&mut conn, s, &ctx, "sig-a", "alpha", None, None).unwrap();
    service::set_signature(&mut conn, s, &ctx, "sig-b", "beta", None, None).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    let (_, token) = service::create_sensor(&mut conn, s, &ctx, "edge").unwrap();
    drop(conn);
    let day = heyboss::threats::buckets::bucket_start(
        Utc::now() - Duration::days(2),
        heyboss::threats::buckets::Grain::Day,
    );
    let starts = [
        day + Duration::minutes(10 * 60 + 5),
        day + Duration::minutes(10 * 60 + 40),
        day + Duration::minutes(11 * 60 + 20),
        day + Duration::seconds(14 * 3600 - 1),
    ];
    let mut events = Vec::new();
    for (i, start) in starts.iter().enumerate() {
        let (session, file) = (format!("s{i}"), format!("f{i}"));
        events.extend(session_with_one_file(i, *start, 10 * (i as i64 + 1)));
        if i == 1 {
            events.push(ev(
                "FileScored",
                json!({"file_id": file, "session_id": session, "integration": "yara",
                "score": 99, "signature": "sig-b"}),
            ));
        }
    }
    post_events(&app, &token, events);
    reports.settle(&app);
    (app, day)
}

/// One batch through the sensor API, accepted.
fn post_events(app: &TestApp, token: &str, events: Vec<Value>) {
    let r = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Session `s{i}` started at `start` (tcp or udp by `i`'s parity, from 10.0.0.1 to 10.0.1.{i})
/// with file `f{i}` of md5 `md5(i)`, hit by sig-a with `score`.
fn session_with_one_file(i: usize, start: DateTime<Utc>, score: i64) -> Vec<Value> {
    let (session, file) = (format!("s{i}"), format!("f{i}"));
    vec![
        ev(
            "SessionDiscovered",
            json!({"session_id": session, "start_time": start.to_rfc3339(),
            "protocol": if i % 2 == 0 { "tcp" } else { "udp" }, "source_ip": "10.0.0.1",
            "destination_ip": format!("10.0.1.{i}"), "source_port": 1, "destination_port": 80}),
        ),
        ev(
            "FileDiscovered",
            json!({"file_id": file, "session_id": session,
            "md5": md5(i), "filename": format!("f{i}.exe"), "file_type": "pe", "size_bytes": 1}),
        ),
        ev(
            "FileScored",
            json!({"file_id": file, "session_id": session, "integration": "av",
            "score": score, "signature": "sig-a"}),
        ),
    ]
}

/// The md5 of file `i`.
fn md5(i: usize) -> String {
    format!("{:032x}", 0xa0 + i)
}

fn signed_in(app: &TestApp, user: &str) -> Client {
    let mut c = Client::new(app);
    c.login(user, PASSWORD);
    c
}

/// The CSV lines after the header.
fn csv(c: &mut Client, path: &str) -> Vec<String> {
    let res = c.get(path);
    assert_eq!(res.status, 200, "{path}: {}", res.body);
    res.body.lines().skip(1).map(str::to_owned).collect()
}

fn at(day: DateTime<Utc>, hh_mm: &str) -> String {
    format!("{}T{hh_mm}", day.format("%Y-%m-%d"))
}

fn ranges_count_exactly_the_sessions_started_in_them(reports: Reports) {
    let (app, day) = world(reports);
    let mut ana = signed_in(&app, "ana");
    let mut admin = signed_in(&app, "admin");
    // 10:30 to 13:59 (both inside hours): the 10:40 and 11:20 sessions; ana sees sig-a only.
    let range = format!("from={}&to={}", at(day, "10:30"), at(day, "13:59"));
    assert_eq!(
        csv(
            &mut ana,
            &format!("/threats/top/protocol?format=csv&{range}")
        ),
        vec!["tcp,1,30", "udp,1,20"]
    );
    assert_eq!(
        csv(
            &mut admin,
            &format!("/threats/top/protocol?format=csv&{range}")
        ),
        vec!["udp,2,99", "tcp,1,30"]
    );
    // `to` is exclusive, to the second: 13:59:59 is in [.., 14:00) and not in [.., 13:59:59).
    let to_14 = format!("from={}&to={}", at(day, "11:00"), at(day, "14:00"));
    assert_eq!(
        csv(
            &mut ana,
            &format!("/threats/top/file-type?format=csv&{to_14}")
        ),
        vec!["pe,2,40"]
    );
    let before = format!("from={}&to={}:59Z", at(day, "11:00"), at(day, "13:59"));
    assert_eq!(
        csv(
            &mut ana,
            &format!("/threats/top/file-type?format=csv&{before}")
        ),
        vec!["pe,1,30"]
    );
    // Open ends, and the preset windows (the sessions are two days old).
    assert_eq!(
        csv(
            &mut ana,
            &format!("/threats/top/file-type?format=csv&to={}", at(day, "10:06"))
        ),
        vec!["pe,1,10"]
    );
    assert_eq!(
        csv(&mut ana, "/threats/top/file-type?format=csv&window=24h"),
        Vec::<String>::new()
    );
    assert_eq!(
        csv(&mut ana, "/threats/top/file-type?format=csv&window=7d"),
        vec!["pe,4,40"]
    );
    // A drill-down keeps the range.
    let hits = csv(
        &mut ana,
        &format!("/threats/top/file-type/hits?key=pe&format=csv&{range}"),
    );
    assert_eq!(hits.len(), 2, "{hits:?}");
    // The page offers the range, applied on change, and links keep it.
    let page = ana.get(&format!("/threats/top/hash?{range}"));
    page.assert_contains("hx-trigger=\"change, submit\"")
        .assert_contains(&format!("value=\"{}\"", at(day, "10:30")))
        .assert_contains("window=custom&amp;from=");
    // Bad ranges: a clear 400.
    for bad in [
        format!("from={}&to={}", at(day, "12:00"), at(day, "11:00")),
        "from=yesterday".to_owned(),
        "window=2h".to_owned(),
    ] {
        let res = ana.get(&format!("/threats/top/hash?{bad}"));
        assert_eq!(res.status, 400, "{bad}");
    }
}

fn reports_sort_by_their_columns_and_page_with_a_total(reports: Reports) {
    let (app, _) = world(reports);
    let mut ana = signed_in(&app, "ana");
    let keys = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect()
    };
    // By max score, descending then ascending; by key.
    assert_eq!(
        keys(csv(
            &mut ana,
            "/threats/top/hash?format=csv&sort=max_score&dir=desc"
        )),
        vec![md5(3), md5(2), md5(1), md5(0)]
    );
    assert_eq!(
        keys(csv(
            &mut ana,
            "/threats/top/hash?format=csv&sort=max_score&dir=asc"
        )),
        vec![md5(0), md5(1), md5(2), md5(3)]
    );
    assert_eq!(
        keys(csv(
            &mut ana,
            "/threats/top/hash?format=csv&sort=key&dir=desc&window=7d"
        )),
        vec![md5(3), md5(2), md5(1), md5(0)]
    );
    // Pages of 3: the second has the last row; the page says where it is.
    assert_eq!(
        keys(csv(
            &mut ana,
            "/threats/top/hash?format=csv&sort=max_score&dir=desc&limit=3&page=2"
        )),
        vec![md5(0)]
    );
    let page = ana.get_counted("/threats/top/hash?sort=max_score&dir=desc&limit=3&page=2");
    page.assert_contains("Rows 4–4 of 4")
        .assert_contains("Page 2 of 2")
        .assert_contains("aria-sort=\"descending\"")
        .assert_contains("rel=\"prev\"");
    let first = ana.get_counted("/threats/top/hash?limit=3&window=7d");
    first
        .assert_contains("Rows 1–3 of 4")
        .assert_contains("rel=\"next\"");
    for bad in ["sort=secret", "dir=up", "page=0", "page=x"] {
        assert_eq!(
            ana.get(&format!("/threats/top/hash?{bad}")).status,
            400,
            "{bad}"
        );
    }
}

/// A many-key report (hashes, IP pairs) read from its ranking or by the threshold walk shows its
/// rows at once and asks for its row count after (`/threats/top/{report}/count`, which the
/// pager's `hx-get` fetches on load): the count is the viewer's, with the page's range; without
/// HTMX the count's link leads to the page counted inline. Few-key reports and filtered ones
/// count with their rows.
fn many_key_reports_show_rows_first_and_count_after(reports: Reports) {
    let (app, _) = world(reports);
    create_user(&app, "bob", "analyst", PASSWORD);
    {
        let mut conn = app.state.pool.get().unwrap();
        let ctx = CommandContext::new(Metadata::new(Actor::Cli));
        let s = &app.state.store;
        heyboss::threats::service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true)
            .unwrap();
        // A fifth hash and pair twenty days ago: all time has five, the last week four, and
        // the hits span weeks (so that a week's report is walked: see `threats::threshold`).
        let (_, token) =
            heyboss::threats::service::create_sensor(&mut conn, s, &ctx, "old").unwrap();
        let events = session_with_one_file(9, Utc::now() - Duration::days(20), 5);
        post_events(&app, &token, events);
        reports.settle(&app);
    }
    let mut ana = signed_in(&app, "ana");
    for (report, range, total) in [
        ("hash", "window=7d", 4),
        ("hash", "window=all", 5),
        ("ip-pair", "window=7d", 4),
        ("ip-pair", "window=all", 5),
    ] {
        let path = format!("/threats/top/{report}?limit=3&{range}");
        let first = ana.get(&path);
        assert_eq!(first.status, 200);
        let text = common::text_of(&first.body);
        assert!(text.contains("Rows 1–3 of … (counting)"), "{path}: {text}");
        assert!(
            text.contains("Page 1") && !text.contains("Page 1 of"),
            "{path}: {text}"
        );
        first.assert_contains("rel=\"next\"");
        let link = first
            .body
            .split("class=\"pager-count\" href=\"")
            .nth(1)
            .unwrap();
        let count_url = common::forms::unescape(&link[..link.find('"').unwrap()]);
        assert!(
            count_url.starts_with(&format!("/threats/top/{report}/count?")),
            "{count_url}"
        );
        // What HTMX fetches: the pager counted, to swap for the one shown.
        let pager = ana.get_htmx_from(&count_url, &path);
        assert_eq!(pager.status, 200);
        assert!(
            pager.body.trim_start().starts_with("<nav class=\"pager"),
            "{}",
            pager.body
        );
        let text = common::text_of(&pager.body);
        assert!(
            text.contains(&format!("Rows 1–3 of {total}")) && text.contains("Page 1 of 2"),
            "{path}: {text}"
        );
        // Followed as a link: the page, counted before it answers.
        let res = ana.get(&count_url);
        assert_eq!(res.status, 303);
        let location = res.header("location").unwrap().to_owned();
        let counted = ana.get(&location);
        assert_eq!(counted.status, 200);
        let text = common::text_of(&counted.body);
        assert!(
            text.contains(&format!("Rows 1–3 of {total}")) && !text.contains("counting"),
            "{location}: {text}"
        );
        // Another analyst's count is of what they may see: bob (beta) sees one hash, one pair.
        let mut bob = signed_in(&app, "bob");
        let text = common::text_of(&bob.get_counted(&path).body);
        assert!(
            text.contains("Rows 1–1 of 1") && !text.contains("Next"),
            "bob {path}: {text}"
        );
    }
    // Counted with their rows: a few-key report, a filtered report, an empty first page.
    for path in [
        "/threats/top/file-type?window=7d",
        "/threats/top/hash?window=7d&file_type=pe&limit=3",
        "/threats/top/hash?window=1h",
    ] {
        let page = ana.get(path);
        assert!(!page.body.contains("pager-count"), "{path}");
    }
    let text = common::text_of(
        &ana.get("/threats/top/hash?window=7d&file_type=pe&limit=3")
            .body,
    );
    assert!(text.contains("Rows 1–3 of 4"), "{text}");
    // The count takes the page's parameters as the page does: a bad one is a 400.
    assert_eq!(
        ana.get_htmx("/threats/top/hash/count?sort=secret").status,
        400
    );
    assert_eq!(ana.get_htmx("/threats/top/nothing/count").status, 404);
}

/// The sessions list and a drill-down page on instead of stopping, sort, and take the range.
fn lists_page_sort_and_take_the_range(reports: Reports) {
    let (app, day) = world(reports);
    let mut ana = signed_in(&app, "ana");
    let ids = |lines: Vec<String>| -> Vec<String> {
        lines
            .iter()
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(csv(&mut ana, "/threats/sessions?format=csv")),
        vec!["s3", "s2", "s1", "s0"]
    );
    assert_eq!(
        ids(csv(
            &mut ana,
            "/threats/sessions?format=csv&sort=session_id&dir=asc"
        )),
        vec!["s0", "s1", "s2", "s3"]
    );
    let range = format!("from={}&to={}", at(day, "10:30"), at(day, "13:59"));
    assert_eq!(
        ids(csv(
            &mut ana,
            &format!("/threats/sessions?format=csv&{range}")
        )),
        vec!["s2", "s1"]
    );
    let page = ana.get("/threats/sessions?sort=start_time&dir=asc");
    page.assert_contains("Rows 1–4 of 4")
        .assert_contains("aria-sort=\"ascending\"");
    assert_eq!(ana.get("/threats/sessions?sort=secret").status, 400);
    // A drill-down: sorted by score ascending, ana's 4 hits of file type pe.
    let scores: Vec<String> = csv(
        &mut ana,
        "/threats/top/file-type/hits?key=pe&format=csv&sort=score&dir=asc",
    )
    .iter()
    .map(|l| l.split(',').nth(6).unwrap().to_owned())
    .collect();
    assert_eq!(scores, vec!["10", "20", "30", "40"]);
    ana.get("/threats/top/file-type/hits?key=pe")
        .assert_contains("Rows 1–4 of 4");
}

in_both_modes!(
    ranges_count_exactly_the_sessions_started_in_them,
    reports_sort_by_their_columns_and_page_with_a_total,
    many_key_reports_show_rows_first_and_count_after,
    lists_page_sort_and_take_the_range
);
