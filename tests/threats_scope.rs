//! Scope, over real HTTP with two analysts of different clearances: no invisible hit in any row,
//! count, chart, CSV line, detail page or fragment; a revoked clearance counts on the next
//! request; a signature moved to another group takes its hits along. Each test runs with the
//! reports inline and delayed (`threats_support`): the same answers once the lag is zero, and
//! an admin's move or revocation shows on the next request in both.

mod common;
mod threats_support;

use common::{create_user, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::{json, Value};
use threats_support::Reports;

const MD5_X: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const MD5_Y: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

fn post(app: &TestApp, token: &str, events: Vec<Value>) {
    let r = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
}

struct World {
    app: TestApp,
    token: String,
    reports: Reports,
}

impl World {
    /// Post a batch as the sensor, then wait until the reports have applied it (when a
    /// subscriber applies them).
    fn post(&self, events: Vec<Value>) {
        post(&self.app, &self.token, events);
        if self.app.state.settings.run_subscribers {
            self.reports.settle(&self.app);
        }
    }
}

/// sig-a (group alpha) and sig-b (group beta). File x (md5 X, pe, tcp session s1 started now) is
/// hit by sig-a (90) and sig-b (40); file y (md5 Y, pdf, udp session s2 started 10 days ago) by
/// sig-b (70) only. ana holds alpha, bob holds beta.
fn world(reports: Reports) -> World {
    world_with(reports, |_| {})
}

fn world_with(reports: Reports, configure: impl FnOnce(&mut heyboss::web::Settings)) -> World {
    let app = TestApp::spawn_with(|s| {
        reports.configure(s);
        configure(s);
    });
    create_user(&app, "admin", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bob", "analyst", PASSWORD);
    create_user(&app, "stan", "staff", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    service::set_signature(
        &mut conn,
        s,
        &ctx,
        "sig-a",
        "alpha",
        Some(50),
        Some("rule a"),
    )
    .unwrap();
    service::set_signature(&mut conn, s, &ctx, "sig-b", "beta", None, None).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
    let (_, token) = service::create_sensor(&mut conn, s, &ctx, "edge").unwrap();
    drop(conn);
    let w = World {
        app,
        token,
        reports,
    };
    let old = (chrono::Utc::now() - chrono::Duration::days(10)).to_rfc3339();
    let now = chrono::Utc::now().to_rfc3339();
    w.post(vec![
            ev(
                "SessionDiscovered",
                json!({"session_id": "s1", "start_time": now, "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 80}),
            ),
            ev(
                "SessionDiscovered",
                json!({"session_id": "s2", "start_time": old, "protocol": "udp", "source_ip": "10.0.0.3", "destination_ip": "10.0.0.4", "source_port": 1, "destination_port": 53}),
            ),
            ev(
                "FileDiscovered",
                json!({"file_id": "x", "session_id": "s1", "md5": MD5_X, "filename": "x.exe", "file_type": "pe", "size_bytes": 1}),
            ),
            ev(
                "FileDiscovered",
                json!({"file_id": "y", "session_id": "s2", "md5": MD5_Y, "filename": "secret-y.pdf", "file_type": "pdf", "size_bytes": 1}),
            ),
            ev(
                "FileScored",
                json!({"file_id": "x", "session_id": "s1", "integration": "av", "score": 90, "signature": "sig-a"}),
            ),
            ev(
                "FileScored",
                json!({"file_id": "x", "session_id": "s1", "integration": "yara", "score": 40, "signature": "sig-b"}),
            ),
            ev(
                "FileScored",
                json!({"file_id": "y", "session_id": "s2", "integration": "av", "score": 70, "signature": "sig-b"}),
        ),
    ]);
    w
}

fn signed_in(app: &TestApp, user: &str) -> Client {
    let mut c = Client::new(app);
    c.login(user, PASSWORD);
    c
}

/// The CSV body without its header, as lines with the last_seen column dropped for the hash report.
fn csv(c: &mut Client, path: &str) -> Vec<String> {
    let res = c.get(path);
    assert_eq!(res.status, 200, "{path}: {}", res.body);
    assert!(res.header("content-type").unwrap().starts_with("text/csv"));
    let mut lines = res.body.lines().map(str::to_owned);
    lines.next();
    lines
        .map(|l| {
            if path.contains("/hash") {
                l.rsplit_once(',').unwrap().0.to_owned()
            } else {
                l
            }
        })
        .collect()
}

fn each_analyst_sees_only_hits_of_their_groups_everywhere(reports: Reports) {
    let w = world(reports);
    let mut ana = signed_in(&w.app, "ana");
    let mut bo = signed_in(&w.app, "bob");

    // CSV headers, exactly.
    let header = |c: &mut Client, p: &str| c.get(p).body.lines().next().unwrap().to_owned();
    assert_eq!(
        header(&mut ana, "/threats/top/hash?format=csv"),
        "md5,filename,file_type,hits,max_score,signatures,last_seen"
    );
    assert_eq!(
        header(&mut ana, "/threats/top/file-type?format=csv"),
        "file_type,hits,max_score"
    );
    assert_eq!(
        header(&mut ana, "/threats/top/ip-pair?format=csv"),
        "source_ip,destination_ip,hits,max_score"
    );
    assert_eq!(
        header(&mut ana, "/threats/top/protocol?format=csv"),
        "protocol,hits,max_score"
    );

    // ana (alpha): only sig-a's hit on x.
    assert_eq!(
        csv(&mut ana, "/threats/top/hash?format=csv"),
        vec![format!("{MD5_X},x.exe,pe,1,90,sig-a")]
    );
    assert_eq!(
        csv(&mut ana, "/threats/top/file-type?format=csv"),
        vec!["pe,1,90"]
    );
    assert_eq!(
        csv(&mut ana, "/threats/top/ip-pair?format=csv"),
        vec!["10.0.0.1,10.0.0.2,1,90"]
    );
    assert_eq!(
        csv(&mut ana, "/threats/top/protocol?format=csv"),
        vec!["tcp,1,90"]
    );
    // bo (beta): y (70) ranks before x (40) on equal counts; no sig-a anywhere.
    assert_eq!(
        csv(&mut bo, "/threats/top/hash?format=csv"),
        vec![
            format!("{MD5_Y},secret-y.pdf,pdf,1,70,sig-b"),
            format!("{MD5_X},x.exe,pe,1,40,sig-b")
        ]
    );
    assert_eq!(
        csv(&mut bo, "/threats/top/protocol?format=csv"),
        vec!["udp,1,70", "tcp,1,40"]
    );

    // Pages, charts and fragments.
    for path in [
        "/threats/top/hash",
        "/threats/top/file-type",
        "/threats/top/ip-pair",
        "/threats/top/protocol",
    ] {
        for page in [ana.get(path), ana.get_htmx(path)] {
            assert_eq!(page.status, 200);
            assert!(
                !page.body.contains("sig-b")
                    && !page.body.contains(MD5_Y)
                    && !page.body.contains("secret-y"),
                "{path}: {}",
                page.body
            );
            assert!(
                !page.body.contains("udp") && !page.body.contains("pdf"),
                "{path}"
            );
            assert!(page.body.contains("<svg"), "{path} has a chart");
        }
    }
    let fragment = ana.get_htmx("/threats/top/hash?window=all");
    assert!(fragment.body.starts_with("<div id=\"report\">"));
    assert!(!fragment.body.contains("<html"));

    // Drill-downs and detail pages.
    let hits = ana.get(&format!("/threats/top/hash/hits?key={MD5_X}"));
    hits.assert_contains("sig-a").assert_contains(">90<");
    assert!(!hits.body.contains("sig-b"));
    let hits_csv = ana.get(&format!("/threats/top/hash/hits?key={MD5_X}&format=csv"));
    assert_eq!(hits_csv.body.lines().count(), 2);
    assert!(!ana
        .get(&format!("/threats/top/hash/hits?key={MD5_Y}"))
        .body
        .contains("sig-b"));
    let ip_hits = ana.get("/threats/top/ip-pair/hits?key=10.0.0.1%2010.0.0.2");
    ip_hits.assert_contains("sig-a");
    let file = ana.get("/threats/files/x");
    file.assert_contains("sig-a").assert_contains("scored 90");
    assert!(!file.body.contains("sig-b"));
    assert!(!ana.get("/threats/files/y").body.contains("sig-b"));
    let session = ana.get("/threats/sessions/s1");
    session.assert_contains("x.exe").assert_contains("sig-a");
    assert!(!session.body.contains("sig-b"));
    assert_eq!(ana.get("/threats/signatures/sig-b").status, 404);
    ana.get("/threats/signatures/sig-a")
        .assert_contains("<strong>Signature created in group");
    assert_eq!(bo.get("/threats/signatures/sig-a").status, 404);

    // Windows: y's session started 10 days ago.
    assert_eq!(
        csv(&mut bo, "/threats/top/hash?format=csv&window=7d"),
        vec![format!("{MD5_X},x.exe,pe,1,40,sig-b")]
    );
    assert_eq!(
        csv(&mut bo, "/threats/top/protocol?format=csv&window=30d"),
        vec!["udp,1,70", "tcp,1,40"]
    );
    assert_eq!(bo.get("/threats/top/hash?window=1y").status, 400);

    // Admins see everything, other roles nothing.
    let mut admin = signed_in(&w.app, "admin");
    assert_eq!(
        csv(&mut admin, "/threats/top/protocol?format=csv"),
        vec!["tcp,2,90", "udp,1,70"]
    );
    let mut stan = signed_in(&w.app, "stan");
    assert_eq!(stan.get("/threats/top/hash").status, 403);
    assert_eq!(stan.get("/threats/top/hash?format=csv").status, 403);
    assert_eq!(stan.get("/threats/files/x").status, 403);
}

fn revoking_and_moving_take_effect_on_the_next_request(reports: Reports) {
    let w = world(reports);
    let mut ana = signed_in(&w.app, "ana");
    let mut bo = signed_in(&w.app, "bob");
    let mut admin = signed_in(&w.app, "admin");
    admin.get("/admin/signatures").assert_contains("sig-b");

    // Move sig-b from beta to alpha: its hits go with it.
    let res = admin.post(
        "/admin/signatures",
        &[
            ("name", "sig-b"),
            ("group", "alpha"),
            ("default_score", ""),
            ("rule_text", ""),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        csv(&mut ana, "/threats/top/hash?format=csv"),
        vec![
            format!("{MD5_X},x.exe,pe,2,90,sig-a;sig-b"),
            format!("{MD5_Y},secret-y.pdf,pdf,1,70,sig-b")
        ]
    );
    assert!(csv(&mut bo, "/threats/top/hash?format=csv").is_empty());
    assert!(!bo.get("/threats/top/hash").body.contains(MD5_X));
    admin
        .get("/threats/signatures/sig-b")
        .assert_contains("<strong>Signature revised: group");

    // A rescore that lowers the max recomputes it: x's max is now sig-b's 40.
    w.post(vec![ev(
        "FileRescored",
        json!({"file_id": "x", "session_id": "s1", "integration": "av", "new_score": 10, "signature": "sig-a"}),
    )]);
    assert_eq!(
        csv(&mut ana, "/threats/top/protocol?format=csv"),
        vec!["tcp,2,40", "udp,1,70"]
    );
    ana.get("/threats/files/x")
        .assert_contains("rescan: 90 → 10");

    // Revoke alpha from ana: the very next request shows nothing.
    let res = admin.post(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "alpha"),
            ("action", "revoke"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(csv(&mut ana, "/threats/top/hash?format=csv").is_empty());
    assert!(csv(&mut ana, "/threats/top/ip-pair?format=csv").is_empty());
    let page = ana.get("/threats/top/hash");
    page.assert_contains("No visible hits");
    assert!(!page.body.contains(MD5_X));
    assert!(!ana.get("/threats/files/x").body.contains("sig-a"));
    assert_eq!(ana.get("/threats/signatures/sig-a").status, 404);

    // Bad admin input re-renders with a message, changing nothing.
    let res = admin.post(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "restricted"),
            ("action", "grant"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("admins only");
    let res = admin.post(
        "/admin/signatures",
        &[
            ("name", "sig-c"),
            ("group", "no spaces"),
            ("default_score", "5"),
        ],
    );
    assert_eq!(res.status, 422);
    let res = admin.post(
        "/admin/signatures",
        &[
            ("name", "sig-c"),
            ("group", "alpha"),
            ("default_score", "500"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("out of range");
}

fn admins_register_and_revoke_sensors_in_the_ui(reports: Reports) {
    let w = world(reports);
    let mut admin = signed_in(&w.app, "admin");
    admin.get("/admin/sensors");
    let res = admin.post("/admin/sensors", &[("name", "branch-office")]);
    assert_eq!(res.status, 200);
    let marker = "<code id=\"new-token\">";
    let start = res.body.find(marker).unwrap() + marker.len();
    let token = res.body[start..start + 64].to_owned();
    post(&w.app, &token, vec![]);
    let page = admin.get("/admin/sensors");
    page.assert_contains("branch-office");
    assert!(!page.body.contains(&token), "the token is shown once");
    let id_marker = "/admin/sensors/";
    let mut ids: Vec<&str> = page
        .body
        .match_indices(id_marker)
        .map(|(i, _)| &page.body[i + id_marker.len()..i + id_marker.len() + 36])
        .collect();
    // Each revoke form names its sensor twice (action and hx-post).
    ids.dedup();
    assert_eq!(ids.len(), 2);
    for id in ids {
        assert_eq!(
            admin
                .post(
                    &format!("/admin/sensors/{id}/revoke"),
                    &[("confirm", "yes")]
                )
                .status,
            303
        );
    }
    let r = ureq::post(&w.app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({"events": []}));
    assert_eq!(r.unwrap_err().into_response().unwrap().status(), 401);
    // Analysts may not see the admin pages.
    let mut ana = signed_in(&w.app, "ana");
    assert_eq!(ana.get("/admin/sensors").status, 403);
    assert_eq!(ana.get("/admin/signatures").status, 403);
}

fn an_analysts_audit_log_hides_signatures_and_hits_outside_their_clearances(reports: Reports) {
    let w = world(reports);
    w.post(vec![ev(
        "FileRescored",
        json!({"file_id": "x", "session_id": "s1", "integration": "yara", "new_score": 45, "signature": "sig-b"}),
    )]);
    let mut ana = signed_in(&w.app, "ana");
    // Signature histories: only the cleared group's.
    let page = ana.get("/audit?stream_type=signature&format=csv");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("sig-a"), "{}", page.body);
    assert!(!page.body.contains("sig-b"), "{}", page.body);
    // Hits: only those of visible signatures; the sessions themselves are not hits.
    let hits = ana.get("/audit?event_type=FileScored&format=csv").body;
    assert!(hits.contains("sig-a") && !hits.contains("sig-b"), "{hits}");
    let rescores = ana.get("/audit?event_type=FileRescored&format=csv").body;
    assert!(!rescores.contains("sig-b"), "{rescores}");
    let sessions = ana
        .get("/audit?event_type=SessionDiscovered&format=csv")
        .body;
    assert!(
        sessions.contains("s1") && sessions.contains("s2"),
        "{sessions}"
    );
    // History tab of a signature outside the clearances: nothing to see.
    assert_eq!(ana.get("/history/signature/sig-b").status, 404);
    assert_eq!(ana.get("/history/signature/sig-a").status, 200);
    // Bob (beta) sees the other half; a student none of it; the admin all.
    let bob_hits = signed_in(&w.app, "bob")
        .get("/audit?event_type=FileScored&format=csv")
        .body;
    assert!(
        bob_hits.contains("sig-b") && !bob_hits.contains("sig-a"),
        "{bob_hits}"
    );
    let bob_rescores = signed_in(&w.app, "bob")
        .get("/audit?event_type=FileRescored&format=csv")
        .body;
    assert!(bob_rescores.contains("sig-b"), "{bob_rescores}");
    let admin_hits = signed_in(&w.app, "admin")
        .get("/audit?event_type=FileScored&format=csv")
        .body;
    assert!(admin_hits.contains("sig-a") && admin_hits.contains("sig-b"));
    let stan = signed_in(&w.app, "stan")
        .get("/audit?stream_type=signature&format=csv")
        .body;
    assert!(!stan.contains("sig-a") && !stan.contains("sig-b"), "{stan}");
}

/// A session's threat contributor that names a signature outside a viewer's clearances is shown as
/// "restricted" on the sessions list, its HTMX fragment, its CSV and the session page (and its
/// SessionScored event is left out of the viewer's audit log); other contributors show as sent.
fn a_contributor_naming_an_invisible_signature_is_restricted_everywhere(reports: Reports) {
    let w = world(reports);
    let now = chrono::Utc::now().to_rfc3339();
    w.post(vec![
            ev(
                "SessionDiscovered",
                json!({"session_id": "s3", "start_time": now, "protocol": "smtp", "source_ip": "10.0.0.5", "destination_ip": "10.0.0.6", "source_port": 1, "destination_port": 25}),
            ),
            ev(
                "SessionScored",
                json!({"session_id": "s1", "threat_contributor": "sig-a", "score": 90}),
            ),
            // Another case is still the name of sig-b.
            ev(
                "SessionScored",
                json!({"session_id": "s2", "threat_contributor": "SIG-B", "score": 70}),
            ),
            ev(
                "SessionScored",
                json!({"session_id": "s3", "threat_contributor": "clamav", "score": 20}),
            ),
    ]);
    let mut ana = signed_in(&w.app, "ana");
    let mut bo = signed_in(&w.app, "bob");
    let mut admin = signed_in(&w.app, "admin");
    let row = |body: &str, session: &str| -> String {
        let at = body
            .find(&format!(">{session}</a>"))
            .unwrap_or_else(|| panic!("no row for {session}:\n{body}"));
        let end = body[at..].find("</tr>").unwrap() + at;
        body[at..end].to_owned()
    };
    let cells = |c: &mut Client, session: &str| -> (String, String, String, String) {
        let page = c.get("/threats/sessions");
        assert_eq!(page.status, 200);
        let fragment = c.get_htmx("/threats/sessions?protocol=&ip=&min_score=");
        assert_eq!(fragment.status, 200);
        assert!(!fragment.body.contains("<html"), "a fragment");
        let csv = c.get("/threats/sessions?format=csv").body;
        let line = csv
            .lines()
            .find(|l| l.starts_with(&format!("{session},")))
            .unwrap()
            .rsplit(',')
            .nth(1)
            .unwrap()
            .to_owned();
        let detail = c.get(&format!("/threats/sessions/{session}"));
        assert_eq!(detail.status, 200);
        let at = detail.body.find("<dt>Latest score</dt>").unwrap();
        let end = detail.body[at..].find("</dd>").unwrap() + at;
        (
            row(&page.body, session),
            row(&fragment.body, session),
            line,
            detail.body[at..end].to_owned(),
        )
    };
    let shows = |seen: (String, String, String, String), what: &str, hidden: &str| {
        for (i, place) in [&seen.0, &seen.1, &seen.3].into_iter().enumerate() {
            assert!(place.contains(what), "#{i} lacks {what}: {place}");
            assert!(
                hidden.is_empty() || !place.contains(hidden),
                "#{i} shows {hidden}: {place}"
            );
        }
        assert_eq!(seen.2, what, "the CSV's threat_contributor");
    };

    // ana holds alpha: sig-a is hers to see, sig-b is not; clamav names no signature.
    shows(cells(&mut ana, "s1"), "sig-a", "");
    shows(cells(&mut ana, "s2"), "restricted", "SIG-B");
    shows(cells(&mut ana, "s3"), "clamav", "");
    // bob holds beta: the other way round.
    shows(cells(&mut bo, "s1"), "restricted", "sig-a");
    shows(cells(&mut bo, "s2"), "SIG-B", "");
    shows(cells(&mut bo, "s3"), "clamav", "");
    // Admins see every contributor.
    shows(cells(&mut admin, "s1"), "sig-a", "");
    shows(cells(&mut admin, "s2"), "SIG-B", "");

    // The session's events in the audit log: the scoring by an invisible signature is left out.
    let audit = ana.get("/audit?event_type=SessionScored&format=csv").body;
    assert!(
        audit.contains("sig-a") && audit.contains("clamav"),
        "{audit}"
    );
    assert!(!audit.contains("SIG-B"), "{audit}");
    let history = bo.get("/history/threat_session/s1");
    assert_eq!(history.status, 200, "{}", history.body);
    history.assert_contains("<strong>Session discovered: ");
    assert!(!history.body.contains("sig-a"), "{}", history.body);
    signed_in(&w.app, "ana")
        .get("/history/threat_session/s1")
        .assert_contains("<strong>Session scored ");

    // Moving sig-b into alpha lets ana see it on the next request; bob no longer does.
    admin.get("/admin/signatures");
    let res = admin.post(
        "/admin/signatures",
        &[("name", "sig-b"), ("group", "alpha"), ("default_score", "")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    shows(cells(&mut ana, "s2"), "SIG-B", "");
    shows(cells(&mut bo, "s2"), "restricted", "SIG-B");
}

fn events_in_log(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.state.pool.get().unwrap();
    heyboss::schema::events::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

#[track_caller]
fn assert_fragment(res: &common::Response, id: &str) {
    assert!(
        !res.body.contains("<html")
            && res
                .body
                .trim_start()
                .starts_with(&format!("<div id=\"{id}\"")),
        "expected the #{id} fragment, status {}:\n{}",
        res.status,
        res.body
    );
}

/// The admin forms of signatures, clearances and sensors through HTMX: each answer is the updated
/// fragment (with a notice and an HX-Trigger naming the event); bad input re-renders the fragment
/// with the message and a 422, changing nothing; a refused command goes to #messages.
fn admin_forms_swap_fragments_through_htmx(reports: Reports) {
    let w = world(reports);
    let app = &w.app;
    let mut admin = signed_in(app, "admin");

    // The pages carry the HTMX attributes and the token, and work as plain forms too.
    let page = admin.get("/admin/signatures");
    for form in [
        "/admin/signatures",
        "/admin/clearances",
        "/admin/signatures/sig-a/retire",
    ] {
        page.assert_contains(&format!("hx-post=\"{form}\""));
    }
    page.assert_contains("hx-target=\"#admin-signatures\"");
    page.assert_contains("X-CSRF-Token");

    // Create a signature.
    let before = events_in_log(app);
    let res = admin.post_htmx(
        "/admin/signatures",
        &[
            ("name", "sig-c"),
            ("group", "gamma"),
            ("default_score", "30"),
            ("rule_text", "r"),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_fragment(&res, "admin-signatures");
    res.assert_contains("Signature sig-c saved.");
    res.assert_contains("/threats/signatures/sig-c");
    assert_eq!(res.header("HX-Trigger"), Some("SignatureCreated"));
    assert_eq!(events_in_log(app), before + 1);

    // Bad input: the fragment again, with the message and the typed values, and no event.
    let before = events_in_log(app);
    for (fields, message) in [
        (
            vec![
                ("name", "sig-d"),
                ("group", "no spaces"),
                ("default_score", "5"),
            ],
            "group",
        ),
        (
            vec![
                ("name", "sig-d"),
                ("group", "gamma"),
                ("default_score", "500"),
            ],
            "out of range",
        ),
        (
            vec![
                ("name", "sig-d"),
                ("group", "gamma"),
                ("default_score", "lots"),
            ],
            "The default score is a number from 0 to 100.",
        ),
    ] {
        let res = admin.post_htmx("/admin/signatures", &fields);
        assert_eq!(res.status, 422, "{}", res.body);
        assert_fragment(&res, "admin-signatures");
        res.assert_contains(message);
        res.assert_contains("value=\"sig-d\"");
        assert!(res.header("HX-Trigger").is_none());
    }
    assert_eq!(events_in_log(app), before);

    // Grant and revoke a clearance.
    let res = admin.post_htmx(
        "/admin/clearances",
        &[("username", "ana"), ("group", "gamma"), ("action", "grant")],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_fragment(&res, "admin-signatures");
    res.assert_contains("Clearance gamma granted to ana.");
    assert_eq!(res.header("HX-Trigger"), Some("ClearanceGranted"));
    let before = events_in_log(app);
    let res = admin.post_htmx(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "restricted"),
            ("action", "grant"),
        ],
    );
    assert_eq!(res.status, 422);
    assert_fragment(&res, "admin-signatures");
    res.assert_contains("admins only");
    // Input no form sends: the message goes to #messages.
    let res = admin.post_htmx(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "gamma"),
            ("action", "promote"),
        ],
    );
    assert_eq!(res.status, 400);
    assert_eq!(res.header("HX-Retarget"), Some("#messages"));
    res.assert_contains("action is grant or revoke");
    assert_eq!(events_in_log(app), before);
    let res = admin.post_htmx(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "gamma"),
            ("action", "revoke"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("Clearance gamma revoked from ana.");
    assert_eq!(res.header("HX-Trigger"), Some("ClearanceRevoked"));

    // Retire; retiring again is refused, shown in #messages, and changes nothing.
    let res = admin.post_htmx("/admin/signatures/sig-c/retire", &[("confirm", "yes")]);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_fragment(&res, "admin-signatures");
    res.assert_contains("Signature sig-c retired.");
    assert_eq!(res.header("HX-Trigger"), Some("SignatureRetired"));
    let before = events_in_log(app);
    let res = admin.post_htmx("/admin/signatures/sig-c/retire", &[("confirm", "yes")]);
    assert!(res.status >= 400 && res.status < 500, "{}", res.status);
    assert_eq!(res.header("HX-Retarget"), Some("#messages"));
    assert_eq!(events_in_log(app), before);

    // Sensors: register (the token is in the fragment), refuse a blank name, revoke.
    let page = admin.get("/admin/sensors");
    page.assert_contains("hx-post=\"/admin/sensors\"");
    let res = admin.post_htmx("/admin/sensors", &[("name", "branch")]);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_fragment(&res, "admin-sensors");
    res.assert_contains("<code id=\"new-token\">");
    assert_eq!(res.header("HX-Trigger"), Some("SensorRegistered"));
    let before = events_in_log(app);
    let res = admin.post_htmx("/admin/sensors", &[("name", "   ")]);
    assert_eq!(res.status, 422, "{}", res.body);
    assert_fragment(&res, "admin-sensors");
    res.assert_contains("flash-error");
    assert_eq!(events_in_log(app), before);
    let marker = "hx-post=\"/admin/sensors/";
    let at = res.body.find(marker).unwrap() + marker.len();
    let id = res.body[at..at + 36].to_owned();
    let res = admin.post_htmx(
        &format!("/admin/sensors/{id}/revoke"),
        &[("confirm", "yes")],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_fragment(&res, "admin-sensors");
    res.assert_contains("Sensor revoked");
    assert_eq!(res.header("HX-Trigger"), Some("SensorRevoked"));
    let res = admin.post_htmx(
        &format!("/admin/sensors/{}/revoke", uuid::Uuid::new_v4()),
        &[("confirm", "yes")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("no such sensor");
    assert_eq!(res.header("HX-Retarget"), Some("#messages"));

    // Without the CSRF token nothing happens.
    let before = events_in_log(app);
    let res = admin.post_without_csrf("/admin/sensors", &[("name", "sneaky")]);
    assert_eq!(res.status, 403);
    assert_eq!(events_in_log(app), before);
}

/// Delayed reports, held back (no subscriber runs; the test applies the log itself): the pages
/// say how far behind they are, and a signature move the rankings have not applied yet changes
/// what each analyst sees at once all the same (the report is computed from the hits then).
#[test]
fn delayed_reports_say_how_far_behind_and_a_pending_move_leaks_nothing() {
    use heyboss::es::subscriber::{self, ProjectionSubscriber};
    let w = world_with(Reports::Delayed, |s| s.run_subscribers = false);
    let reports = ProjectionSubscriber(
        w.app
            .state
            .store
            .projections()
            .get(threats_support::REPORTS)
            .unwrap()
            .clone(),
    );
    let catch_up = || {
        let mut conn = w.app.state.pool.get().unwrap();
        subscriber::catch_up(&mut conn, &reports, 1_000).unwrap();
    };
    let mut ana = signed_in(&w.app, "ana");
    let mut bo = signed_in(&w.app, "bob");
    let mut admin = signed_in(&w.app, "admin");
    // Nothing applied yet: the two clearances granted and the three scores are behind, and no
    // report counts them.
    ana.get("/threats/top/hash")
        .assert_contains("Reports are ")
        .assert_contains(" s / 5 events behind the sensors");
    assert!(csv(&mut ana, "/threats/top/hash?format=csv").is_empty());
    catch_up();
    assert!(!ana.get("/threats/top/hash").body.contains("behind"));
    assert_eq!(
        csv(&mut ana, "/threats/top/hash?format=csv"),
        vec![format!("{MD5_X},x.exe,pe,1,90,sig-a")]
    );

    // One more hit, not applied: counted behind, not in the report, on every report page.
    post(
        &w.app,
        &w.token,
        vec![ev(
            "FileScored",
            json!({"file_id": "y", "session_id": "s2", "integration": "yara", "score": 55, "signature": "sig-a"}),
        )],
    );
    for path in [
        "/threats/top/protocol",
        &format!("/threats/top/hash/hits?key={MD5_X}"),
        "/threats/files/y",
        "/threats/sessions/s2",
    ] {
        ana.get(path)
            .assert_contains(" / 1 events behind the sensors");
    }
    assert_eq!(
        csv(&mut ana, "/threats/top/protocol?format=csv"),
        vec!["tcp,1,90"]
    );

    // Moving sig-b into alpha waits for the reports, then says they are behind.
    admin.get("/admin/signatures");
    let res = admin.post_htmx(
        "/admin/signatures",
        &[("name", "sig-b"), ("group", "alpha"), ("default_score", "")],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("The reports are behind the sensors and will show it once they catch up.");
    // The rankings still count sig-b in beta, yet ana sees its hits and bob none of them.
    assert_eq!(
        csv(&mut ana, "/threats/top/hash?format=csv"),
        vec![
            format!("{MD5_X},x.exe,pe,2,90,sig-a;sig-b"),
            format!("{MD5_Y},secret-y.pdf,pdf,1,70,sig-b")
        ]
    );
    assert!(csv(&mut bo, "/threats/top/hash?format=csv").is_empty());
    assert!(csv(&mut bo, "/threats/top/protocol?format=csv").is_empty());

    // Caught up: no lag, and the rankings give the same rows, the new hit included.
    catch_up();
    let page = ana.get("/threats/top/protocol");
    assert!(!page.body.contains("behind"), "{}", page.body);
    assert_eq!(
        csv(&mut ana, "/threats/top/hash?format=csv"),
        vec![
            format!("{MD5_X},x.exe,pe,2,90,sig-a;sig-b"),
            format!("{MD5_Y},secret-y.pdf,pdf,2,70,sig-a;sig-b")
        ]
    );
    assert!(csv(&mut bo, "/threats/top/hash?format=csv").is_empty());
}

in_both_modes!(
    each_analyst_sees_only_hits_of_their_groups_everywhere,
    revoking_and_moving_take_effect_on_the_next_request,
    admins_register_and_revoke_sensors_in_the_ui,
    an_analysts_audit_log_hides_signatures_and_hits_outside_their_clearances,
    a_contributor_naming_an_invisible_signature_is_restricted_everywhere,
    admin_forms_swap_fragments_through_htmx,
);
