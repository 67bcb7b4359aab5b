//! The histogram of hits over time on the threat reports (issue 20, point 2), over real HTTP:
//! for analysts with different clearances and ranges whose ends fall inside hours (hour bars, a
//! multi-day range of day bars, minute bars, all time), every bar counts exactly the hits of
//! sessions started in its interval that the analyst may see (an oracle computed here from the
//! events sent), the bars add up to the report's total, each bar's link zooms into its interval,
//! and every report page and drill-down draws it. Inline and delayed (`threats_support`).

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

/// A hit as the oracle knows it: when its session started, its signature's group, its protocol.
#[derive(Debug, Clone)]
struct Hit {
    start: DateTime<Utc>,
    group: &'static str,
    protocol: &'static str,
}

const SIGNATURES: [(&str, &str); 3] = [("sig-a", "alpha"), ("sig-b", "beta"), ("sig-c", "gamma")];

/// 60 sessions spread over the five days before yesterday (UTC) at uneven minutes and seconds,
/// more just inside and outside the ranges' ends, and one dated 20 minutes ahead, each with one file hit by one, two or three signatures. ana holds alpha; bea holds alpha and
/// beta; gamma is the admin's alone.
fn world(reports: Reports) -> (TestApp, DateTime<Utc>, Vec<Hit>) {
    world_in(reports, chrono_tz::UTC)
}

/// [`world`] with the campus time zone `zone`.
fn world_in(reports: Reports, zone: chrono_tz::Tz) -> (TestApp, DateTime<Utc>, Vec<Hit>) {
    let app = TestApp::spawn_with(|s| {
        reports.configure(s);
        s.time_zone = zone;
    });
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bea", "analyst", PASSWORD);
    create_user(&app, "admin", "admin", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    for (sig, group) in SIGNATURES {
        service::set_signature(&mut conn, s, &ctx, sig, group, None, None).unwrap();
    }
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bea", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bea", "beta", true).unwrap();
    let (_, token) = service::create_sensor(&mut conn, s, &ctx, "edge").unwrap();
    drop(conn);
    let day = heyboss::threats::buckets::bucket_start(
        Utc::now() - Duration::days(6),
        heyboss::threats::buckets::Grain::Day,
    );
    let mut hits = Vec::new();
    let mut events = Vec::new();
    let mut seed: u64 = 7;
    // Sessions a minute or a few inside and outside the ends of the ranges the tests ask for.
    let near_ends = [
        (1, "10:16:59"),
        (1, "10:17:00"),
        (1, "10:40:00"),
        (2, "09:05:00"),
        (2, "09:42:59"),
        (2, "09:43:00"),
        (0, "07:30:00"),
        (0, "07:45:00"),
        (4, "16:05:00"),
        (4, "16:12:00"),
        (2, "13:06:00"),
        (2, "13:08:00"),
        (2, "14:36:59"),
        (2, "14:37:00"),
    ];
    // And one a sensor dated 20 minutes ahead.
    let ahead = Utc::now() + Duration::minutes(20);
    for i in 0..60 + near_ends.len() + 1 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let start = match near_ends.get(i.wrapping_sub(60)) {
            Some((d, hms)) => time(&format!(
                "{}T{hms}Z",
                (day + Duration::days(*d)).format("%Y-%m-%d")
            )),
            None if i < 60 => day + Duration::seconds(((seed >> 33) % (5 * 86_400)) as i64),
            None => ahead,
        };
        let protocol = if i % 3 == 0 { "udp" } else { "tcp" };
        let (session, file) = (format!("s{i}"), format!("f{i}"));
        events.push(ev(
            "SessionDiscovered",
            json!({"session_id": session, "start_time": start.to_rfc3339(),
            "protocol": protocol, "source_ip": "10.0.0.1",
            "destination_ip": format!("10.0.1.{}", i % 7), "source_port": 1, "destination_port": 80}),
        ));
        events.push(ev(
            "FileDiscovered",
            json!({"file_id": file, "session_id": session,
            "md5": format!("{:032x}", 0x100 + i), "filename": format!("f{i}.exe"),
            "file_type": if i % 2 == 0 { "pe" } else { "pdf" }, "size_bytes": 1}),
        ));
        // sig-a on every other file and near the ends, sig-b on every third, sig-c on the rest
        // and every fifth.
        for (k, (sig, group)) in SIGNATURES.iter().enumerate() {
            let scored = match k {
                0 => i % 2 == 0 || i >= 60,
                1 => i % 3 == 0,
                _ => (i % 2 != 0 && i % 3 != 0) || i % 5 == 0,
            };
            if scored {
                events.push(ev(
                    "FileScored",
                    json!({"file_id": file, "session_id": session, "integration": format!("av{k}"),
                    "score": 10 + i, "signature": sig}),
                ));
                hits.push(Hit {
                    start,
                    group,
                    protocol,
                });
            }
        }
    }
    let r = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
    reports.settle(&app);
    (app, day, hits)
}

