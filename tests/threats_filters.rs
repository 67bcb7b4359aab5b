//! Click to filter (issue 20.3) over real HTTP: with filters of each kind (two combined, a
//! repeated key), every count of every report, of a drill-down and of the sessions list equals
//! an independent computation over the hits each viewer may see (two analysts with different
//! clearances, and an admin); chips and filter links on the pages; the search box; bad values are
//! a 400 that says which. Inline and delayed (`threats_support`).

mod common;
mod threats_support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::forms::{forms, links};
use common::{create_user, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::{json, Value};
use threats_support::Reports;

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

/// A hit of the model: what the reports are computed from, independently of the application.
#[derive(Debug, Clone)]
struct Hit {
    session: String,
    md5: String,
    filename: String,
    file_type: String,
    src: String,
    dst: String,
    protocol: String,
    signature: String,
    group: String,
    sensor: String,
    score: i64,
    start: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Session {
    id: String,
    sensor: String,
    protocol: String,
    src: String,
    dst: String,
    start: DateTime<Utc>,
    /// (md5, file type) of its files.
    files: Vec<(String, String)>,
}

struct World {
    app: TestApp,
    hits: Vec<Hit>,
    sessions: Vec<Session>,
    tokens: BTreeMap<&'static str, String>,
    reports: Reports,
}

const SIGNATURES: [(&str, &str); 3] = [("sig-a", "alpha"), ("sig-b", "beta"), ("sig-c", "gamma")];

fn md5(m: usize) -> String {
    format!("{:032x}", 0xb0 + m)
}

/// 24 sessions over the last 9 days from two sensors (edge-1, edge-2), over tcp and udp between
/// four sources and five destinations, each with one or two files of six hashes (three file
/// types), hit by one or two of sig-a (alpha), sig-b (beta), sig-c (gamma); and a session of
/// edge-2 with `secret-plan.doc`, hit by sig-b only. ana holds alpha; bob holds beta and gamma.
fn world(reports: Reports) -> World {
    let app = reports.spawn();
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bob", "analyst", PASSWORD);
    create_user(&app, "admin", "admin", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    for (sig, group) in SIGNATURES {
        service::set_signature(&mut conn, s, &ctx, sig, group, None, None).unwrap();
    }
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bob", "gamma", true).unwrap();
    let tokens: BTreeMap<&str, String> = ["edge-1", "edge-2"]
        .into_iter()
        .map(|n| (n, service::create_sensor(&mut conn, s, &ctx, n).unwrap().1))
        .collect();
    drop(conn);
    let now = Utc::now().trunc_subsecs(0);
    let (mut hits, mut sessions) = (Vec::new(), Vec::new());
    let mut batches: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let types = ["pe", "pdf", "zip"];
    let sig_sets: [&[usize]; 4] = [&[0], &[0, 1], &[1, 2], &[2]];
    for i in 0..25usize {
        let secret = i == 24;
        let sensor = if i % 3 == 0 || secret {
            "edge-2"
        } else {
            "edge-1"
        };
        let session = Session {
            id: format!("s{i}"),
            sensor: sensor.into(),
            protocol: ["tcp", "udp"][(i / 2) % 2].into(),
            src: format!("10.0.0.{}", i % 4),
            dst: format!("10.0.1.{}", i % 5),
            start: now - Duration::hours(9 * i as i64 % 216) - Duration::minutes(13),
            files: Vec::new(),
        };
        let batch = batches.entry(sensor).or_default();
        batch.push(ev(
            "SessionDiscovered",
            json!({"session_id": session.id, "start_time": session.start.to_rfc3339(),
                "protocol": session.protocol, "source_ip": session.src,
                "destination_ip": session.dst, "source_port": 1000 + i, "destination_port": 443}),
        ));
        let mut session = session;
        for j in 0..(1 + i % 2) {
            let m = if secret { 6 } else { (i + j * 3) % 6 };
            let (filename, file_type) = if secret {
                ("secret-plan.doc".to_owned(), "doc".to_owned())
            } else {
                (format!("file{m}.bin"), types[m % 3].to_owned())
            };
            let file = format!("f{i}-{j}");
            batch.push(ev(
                "FileDiscovered",
                json!({"file_id": file, "session_id": session.id, "md5": md5(m),
                    "filename": filename, "file_type": file_type, "size_bytes": 10}),
            ));
            session.files.push((md5(m), file_type.clone()));
            let sigs: &[usize] = if secret { &[1] } else { sig_sets[(i + j) % 4] };
            for (k, &sig) in sigs.iter().enumerate() {
                let score = ((i * 7 + j * 13 + k * 5) % 100) as i64;
                batch.push(ev(
                    "FileScored",
                    json!({"file_id": file, "session_id": session.id, "integration": "av",
                        "score": score, "signature": SIGNATURES[sig].0}),
                ));
                hits.push(Hit {
                    session: session.id.clone(),
                    md5: md5(m),
                    filename: filename.clone(),
                    file_type: file_type.clone(),
                    src: session.src.clone(),
                    dst: session.dst.clone(),
                    protocol: session.protocol.clone(),
                    signature: SIGNATURES[sig].0.into(),
                    group: SIGNATURES[sig].1.into(),
                    sensor: sensor.into(),
                    score,
                    start: session.start,
                });
            }
        }
        sessions.push(session);
    }
    for (sensor, events) in batches {
        let r = ureq::post(&app.url("/api/v1/events"))
            .set("Authorization", &format!("Bearer {}", tokens[sensor]))
            .send_json(json!({ "events": events }))
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    reports.settle(&app);
    World {
        app,
        hits,
        sessions,
        tokens,
        reports,
    }
}

/// The groups a viewer holds (`None`: an admin, who sees all).
fn groups_of(user: &str) -> Option<Vec<&'static str>> {
    match user {
        "ana" => Some(vec!["alpha"]),
        "bob" => Some(vec!["beta", "gamma"]),
        _ => None,
    }
}

/// A filter query as (key, value) pairs.
fn pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap()
}

/// Whether the values of `key` in the filters allow `value` (no value of the key: any).
fn allows(filters: &[(String, String)], key: &str, matches: impl Fn(&str) -> bool) -> bool {
    let values: Vec<&str> = filters
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    values.is_empty() || values.into_iter().any(matches)
}

fn passes(h: &Hit, f: &[(String, String)]) -> bool {
    allows(f, "md5", |v| v == h.md5)
        && allows(f, "file_type", |v| v == h.file_type)
        && allows(f, "ip", |v| v == h.src || v == h.dst)
        && allows(f, "protocol", |v| v == h.protocol)
        && allows(f, "signature", |v| v == h.signature)
        && allows(f, "sensor", |v| v == h.sensor)
}

/// The hits `user` may see in the range (sessions started since `from`) that pass the filters.
fn visible<'a>(
    w: &'a World,
    user: &str,
    from: Option<DateTime<Utc>>,
    f: &[(String, String)],
) -> Vec<&'a Hit> {
    let groups = groups_of(user);
    w.hits
        .iter()
        .filter(|h| {
            groups
                .as_ref()
                .is_none_or(|g| g.contains(&h.group.as_str()))
        })
        .filter(|h| from.is_none_or(|from| h.start >= from))
        .filter(|h| passes(h, f))
        .collect()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The CSV lines of a report, computed from the model (sorted: the order is checked apart).
fn oracle(hits: &[&Hit], report: &str) -> Vec<String> {
    let mut groups: BTreeMap<String, Vec<&Hit>> = BTreeMap::new();
    for h in hits {
        let key = match report {
            "hash" => h.md5.clone(),
            "file-type" => h.file_type.clone(),
            "ip-pair" => format!("{},{}", h.src, h.dst),
            _ => h.protocol.clone(),
        };
        groups.entry(key).or_default().push(h);
    }
    let mut lines: Vec<String> = groups
        .into_iter()
        .map(|(key, hs)| {
            let n = hs.len();
            let max = hs.iter().map(|h| h.score).max().unwrap();
            if report == "hash" {
                let mut sigs: Vec<&str> = hs.iter().map(|h| h.signature.as_str()).collect();
                sigs.sort();
                sigs.dedup();
                let last = hs.iter().map(|h| h.start).max().unwrap();
                format!(
                    "{key},{},{},{n},{max},{},{}",
                    hs[0].filename,
                    hs[0].file_type,
                    sigs.join(";"),
                    time(last)
                )
            } else {
                format!("{key},{n},{max}")
            }
        })
        .collect();
    lines.sort();
    lines
}

/// The sessions the list shows `user` (see `queries::sessions`): protocol, IP and sensor are the
/// session's; md5 and file type its files'; a signature needs a visible hit of it on a file that
/// passes those.
fn oracle_sessions(
    w: &World,
    user: &str,
    from: Option<DateTime<Utc>>,
    f: &[(String, String)],
) -> Vec<String> {
    let groups = groups_of(user);
    let file_ok =
        |md5: &str, ft: &str| allows(f, "md5", |v| v == md5) && allows(f, "file_type", |v| v == ft);
    let mut ids: Vec<String> = w
        .sessions
        .iter()
        .filter(|s| from.is_none_or(|from| s.start >= from))
        .filter(|s| allows(f, "protocol", |v| v == s.protocol))
        .filter(|s| allows(f, "ip", |v| v == s.src || v == s.dst))
        .filter(|s| allows(f, "sensor", |v| v == s.sensor))
        .filter(|s| {
            let any_file = f.iter().any(|(k, _)| k == "md5" || k == "file_type");
            !any_file || s.files.iter().any(|(m, t)| file_ok(m, t))
        })
        .filter(|s| {
            !f.iter().any(|(k, _)| k == "signature")
                || w.hits.iter().any(|h| {
                    h.session == s.id
                        && groups
                            .as_ref()
                            .is_none_or(|g| g.contains(&h.group.as_str()))
                        && allows(f, "signature", |v| v == h.signature)
                        && file_ok(&h.md5, &h.file_type)
                })
        })
        .map(|s| s.id.clone())
        .collect();
    ids.sort();
    ids
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

/// The filters the oracle test tries: none, each kind, two kinds combined, a repeated key.
fn filter_cases() -> Vec<String> {
    vec![
        String::new(),
        format!("md5={}", md5(2)),
        "file_type=pdf".into(),
        "ip=10.0.0.1".into(),
        "protocol=udp".into(),
        "signature=sig-b".into(),
        "sensor=edge-2".into(),
        "protocol=tcp&sensor=edge-1".into(),
        "ip=10.0.1.1&ip=10.0.1.3".into(),
        "file_type=pe&signature=sig-c&signature=sig-a".into(),
    ]
}

fn every_count_equals_the_oracle_for_each_filter(reports: Reports) {
    let w = world(reports);
    let now = Utc::now();
    for user in ["ana", "bob", "admin"] {
        let mut c = signed_in(&w.app, user);
        for filters in filter_cases() {
            let f = pairs(&filters);
            for (range, from) in [
                ("window=all", None),
                ("window=7d", Some(now - Duration::days(7))),
            ] {
                let hits = visible(&w, user, from, &f);
                for report in ["hash", "file-type", "ip-pair", "protocol"] {
                    let path =
                        format!("/threats/top/{report}?format=csv&limit=1000&{range}&{filters}");
                    let mut got = csv(&mut c, &path);
                    got.sort();
                    assert_eq!(got, oracle(&hits, report), "{user}: {path}");
                }
                // The histogram counts the same hits: its bars add up to them.
                let page = c.get(&format!("/threats/top/protocol?{range}&{filters}"));
                let bars: i64 = page
                    .body
                    .split("<a class=\"histogram-link\"")
                    .skip(1)
                    .map(|rest| {
                        let tag = &rest[..rest.find('>').unwrap()];
                        let at = tag.find(" data-hits=\"").unwrap() + 12;
                        tag[at..at + tag[at..].find('"').unwrap()]
                            .parse::<i64>()
                            .unwrap()
                    })
                    .sum();
                assert_eq!(
                    bars,
                    hits.len() as i64,
                    "{user}: histogram of {range}&{filters}"
                );
                let path = format!("/threats/sessions?format=csv&{range}&{filters}");
                let mut got: Vec<String> = csv(&mut c, &path)
                    .iter()
                    .map(|l| l.split(',').next().unwrap().to_owned())
                    .collect();
                got.sort();
                assert_eq!(got, oracle_sessions(&w, user, from, &f), "{user}: {path}");
            }
            // A drill-down: the visible hits of each hash that pass the filters.
            let all = visible(&w, user, None, &f);
            for m in 0..7 {
                let expected = all.iter().filter(|h| h.md5 == md5(m)).count();
                let path = format!("/threats/top/hash/hits?format=csv&key={}&{filters}", md5(m));
                assert_eq!(csv(&mut c, &path).len(), expected, "{user}: {path}");
            }
            // The page says the same total as the oracle's rows.
            let page = c.get(&format!("/threats/top/protocol?{filters}"));
            assert_eq!(page.status, 200);
            let rows = oracle(&all, "protocol").len();
            if rows > 0 {
                page.assert_contains(&format!("of {rows}</span>"));
            }
        }
    }
    // A filter on a signature outside ana's clearances shows her nothing at all.
    let mut ana = signed_in(&w.app, "ana");
    for report in ["hash", "file-type", "ip-pair", "protocol"] {
        assert!(csv(
            &mut ana,
            &format!("/threats/top/{report}?format=csv&signature=sig-b")
        )
        .is_empty());
    }
    assert!(csv(&mut ana, "/threats/sessions?format=csv&signature=sig-c").is_empty());
}

fn chips_links_and_forms_keep_the_filters(reports: Reports) {
    let w = world(reports);
    let mut ana = signed_in(&w.app, "ana");
    let page = ana.get("/threats/top/protocol?ip=10.0.1.1&file_type=pe&ip=10.0.1.3");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert_eq!(body.matches("class=\"chip\" data-filter=\"ip\"").count(), 2);
    assert_eq!(body.matches("data-filter=\"file_type\"").count(), 1);
    let text = common::text_of(body);
    assert!(
        text.contains("File type: pe× and IP: 10.0.1.1× or IP: 10.0.1.3×"),
        "{text}"
    );
    let base = "/threats/top/protocol?limit=10&window=all&sort=hits&dir=desc";
    let hrefs = links(body);
    // Each chip removes itself and keeps the rest; "clear all" keeps the range and sort.
    assert!(hrefs.contains(&format!("{base}&file_type=pe&ip=10.0.1.3")));
    assert!(hrefs.contains(&format!("{base}&ip=10.0.1.1&ip=10.0.1.3")));
    assert!(hrefs.contains(&base.to_owned()));
    // Every protocol shown adds its filter to the others.
    let filtered = format!("{base}&file_type=pe&ip=10.0.1.1&ip=10.0.1.3");
    let visible = visible(
        &w,
        "ana",
        None,
        &pairs("ip=10.0.1.1&file_type=pe&ip=10.0.1.3"),
    );
    assert!(!visible.is_empty());
    for h in &visible {
        assert!(
            hrefs.contains(&format!("{filtered}&protocol={}", h.protocol)),
            "{hrefs:?}"
        );
    }
    // Sort and page links, the drill-downs and the CSV carry them.
    for carried in hrefs
        .iter()
        .filter(|h| h.contains("sort=key") || h.contains("/hits?") || h.contains("format=csv"))
    {
        assert!(
            carried.contains("file_type=pe&ip=10.0.1.1&ip=10.0.1.3"),
            "{carried}"
        );
    }
    // The other reports and the sessions list keep them.
    for other in ["/threats/top/hash?", "/threats/sessions?"] {
        assert!(hrefs.contains(&format!("{other}file_type=pe&ip=10.0.1.1&ip=10.0.1.3")));
    }
    // The range form and the search box send them too.
    let all_forms = forms(body);
    for action in ["/threats/top/protocol", "/threats/search"] {
        let form = all_forms.iter().find(|f| f.action == action).unwrap();
        let sent = form.pairs();
        for (k, v) in [("ip", "10.0.1.1"), ("ip", "10.0.1.3"), ("file_type", "pe")] {
            assert!(sent.contains(&(k.into(), v.into())), "{action}: {sent:?}");
        }
    }
    // The hash report: hashes, file types and signatures filter; the hash's page is a link too.
    let hash = ana.get("/threats/top/hash?limit=1000");
    let hrefs = links(&hash.body);
    let base = "/threats/top/hash?limit=1000&window=all&sort=hits&dir=desc";
    for h in visible_all(&w, "ana") {
        assert!(hrefs.contains(&format!("{base}&md5={}", h.md5)));
        assert!(hrefs.contains(&format!("{base}&file_type={}", h.file_type)));
        assert!(hrefs.contains(&format!("/threats/hashes/{}", h.md5)));
        assert!(hrefs.contains(&format!("{base}&signature={}", h.signature)));
    }
    // The IP pairs: each address; the sessions list: protocol, addresses and sensor.
    let pairs_page = ana.get("/threats/top/ip-pair");
    assert!(links(&pairs_page.body)
        .iter()
        .any(|l| l.ends_with("&ip=10.0.1.1")));
    let sessions = ana.get("/threats/sessions?protocol=udp");
    let hrefs = links(&sessions.body);
    let base = "/threats/sessions?min_score=&window=all&sort=start_time&dir=desc&protocol=udp";
    assert!(
        hrefs.contains(&format!("{base}&sensor=edge-2")),
        "{hrefs:?}"
    );
    assert!(hrefs.contains(&format!("{base}&ip=10.0.0.2")));
    assert!(hrefs.contains(&format!("{base}&protocol=udp")));
    // A drill-down shows the chips and filters by its values (the admin sees sig-b here).
    let mut admin = signed_in(&w.app, "admin");
    let hits = admin.get(&format!(
        "/threats/top/hash/hits?key={}&ip=10.0.0.2",
        md5(2)
    ));
    assert_eq!(hits.status, 200);
    assert!(hits.body.contains("data-filter=\"ip\""));
    assert!(links(&hits.body)
        .iter()
        .any(|l| l.contains("ip=10.0.0.2&signature=sig-b")));
}

fn visible_all<'a>(w: &'a World, user: &str) -> Vec<&'a Hit> {
    visible(w, user, None, &[])
}

