//! Triage, live reports, signature revisions and rescans over real HTTP, with two analysts of
//! different clearances: a mark is a command and an event, shown as a badge, hidden by the
//! filter, kept in a history; an analyst never reads a note about a hit they may not see and
//! cannot triage what they cannot see; the live toggle counts new hits in the viewer's scope; a
//! signature's page tells its revisions and charts its score; the rescans report shows only
//! rescans of hits the viewer may see.

mod common;

use common::{count_events, create_user, Client, TestApp, PASSWORD};
use diesel::prelude::*;
use heyboss::es::{shadow, Actor, CommandContext, Metadata};
use serde_json::{json, Value};

const MD5_X: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MD5_Y: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

struct World {
    app: TestApp,
    token: String,
}

impl World {
    fn post(&self, events: Vec<Value>) {
        let r = ureq::post(&self.app.url("/api/v1/events"))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(json!({ "events": events }))
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// A new file `file` with md5 `md5` in session `session`, hit by each of `signatures`.
    fn file(&self, session: &str, file: &str, md5: &str, signatures: &[&str]) -> Vec<Value> {
        let mut events = vec![ev(
            "FileDiscovered",
            json!({"file_id": file, "session_id": session, "md5": md5, "filename": format!("{file}.exe"), "file_type": "pe", "size_bytes": 1}),
        )];
        for s in signatures {
            events.push(ev(
                "FileScored",
                json!({"file_id": file, "session_id": session, "integration": "av", "score": 60, "signature": s}),
            ));
        }
        events
    }
}

fn session(id: &str) -> Value {
    ev(
        "SessionDiscovered",
        json!({"session_id": id, "start_time": chrono::Utc::now().to_rfc3339(), "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 80}),
    )
}

/// sig-a (group alpha), sig-b (group beta); ana holds alpha, bob beta. Session s1 holds file x
/// (md5 X) hit by sig-a and sig-b; session s2 holds file y (md5 Y) hit by sig-b only.
fn world() -> World {
    let app = TestApp::spawn();
    create_user(&app, "admin", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bob", "analyst", PASSWORD);
    create_user(&app, "stan", "staff", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    service::set_signature(&mut conn, s, &ctx, "sig-a", "alpha", None, None).unwrap();
    service::set_signature(&mut conn, s, &ctx, "sig-b", "beta", None, None).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
    let (_, token) = service::create_sensor(&mut conn, s, &ctx, "edge").unwrap();
    drop(conn);
    let w = World { app, token };
    let mut events = vec![session("s1"), session("s2")];
    events.extend(w.file("s1", "x", MD5_X, &["sig-a", "sig-b"]));
    events.extend(w.file("s2", "y", MD5_Y, &["sig-b"]));
    w.post(events);
    w
}

fn signed_in(app: &TestApp, user: &str) -> Client {
    let mut c = Client::new(app);
    c.login(user, PASSWORD);
    c
}

/// Post the triage form of the page at `page` (its own CSRF token and key), as a browser would.
fn triage(c: &mut Client, page: &str, status: &str, note: &str) -> common::Response {
    let body = c.get(page).body;
    let form = common::forms::forms(&body)
        .into_iter()
        .find(|f| f.action == "/threats/triage")
        .unwrap_or_else(|| panic!("{page} has a triage form: {body}"));
    c.submit(&form, &[("status", status), ("note", note)])
}

/// The triage form's fields: kind, subject, status, note.
fn fields([kind, subject, status, note]: [&str; 4]) -> [(&'static str, &str); 4] {
    [
        ("subject_kind", kind),
        ("subject", subject),
        ("status", status),
        ("note", note),
    ]
}

/// Post the triage fields with the page's CSRF token.
fn post_triage(c: &mut Client, values: [&str; 4]) -> common::Response {
    c.post("/threats/triage", &fields(values))
}

/// The lines of a CSV body after its header.
fn csv_rows(c: &mut Client, path: &str) -> Vec<String> {
    let res = c.get(path);
    assert_eq!(res.status, 200, "{path}");
    res.body.lines().skip(1).map(str::to_owned).collect()
}

#[test]
fn analysts_triage_what_they_see_and_read_only_notes_about_hits_they_may_see() {
    let w = world();
    let mut ana = signed_in(&w.app, "ana");
    let mut bob = signed_in(&w.app, "bob");
    let mut admin = signed_in(&w.app, "admin");
    let hash_x = format!("/threats/hashes/{MD5_X}");
    let hash_y = format!("/threats/hashes/{MD5_Y}");

    // ana marks X (her sig-a hit) a false positive: an event, then the hash's page says so.
    let res = triage(&mut ana, &hash_x, "false-positive", "ana: signed installer");
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.header("location"), Some(hash_x.as_str()));
    assert_eq!(count_events(&w.app, "ThreatTriaged"), 1);
    let page = ana.get(&hash_x);
    page.assert_contains("ana: signed installer")
        .assert_contains("triage-false-positive")
        .assert_contains("Marked hash: False positive.");

    // bob sees X too (his sig-b hit), but not ana's note about the sig-a hit, nor its badge.
    let page = bob.get(&hash_x);
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("ana: signed installer"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("triage-false-positive"));
    page.assert_contains("Not triaged yet.");
    let report = bob.get("/threats/top/hash");
    assert!(!report.body.contains("triage-false-positive"));
    // ana's report shows the badge on X.
    let report = ana.get("/threats/top/hash");
    report.assert_contains("triage-false-positive");

    // Y has only sig-b hits: ana may not see its page, and may not triage it.
    assert_eq!(ana.get(&hash_y).status, 404);
    let res = post_triage(&mut ana, ["hash", MD5_Y, "triaged", "probing"]);
    assert_eq!(res.status, 422);
    res.assert_contains("You can triage only what you may see");
    assert_eq!(count_events(&w.app, "ThreatTriaged"), 1);

    // bob escalates Y; ana never learns of it.
    let res = triage(&mut bob, &hash_y, "escalated", "bob: beacon to a known C2");
    assert_eq!(res.status, 303);
    assert!(!ana.get("/threats/top/hash").body.contains("escalated"));
    bob.get(&hash_y)
        .assert_contains("bob: beacon to a known C2");

    // An admin's note about X is about both hits: neither analyst reads it; the admin reads all.
    let res = triage(&mut admin, &hash_x, "triaged", "admin: reviewed both");
    assert_eq!(res.status, 303);
    assert!(!ana.get(&hash_x).body.contains("admin: reviewed both"));
    assert!(!bob.get(&hash_x).body.contains("admin: reviewed both"));
    let page = admin.get(&hash_x);
    page.assert_contains("admin: reviewed both")
        .assert_contains("ana: signed installer");
    // For ana, X is still her false positive (her latest mark she may read).
    ana.get(&hash_x).assert_contains("triage-false-positive");

    // Hide triaged: X leaves ana's report and its CSV; the link keeps the filter in the URL.
    let report = ana.get("/threats/top/hash");
    report.assert_contains("hide_triaged=1");
    assert_eq!(csv_rows(&mut ana, "/threats/top/hash?format=csv").len(), 1);
    assert!(csv_rows(&mut ana, "/threats/top/hash?format=csv&hide_triaged=1").is_empty());
    let hidden = ana.get("/threats/top/hash?hide_triaged=1");
    assert!(!hidden.body.contains(MD5_X));
    hidden.assert_contains("show them");
    // The report's own links (more rows) keep the filter of the address bar; "show them" says so.
    let more = ana.get_htmx_from(
        "/threats/top/hash?limit=20",
        "/threats/top/hash?hide_triaged=1",
    );
    assert!(!more.body.contains(MD5_X));
    let shown = ana.get_htmx_from(
        "/threats/top/hash?hide_triaged=0",
        "/threats/top/hash?hide_triaged=1",
    );
    shown.assert_contains(MD5_X);
    // bob's escalated Y stays (it still needs someone); X stays (he read no mark of it).
    let rows = csv_rows(&mut bob, "/threats/top/hash?format=csv&hide_triaged=1");
    assert_eq!(rows.len(), 2, "{rows:?}");

    // Nor in the audit log: analysts see their own marks there only.
    assert!(!bob.get("/audit").body.contains("ana: signed installer"));
    ana.get("/audit").assert_contains("ana: signed installer");

    // Sessions: bob triages s1 (he sees its sig-b hit); ana does not read it.
    let res = triage(
        &mut bob,
        "/threats/sessions/s1",
        "triaged",
        "bob: session reviewed",
    );
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/threats/sessions/s1"));
    bob.get("/threats/sessions/s1")
        .assert_contains("bob: session reviewed");
    assert!(!ana
        .get("/threats/sessions/s1")
        .body
        .contains("bob: session reviewed"));
    assert!(bob.get("/threats/sessions").body.contains("triage-triaged"));
    assert!(!ana.get("/threats/sessions").body.contains("triage-triaged"));
    let hidden = bob.get("/threats/sessions?hide_triaged=1");
    assert!(
        !hidden.body.contains("/threats/sessions/s1\""),
        "{}",
        hidden.body
    );
    hidden.assert_contains("/threats/sessions/s2\"");
    assert!(ana
        .get("/threats/sessions?hide_triaged=1")
        .body
        .contains("/threats/sessions/s1\""));
    // s2 has no hit ana sees: no form for her, and a post is refused.
    ana.get("/threats/sessions/s2")
        .assert_contains("once it has hits in the signatures you are cleared for");
    let res = post_triage(&mut ana, ["session", "s2", "triaged", "x"]);
    assert_eq!(res.status, 422);

    // The read model rebuilds and verifies like every projection.
    let store = &w.app.state.store;
    let projection = store.projections().get("threat_triage").unwrap().clone();
    let mut conn = w.app.db.connect();
    assert!(
        shadow::verify(&mut conn, None, projection.as_ref(), false, 100, |_| {})
            .unwrap()
            .is_empty()
    );
    shadow::rebuild(&mut conn, None, projection.as_ref(), false, 100, |_| {}).unwrap();
    let rows: i64 = heyboss::schema::threat_triage::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(rows, 4);
    admin.get(&hash_x).assert_contains("admin: reviewed both");
}

#[test]
fn triage_form_errors_re_render_with_the_message_and_record_nothing() {
    let w = world();
    let mut ana = signed_in(&w.app, "ana");
    let hash_x = format!("/threats/hashes/{MD5_X}");

    // Without JavaScript: the form's page again, with the message and what was typed.
    let res = triage(&mut ana, &hash_x, "escalated", "   ");
    assert_eq!(res.status, 422);
    res.assert_contains("Write a note");
    let res = triage(&mut ana, &hash_x, "ignored", "kept text");
    assert_eq!(res.status, 422);
    res.assert_contains("Choose a status")
        .assert_contains("kept text");
    // Through HTMX: the panel alone.
    ana.get(&hash_x);
    let res = ana.post_htmx(
        "/threats/triage",
        &fields(["hash", MD5_X, "triaged", "bad \u{202E} note"]),
    );
    assert_eq!(res.status, 422);
    assert!(
        res.body
            .trim_start()
            .starts_with("<section class=\"card\" id=\"triage\">"),
        "{}",
        res.body
    );
    res.assert_contains("The note");
    let res = post_triage(&mut ana, ["file", "x", "triaged", "n"]);
    assert_eq!(res.status, 422);
    res.assert_contains("a hash or a session");
    assert_eq!(count_events(&w.app, "ThreatTriaged"), 0);

    // A success through HTMX: the panel with the notice, and the event named for other fragments.
    let res = ana.post_htmx(
        "/threats/triage",
        &fields(["hash", MD5_X, "escalated", "ana: needs IR"]),
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("hx-trigger"), Some("ThreatTriaged"));
    res.assert_contains("ana: needs IR")
        .assert_contains("triage-escalated");

    // Session and CSRF are checked; other roles are refused.
    let res = ana.post_without_csrf("/threats/triage", &fields(["hash", MD5_X, "triaged", "n"]));
    assert_eq!(res.status, 403);
    let mut stan = signed_in(&w.app, "stan");
    let res = post_triage(&mut stan, ["hash", MD5_X, "triaged", "n"]);
    assert_eq!(res.status, 403);
    let mut anonymous = Client::new(&w.app);
    anonymous.get("/login");
    let res = post_triage(&mut anonymous, ["hash", MD5_X, "triaged", "n"]);
    assert!(res.status == 303 || res.status == 401, "{}", res.status);
    assert_eq!(count_events(&w.app, "ThreatTriaged"), 1);
}

#[test]
fn a_triage_with_two_mistakes_shows_both_beside_their_fields() {
    let w = world();
    let mut ana = signed_in(&w.app, "ana");
    let hash_x = format!("/threats/hashes/{MD5_X}");
    let res = triage(&mut ana, &hash_x, "ignored", "  ");
    assert_eq!(res.status, 422, "{}", res.body);
    res.assert_contains("Nothing was marked: correct the 2 fields marked below.");
    for (id, message) in [
        ("triage-status", "Choose a status"),
        ("triage-note", "Write a note"),
    ] {
        res.assert_contains(&format!(
            "<p class=\"field-error\" id=\"{id}-error\">{message}"
        ))
        .assert_contains(&format!("aria-describedby=\"{id}-error\""))
        .assert_contains(&format!("<li><a href=\"#{id}\">"));
    }
    assert_eq!(count_events(&w.app, "ThreatTriaged"), 0);
}

/// The value of `attr="..."` on the element with `id="id"`.
fn attr_of(body: &str, id: &str, attr: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let tag_end = at + body[at..].find('>')?;
    let tag_start = body[..at].rfind('<')?;
    let tag = &body[tag_start..tag_end];
    let marker = format!("{attr}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&amp;", "&").replace("&#x2F;", "/"))
}

#[test]
fn live_reports_poll_only_when_asked_and_count_new_hits_in_the_viewers_scope() {
    let w = world();
    let mut ana = signed_in(&w.app, "ana");
    let mut bob = signed_in(&w.app, "bob");

    // Off by default: no polling.
    let page = ana.get("/threats/top/hash");
    assert!(!page.body.contains("hx-trigger=\"every"));
    page.assert_contains("Turn auto-refresh on");
    // Turned on: the report polls its own address, which carries where the page was opened.
    let page = ana.get("/threats/top/file-type?live=1");
    page.assert_contains("hx-trigger=\"every 5s\"")
        .assert_contains("0</strong> new hits since you opened this page");
    let ana_poll = attr_of(&page.body, "live", "hx-get").unwrap();
    assert!(
        ana_poll.starts_with("/threats/top/file-type?live=1&since="),
        "{ana_poll}"
    );
    let bob_poll = attr_of(&bob.get("/threats/top/hash?live=1").body, "live", "hx-get").unwrap();

    // New hits: one of sig-a, two of sig-b.
    let mut events = vec![session("s3")];
    events.extend(w.file(
        "s3",
        "z1",
        "cccccccccccccccccccccccccccccccc",
        &["sig-a", "sig-b"],
    ));
    events.extend(w.file("s3", "z2", "dddddddddddddddddddddddddddddddd", &["sig-b"]));
    w.post(events);

    let poll = ana.get_htmx(&ana_poll);
    assert_eq!(poll.status, 200);
    assert!(
        poll.body.starts_with("<div id=\"report\">"),
        "{}",
        poll.body
    );
    poll.assert_contains("1</strong> new hit since you opened this page");
    assert_eq!(attr_of(&poll.body, "live", "hx-get").unwrap(), ana_poll);
    bob.get_htmx(&bob_poll)
        .assert_contains("2</strong> new hits since you opened this page");
    // The page's own form (no `live` in its request) keeps the toggle the address bar holds.
    let res = ana.get_htmx_from("/threats/top/file-type?limit=5", &ana_poll);
    res.assert_contains("1</strong> new hit since");
    // Turned off: no polling any more.
    let off = ana.get_htmx(
        &attr_of(&poll.body, "live", "hx-get")
            .unwrap()
            .replace("live=1", "live=0"),
    );
    assert!(!off.body.contains("hx-trigger=\"every"));
}

fn rescore(file: &str, session: &str, signature: &str, score: i32) -> Value {
    ev(
        "FileRescored",
        json!({"file_id": file, "session_id": session, "integration": "av", "new_score": score, "signature": signature}),
    )
}

#[test]
fn a_signatures_page_tells_its_revisions_and_charts_its_score() {
    let w = world();
    let account =
        heyboss::accounts::NewAccount::parse("ada", "Ada Admin", "", "admin", PASSWORD).unwrap();
    let mut conn = w.app.state.pool.get().unwrap();
    heyboss::accounts::service::register(
        &mut conn,
        &w.app.state.store,
        Metadata::new(Actor::Cli),
        account,
        |_, _| Ok(()),
    )
    .unwrap();
    drop(conn);
    let mut ada = signed_in(&w.app, "ada");
    ada.get("/admin/signatures");
    for (score, group) in [("70", "alpha"), ("20", "alpha")] {
        let res = ada.post(
            "/admin/signatures",
            &[
                ("name", "sig-a"),
                ("group", group),
                ("default_score", score),
            ],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let mut ana = signed_in(&w.app, "ana");
    let page = ana.get("/threats/signatures/sig-a");
    assert_eq!(page.status, 200);
    page.assert_contains("Created in group alpha with score 50 by the command line,")
        .assert_contains("Score raised from 50 to 70 by Ada Admin,")
        .assert_contains("Score lowered from 70 to 20 by Ada Admin,")
        .assert_contains("<svg class=\"score-chart\"")
        .assert_contains("class=\"score-line\"");
    // Newest first; no inline style anywhere (the CSP allows none).
    let lowered = page.body.find("Score lowered").unwrap();
    let raised = page.body.find("Score raised").unwrap();
    assert!(lowered < raised);
    assert!(!page.body.contains("style="));
    // Three scores: three points, the line stepping down to 20 (y = 152 - 140 * 20 / 100 = 124).
    assert_eq!(
        page.body.matches("<circle class=\"score-point\"").count(),
        3
    );
    assert!(page.body.contains("V124 H350"), "{}", page.body);
    // bob is not cleared for sig-a's group: no page.
    let mut bob = signed_in(&w.app, "bob");
    assert_eq!(bob.get("/threats/signatures/sig-a").status, 404);
}

#[test]
fn the_rescans_report_shows_what_moved_in_the_viewers_scope_paged() {
    let w = world();
    // x: sig-a 60 -> 90 (ana's); y: sig-b 60 -> 30 (bob's); x: sig-b 60 -> 70 -> 60 (moved back).
    w.post(vec![
        rescore("x", "s1", "sig-a", 80),
        rescore("x", "s1", "sig-a", 90),
        rescore("y", "s2", "sig-b", 30),
        rescore("x", "s1", "sig-b", 70),
        rescore("x", "s1", "sig-b", 60),
    ]);
    let mut ana = signed_in(&w.app, "ana");
    let mut bob = signed_in(&w.app, "bob");
    let page = ana.get("/threats/rescans");
    assert_eq!(page.status, 200);
    page.assert_contains("1 hit whose score a rescan moved")
        .assert_contains("raised from 60 to <strong>90</strong>")
        .assert_contains("x.exe");
    assert!(!page.body.contains("y.exe"));
    let page = bob.get("/threats/rescans?window=1h");
    page.assert_contains("1 hit whose score a rescan moved")
        .assert_contains("lowered from 60 to <strong>30</strong>")
        .assert_contains("y.exe");
    assert!(
        !page.body.contains("x.exe"),
        "the moved-back rescan is not a change"
    );
    // The same row as CSV.
    let rows = csv_rows(&mut bob, "/threats/rescans?window=1h&format=csv");
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].starts_with(&format!("{MD5_Y},y.exe,y,s2,sig-b,av,60,30,1,")),
        "{rows:?}"
    );
    // A range with nothing in it, and a bad one.
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M");
    ana.get(&format!("/threats/rescans?from={future}"))
        .assert_contains("No rescan moved a score you may see in this range.");
    let res = ana.get("/threats/rescans?window=2w");
    assert_eq!(res.status, 400);
    res.assert_contains("not one of 1h, 24h, 7d, 30d, all");

    // 55 more of ana's files rescanned: two pages for her, nothing more for bob.
    let mut events = vec![session("s9")];
    for i in 0..55 {
        events.extend(w.file("s9", &format!("f{i}"), &format!("{i:032x}"), &["sig-a"]));
        events.push(rescore(&format!("f{i}"), "s9", "sig-a", 99));
    }
    w.post(events);
    let page = ana.get("/threats/rescans");
    page.assert_contains("56 hits whose score a rescan moved")
        .assert_contains("Page 1 of 2");
    assert_eq!(page.body.matches("raised from").count(), 50);
    let page = ana.get_htmx("/threats/rescans?page=2");
    assert!(page.body.starts_with("<div id=\"rescans\">"));
    assert_eq!(page.body.matches("raised from").count(), 6);
    page.assert_contains("Page 2 of 2");
    bob.get("/threats/rescans")
        .assert_contains("1 hit whose score a rescan moved");
}

#[test]
fn hidden_triaged_rows_count_in_no_total_and_pages_do_not_repeat_rows() {
    const MD5_Z: &str = "cccccccccccccccccccccccccccccccc";
    let w = world();
    w.post(w.file("s2", "z", MD5_Z, &["sig-b"]));
    let mut admin = signed_in(&w.app, "admin");
    // The admin sees X (2 hits), Y and Z (1 each), and marks X and session s1 triaged.
    let res = triage(
        &mut admin,
        &format!("/threats/hashes/{MD5_X}"),
        "triaged",
        "done",
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let res = triage(&mut admin, "/threats/sessions/s1", "triaged", "done");
    assert_eq!(res.status, 303, "{}", res.body);

    // Every way a report is read: the rankings (all time), the buckets (a window), the hits (a
    // filter). One row a page: Y and Z on two pages, X on none, and the totals count two rows.
    for range in ["window=all", "window=24h", "window=all&file_type=pe"] {
        let shown = admin.get_counted(&format!("/threats/top/hash?limit=1&{range}"));
        let text = common::text_of(&shown.body);
        assert!(text.contains("Rows 1–1 of 3"), "{range}: {text}");
        let mut seen = Vec::new();
        for page in 1..=2 {
            let res = admin.get_counted(&format!(
                "/threats/top/hash?limit=1&{range}&hide_triaged=1&page={page}"
            ));
            assert_eq!(res.status, 200, "{range}");
            let text = common::text_of(&res.body);
            assert!(
                text.contains(&format!("Rows {page}–{page} of 2")),
                "{range} page {page}: {text}"
            );
            assert!(
                text.contains(&format!("Page {page} of 2")),
                "{range}: {text}"
            );
            assert!(!res.body.contains(MD5_X), "{range} page {page}");
            // The histogram counts the hits of the rows shown: Y's and Z's.
            assert!(text.contains("2 visible hits"), "{range}: {text}");
            seen.extend(
                [MD5_Y, MD5_Z]
                    .into_iter()
                    .filter(|m| res.body.contains(&format!("/threats/hashes/{m}\""))),
            );
        }
        seen.sort();
        assert_eq!(seen, [MD5_Y, MD5_Z], "{range}: each row on one page");
    }

    // The sessions list: s1 hidden, and its total is of s2 alone.
    let text = common::text_of(&admin.get("/threats/sessions?hide_triaged=1").body);
    assert!(text.contains("Rows 1–1 of 1"), "{text}");
    let text = common::text_of(&admin.get("/threats/sessions").body);
    assert!(text.contains("Rows 1–2 of 2"), "{text}");
}