fn signed_in(app: &TestApp, user: &str) -> Client {
    let mut c = Client::new(app);
    c.login(user, PASSWORD);
    c
}

fn groups_of(user: &str) -> &'static [&'static str] {
    match user {
        "ana" => &["alpha"],
        "bea" => &["alpha", "beta"],
        _ => &["alpha", "beta", "gamma"],
    }
}

/// The oracle: the hits `user` may see of sessions started in `[from, to)` (and of `protocol`).
fn oracle(
    hits: &[Hit],
    user: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    protocol: Option<&str>,
) -> i64 {
    hits.iter()
        .filter(|h| groups_of(user).contains(&h.group))
        .filter(|h| protocol.is_none_or(|p| p == h.protocol))
        .filter(|h| h.start >= from && h.start < to)
        .count() as i64
}

/// A bar as the page draws it: its interval, its count and its link.
#[derive(Debug)]
struct Bar {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hits: i64,
    href: String,
}

fn attr(tag: &str, name: &str) -> String {
    let at = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("{name} in {tag}"));
    let rest = &tag[at + name.len() + 3..];
    rest[..rest.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2F;", "/")
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The histogram's bars on a page.
fn bars(html: &str) -> Vec<Bar> {
    html.split("<a class=\"histogram-link\"")
        .skip(1)
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap()];
            Bar {
                from: time(&attr(tag, "data-from")),
                to: time(&attr(tag, "data-to")),
                hits: attr(tag, "data-hits").parse().unwrap(),
                href: attr(tag, "href"),
            }
        })
        .collect()
}

/// The report's hits in all (the protocol report's rows summed, from its CSV).
fn report_total(c: &mut Client, range: &str) -> i64 {
    let res = c.get(&format!(
        "/threats/top/protocol?format=csv&limit=1000&{range}"
    ));
    assert_eq!(res.status, 200, "{}", res.body);
    res.body
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<i64>().unwrap())
        .sum()
}

fn at(day: DateTime<Utc>, days: i64, hh_mm: &str) -> (String, DateTime<Utc>) {
    let d = day + Duration::days(days);
    let text = format!("{}T{hh_mm}", d.format("%Y-%m-%d"));
    (text.clone(), time(&format!("{text}:00Z")))
}

/// Check a page's bars against the oracle: consecutive, covering `[from, to)` when given, each
/// exact, adding up to `total`; returns them.
#[track_caller]
fn check_bars(
    html: &str,
    hits: &[Hit],
    user: &str,
    ends: Option<(DateTime<Utc>, DateTime<Utc>)>,
    protocol: Option<&str>,
    total: i64,
) -> Vec<Bar> {
    let bars = bars(html);
    assert!(!bars.is_empty(), "{user}: no histogram bars");
    if let Some((from, to)) = ends {
        assert_eq!(
            bars[0].from, from,
            "{user}: the first bar starts at the range"
        );
        assert_eq!(bars.last().unwrap().to, to, "{user}: the last bar ends it");
    }
    for w in bars.windows(2) {
        assert_eq!(w[0].to, w[1].from, "{user}: bars follow each other");
    }
    for b in &bars {
        assert_eq!(
            b.hits,
            oracle(hits, user, b.from, b.to, protocol),
            "{user}: the bar {} to {}",
            b.from,
            b.to
        );
    }
    assert_eq!(
        bars.iter().map(|b| b.hits).sum::<i64>(),
        total,
        "{user}: the bars add up to the report"
    );
    bars
}