fn the_search_box_finds_a_hash_an_address_or_a_filename(reports: Reports) {
    let w = world(reports);
    let mut ana = signed_in(&w.app, "ana");
    let mut bo = signed_in(&w.app, "bob");
    let upper = md5(3).to_uppercase();
    let res = ana.get(&format!(
        "/threats/search?q=+{upper}+&report=protocol&window=7d&ip=10.0.0.1"
    ));
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location").unwrap(),
        format!("/threats/top/protocol?window=7d&md5={}&ip=10.0.0.1", md5(3))
    );
    let res = ana.get("/threats/search?q=10.0.1.4&report=hash");
    assert_eq!(
        res.header("location").unwrap(),
        "/threats/top/hash?window=all&ip=10.0.1.4"
    );
    // A filename: part of it, any case; only files with a hit the viewer may see.
    let found = ana.get("/threats/search?q=FILE1.B&report=hash");
    assert_eq!(found.status, 200, "{}", found.body);
    assert!(found.body.contains("file1.bin"));
    assert!(!found.body.contains("file2.bin"));
    assert!(links(&found.body)
        .iter()
        .any(|l| l.starts_with("/threats/files/")));
    assert!(links(&found.body)
        .iter()
        .any(|l| l.ends_with(&format!("md5={}", md5(1)))));
    let secret = ana.get("/threats/search?q=secret");
    assert_eq!(secret.status, 200);
    assert!(!secret.body.contains("secret-plan"), "ana holds no beta");
    assert!(secret.body.contains("No file"));
    assert!(bo
        .get("/threats/search?q=secret")
        .body
        .contains("secret-plan.doc"));
    // Wildcards are literal.
    assert!(!bo.get("/threats/search?q=%25").body.contains("secret-plan"));
    let empty = ana.get("/threats/search?q=+");
    assert_eq!(empty.status, 400);
    assert!(empty
        .body
        .contains("Type a file hash (MD5), an IP address or part of a filename"));
}

fn bad_filter_values_are_a_400_that_says_which(reports: Reports) {
    let w = world(reports);
    let mut ana = signed_in(&w.app, "ana");
    for (query, message) in [
        ("md5=abc", "md5 \"abc\" is not an MD5 hash"),
        ("ip=10.0.0.300", "ip \"10.0.0.300\" is not an IP address"),
        (
            "protocol=t%20cp",
            "protocol \"t cp\" is not a protocol name",
        ),
        ("ip=10.0.0.1&md5=zz", "md5 \"zz\" is not an MD5 hash"),
    ] {
        for page in [
            "/threats/top/hash?",
            "/threats/top/ip-pair?format=csv&",
            "/threats/top/protocol/hits?key=tcp&",
            "/threats/sessions?",
            "/threats/sessions?format=csv&",
            "/threats/search?q=x&",
        ] {
            let res = ana.get(&format!("{page}{query}"));
            assert_eq!(res.status, 400, "{page}{query}");
            let text = common::forms::unescape(&res.body);
            assert!(text.contains(message), "{page}{query}: {text}");
        }
    }
}

fn csv_keeps_its_columns_under_filters(reports: Reports) {
    let w = world(reports);
    let mut admin = signed_in(&w.app, "admin");
    for (report, header) in [
        (
            "hash",
            "md5,filename,file_type,hits,max_score,signatures,last_seen",
        ),
        ("file-type", "file_type,hits,max_score"),
        ("ip-pair", "source_ip,destination_ip,hits,max_score"),
        ("protocol", "protocol,hits,max_score"),
    ] {
        let res = admin.get(&format!(
            "/threats/top/{report}?format=csv&protocol=udp&sensor=edge-1&limit=2"
        ));
        assert_eq!(res.status, 200);
        let lines: Vec<&str> = res.body.lines().collect();
        assert_eq!(lines[0], header);
        // limit stays: at most 2 rows.
        assert!((1..=2).contains(&(lines.len() - 1)), "{report}: {lines:?}");
    }
}