fn bars_count_exactly_what_each_analyst_may_see(reports: Reports) {
    let (app, day, hits) = world(reports);
    let users = ["ana", "bea", "admin"];
    // Hour bars: a day less half an hour, both ends inside hours.
    let (f1, from1) = at(day, 1, "10:17");
    let (t1, to1) = at(day, 2, "09:43");
    // Day bars: four days and a bit, ends inside hours and days.
    let (f2, from2) = at(day, 0, "07:31");
    let (t2, to2) = at(day, 4, "16:12");
    // Minute bars: 90 minutes from 13:07.
    let (f3, from3) = at(day, 2, "13:07");
    let (t3, to3) = at(day, 2, "14:37");
    for user in users {
        let mut c = signed_in(&app, user);
        for (f, t, from, to, step) in [
            (&f1, &t1, from1, to1, "hour"),
            (&f2, &t2, from2, to2, "day"),
            (&f3, &t3, from3, to3, "5 minutes"),
        ] {
            let range = format!("from={f}&to={t}");
            let page = c.get(&format!("/threats/top/hash?{range}"));
            assert_eq!(page.status, 200, "{}", page.body);
            page.assert_contains(&format!("<h2>Hits per {step}</h2>"));
            let total = report_total(&mut c, &range);
            assert_eq!(total, oracle(&hits, user, from, to, None), "{user}: report");
            let bars = check_bars(&page.body, &hits, user, Some((from, to)), None, total);
            match step {
                "hour" => assert_eq!(bars.len(), 24, "{user}: 10:17 to 09:43 is 24 bars"),
                "day" => assert_eq!(bars.len(), 5, "{user}: five days' bars"),
                _ => assert_eq!(bars.len(), 19, "{user}: 13:07 to 14:37 in 5 minutes"),
            }
            // A bar's link zooms into exactly its interval, with the same count.
            let busiest = bars.iter().max_by_key(|b| b.hits).unwrap();
            assert!(
                busiest.href.starts_with("/threats/top/hash?limit="),
                "{}",
                busiest.href
            );
            let zoomed = c.get(&busiest.href);
            assert_eq!(zoomed.status, 200, "{}: {}", busiest.href, zoomed.body);
            let inner = check_bars(
                &zoomed.body,
                &hits,
                user,
                Some((busiest.from, busiest.to)),
                None,
                busiest.hits,
            );
            assert!(inner.len() > 1 || busiest.to - busiest.from <= Duration::minutes(5));
        }
        // All time: from the first visible hit to the last, every hit counted.
        let page = c.get("/threats/top/protocol?window=all");
        let all = oracle(&hits, user, day, Utc::now() + Duration::days(1), None);
        check_bars(&page.body, &hits, user, None, None, all);
        assert_eq!(report_total(&mut c, "window=all"), all);
        // A preset with an open end: to now, or past the session dated ahead.
        let page = c.get("/threats/top/file-type?window=7d");
        let bars = check_bars(&page.body, &hits, user, None, None, all);
        assert!(bars.last().unwrap().to > hits.last().unwrap().start);
        let page = c.get("/threats/top/file-type?window=1h");
        let bars = check_bars(&page.body, &hits, user, None, None, 1);
        assert!(
            (16..=17).contains(&bars.len()),
            "5-minute bars for the hour and 20 minutes: {bars:?}"
        );
        // A drill-down draws the hits of its row.
        let page = c.get(&format!(
            "/threats/top/protocol/hits?key=udp&from={f2}&to={t2}"
        ));
        assert_eq!(page.status, 200, "{}", page.body);
        let udp = oracle(&hits, user, from2, to2, Some("udp"));
        let bars = check_bars(
            &page.body,
            &hits,
            user,
            Some((from2, to2)),
            Some("udp"),
            udp,
        );
        assert!(
            bars[0]
                .href
                .starts_with("/threats/top/protocol/hits?key=udp&window=custom&from="),
            "{}",
            bars[0].href
        );
    }
    // The scopes differ: the oracle tells them apart in this world.
    assert!(
        oracle(&hits, "ana", from2, to2, None) < oracle(&hits, "bea", from2, to2, None)
            && oracle(&hits, "bea", from2, to2, None) < oracle(&hits, "admin", from2, to2, None)
    );
}