fn the_rescans_report_takes_the_filters(reports: Reports) {
    let w = world(reports);
    // f1-0 (md5 1, session s1 to 10.0.1.1) is hit by sig-a and sig-b; f2-0 (session s2 to
    // 10.0.1.2) by sig-b and sig-c. Rescan three of them.
    let rescan = |file: &str, session: &str, sig: &str, score: i64| {
        ev(
            "FileRescored",
            json!({"file_id": file, "session_id": session, "integration": "av",
                "new_score": score, "signature": sig}),
        )
    };
    let r = ureq::post(&w.app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {}", w.tokens["edge-1"]))
        .send_json(json!({ "events": [
            rescan("f1-0", "s1", "sig-a", 77),
            rescan("f1-0", "s1", "sig-b", 55),
            rescan("f2-0", "s2", "sig-c", 91),
        ]}))
        .unwrap();
    assert_eq!(r.status(), 200);
    w.reports.settle(&w.app);
    let mut admin = signed_in(&w.app, "admin");
    let mut ana = signed_in(&w.app, "ana");
    let files = |c: &mut Client, q: &str| -> Vec<String> {
        let mut v: Vec<String> = csv(c, &format!("/threats/rescans?format=csv&{q}"))
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{} {}", f[2], f[4])
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(files(&mut admin, "").len(), 3);
    assert_eq!(files(&mut admin, "signature=sig-b"), vec!["f1-0 sig-b"]);
    assert_eq!(files(&mut admin, "ip=10.0.1.2"), vec!["f2-0 sig-c"]);
    assert_eq!(
        files(&mut admin, &format!("md5={}", md5(1))),
        vec!["f1-0 sig-a", "f1-0 sig-b"]
    );
    assert_eq!(
        files(
            &mut admin,
            "sensor=edge-1&protocol=tcp&signature=sig-a&signature=sig-c"
        ),
        vec!["f1-0 sig-a"],
        "s1 is edge-1's over tcp; s2 is edge-1's over udp"
    );
    assert_eq!(files(&mut ana, ""), vec!["f1-0 sig-a"]);
    assert!(files(&mut ana, "signature=sig-b").is_empty());
    let page = ana.get("/threats/rescans?window=all&signature=sig-a");
    assert!(page.body.contains("data-filter=\"signature\""));
    assert!(links(&page.body).contains(&"/threats/rescans?window=all&from=&to=".to_owned()));
    assert_eq!(ana.get("/threats/rescans?md5=nope").status, 400);
}

fn live_counts_only_new_hits_that_pass_the_filters(reports: Reports) {
    let w = world(reports);
    let since = {
        let mut conn = w.app.state.pool.get().unwrap();
        heyboss::threats::live::position_now(&mut conn).unwrap()
    };
    let now = Utc::now().to_rfc3339();
    let mut events = Vec::new();
    for (session, proto, sigs) in [
        ("n1", "udp", &["sig-a", "sig-b"][..]),
        ("n2", "tcp", &["sig-c"][..]),
    ] {
        events.push(ev(
            "SessionDiscovered",
            json!({"session_id": session, "start_time": now,
            "protocol": proto, "source_ip": "10.9.0.1", "destination_ip": "10.9.0.2",
            "source_port": 1, "destination_port": 2}),
        ));
        let file = format!("{session}-f");
        events.push(ev(
            "FileDiscovered",
            json!({"file_id": file, "session_id": session,
            "md5": md5(9), "filename": "new.bin", "file_type": "pe", "size_bytes": 1}),
        ));
        for sig in sigs {
            events.push(ev(
                "FileScored",
                json!({"file_id": file, "session_id": session,
                "integration": "av", "score": 50, "signature": sig}),
            ));
        }
    }
    let r = ureq::post(&w.app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {}", w.tokens["edge-1"]))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
    w.reports.settle(&w.app);
    let mut admin = signed_in(&w.app, "admin");
    let mut ana = signed_in(&w.app, "ana");
    let live = |c: &mut Client, filters: &str| {
        let page = c.get(&format!(
            "/threats/top/protocol?live=1&since={since}{filters}"
        ));
        assert_eq!(page.status, 200);
        common::text_of(&page.body)
    };
    assert!(live(&mut admin, "").contains("3 new hits since"));
    assert!(live(&mut admin, "&protocol=udp").contains("2 new hits since"));
    assert!(live(&mut admin, "&protocol=tcp").contains("1 new hit since"));
    assert!(live(&mut admin, "&protocol=tcp&signature=sig-a").contains("0 new hits since"));
    assert!(live(&mut ana, "&protocol=udp").contains("1 new hit since"));
}

in_both_modes!(
    live_counts_only_new_hits_that_pass_the_filters,
    the_rescans_report_takes_the_filters,
    every_count_equals_the_oracle_for_each_filter,
    chips_links_and_forms_keep_the_filters,
    the_search_box_finds_a_hash_an_address_or_a_filename,
    bad_filter_values_are_a_400_that_says_which,
    csv_keeps_its_columns_under_filters,
);