fn every_report_page_draws_the_histogram(reports: Reports) {
    let (app, day, _) = world(reports);
    let mut ana = signed_in(&app, "ana");
    for report in ["hash", "file-type", "ip-pair", "protocol"] {
        let page = ana.get(&format!("/threats/top/{report}?window=all"));
        assert_eq!(page.status, 200);
        page.assert_contains("<svg class=\"histogram\"")
            .assert_contains("<title id=\"histogram-title\">Visible hits per day")
            .assert_contains("Hits per day as a list");
        // The HTMX fragment a range change swaps in has it too.
        let (f, _) = at(day, 1, "10:17");
        let (t, _) = at(day, 2, "09:43");
        ana.get_htmx(&format!("/threats/top/{report}?from={f}&to={t}"))
            .assert_contains("<svg class=\"histogram\"")
            .assert_contains("Hits per hour");
    }
    // No clearance, nothing to draw.
    create_user(&app, "cal", "analyst", PASSWORD);
    let mut cal = signed_in(&app, "cal");
    let page = cal.get("/threats/top/hash?window=all");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("class=\"histogram\""));
}

fn day_bars_start_at_the_viewers_midnight(reports: Reports) {
    let (app, day, hits) = world_in(reports, chrono_tz::America::New_York);
    let (_, from) = at(day, 0, "07:31");
    let (_, to) = at(day, 4, "16:12");
    // Explicit UTC: a time without an offset would be read in the viewer's zone (New York).
    let (f, t) = (
        from.format("%Y-%m-%dT%H:%M:%SZ"),
        to.format("%Y-%m-%dT%H:%M:%SZ"),
    );
    for user in ["ana", "bea"] {
        let mut c = signed_in(&app, user);
        let range = format!("from={f}&to={t}");
        let page = c.get(&format!("/threats/top/ip-pair?{range}"));
        page.assert_contains("<h2>Hits per day</h2>")
            .assert_contains(" EST: ");
        let total = report_total(&mut c, &range);
        let bars = check_bars(&page.body, &hits, user, Some((from, to)), None, total);
        // Midnight in New York is 05:00 UTC in December.
        assert_eq!(bars.len(), 5, "{bars:?}");
        for b in &bars[1..] {
            assert_eq!(b.from.format("%H:%M").to_string(), "05:00", "{bars:?}");
        }
    }
    // A time without an offset (as a datetime-local field sends it) is the viewer's local time
    // (DESIGN section 7), and the range form shows it back in that zone.
    let mut c = signed_in(&app, "ana");
    let local = from
        .with_timezone(&chrono_tz::America::New_York)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let page = c.get(&format!(
        "/threats/top/ip-pair?window=custom&from={local}&to={t}"
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(bars(&page.body)[0].from, from, "{local} in New York");
    page.assert_contains(&format!("value=\"{local}\""));
}

in_both_modes!(
    bars_count_exactly_what_each_analyst_may_see,
    every_report_page_draws_the_histogram,
    day_bars_start_at_the_viewers_midnight
);
