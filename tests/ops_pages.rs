//! The operations pages over HTTP: audit log (filters, scope, keyset paging, CSV, HTMX), entity
//! history, the projections page (background rebuild and verify) and /metrics.

mod common;

use std::time::Duration;

use common::{create_user, Client, PASSWORD};
use heyboss::es::store;
use heyboss::testing::TestApp;

fn positions(body: &str) -> Vec<i64> {
    body.split("<td class=\"num\">")
        .skip(1)
        .filter_map(|s| s.split('<').next()?.trim().parse().ok())
        .collect()
}

fn link(body: &str, label: &str) -> Option<String> {
    let end = body.find(label)?;
    let start = body[..end].rfind("<a href=\"")? + "<a href=\"".len();
    let href = &body[start..];
    Some(
        href[..href.find('"')?]
            .replace("&#x2F;", "/")
            .replace("&amp;", "&"),
    )
}

fn note_events(app: &TestApp, n: usize) {
    let mut conn = app.state.pool.get().unwrap();
    for i in 0..n {
        store::append(
            &mut conn,
            "note",
            &format!("n{i}"),
            0,
            &[heyboss::es::NewEvent {
                event_type: "Noted".into(),
                schema_version: 1,
                payload: serde_json::json!({ "i": i }),
            }],
            &serde_json::json!({"actor": {"kind": "system", "id": "test"}}),
        )
        .unwrap();
    }
}

#[test]
fn the_audit_log_shows_admins_everything_and_others_only_their_own() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let stu1 = create_user(&app, "stu1", "student", PASSWORD);
    let stu2 = create_user(&app, "stu2", "student", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get(&format!("/admin/accounts/{stu1}"));
    let res = admin.post(
        &format!("/admin/accounts/{stu1}/role"),
        &[("role", "staff"), ("command_id", "k1")],
    );
    assert_eq!(res.status, 303);

    let page = admin.get("/audit");
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<h1>").count(), 1);
    page.assert_contains("<td>Role changed from student to staff</td>")
        .assert_contains("<td>Account created: student</td>")
        .assert_contains("boss");
    let csv = admin.get("/audit?format=csv");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.body.starts_with(
        "position,recorded_at,stream_type,stream_id,stream_version,event_type,actor,payload\r\n"
    ));
    assert!(csv.body.contains(&stu2.to_string()));
    assert_eq!(csv.body.lines().count(), 1 + 4);

    // Filters: by type, by actor, by stream.
    let only = admin.get("/audit?event_type=RoleChanged&format=csv");
    assert_eq!(only.body.lines().count(), 2, "{}", only.body);
    let by_boss = admin.get("/audit?actor=boss&format=csv");
    assert_eq!(by_boss.body.lines().count(), 2);
    assert!(by_boss.body.contains("RoleChanged"));
    let by_cli = admin.get("/audit?actor=cli&format=csv");
    assert_eq!(by_cli.body.lines().count(), 4);
    let stream = admin.get(&format!(
        "/audit?stream_type=user&stream_id={stu2}&format=csv"
    ));
    assert_eq!(stream.body.lines().count(), 2);
    let nobody = admin.get("/audit?actor=nobody-at-all&format=csv");
    assert_eq!(nobody.body.lines().count(), 1);
    let future = admin.get("/audit?from=2999-01-01&format=csv");
    assert_eq!(future.body.lines().count(), 1);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let window = admin.get(&format!("/audit?from={today}&to={today}&format=csv"));
    assert_eq!(window.body.lines().count(), 5);

    // Bad input: a clear message, 422, the form still there.
    let bad = admin.get("/audit?from=yesterday");
    assert_eq!(bad.status, 422);
    bad.assert_contains("is not a time");
    let empty = admin.get("/audit?from=2026-02-02&to=2026-01-01");
    assert_eq!(empty.status, 422);
    empty.assert_contains("the time range is empty");

    // A student sees their own stream (registered by the CLI, role changed by the admin) only.
    let mut student = Client::new(&app);
    student.login("stu2", PASSWORD);
    let own = student.get("/audit?format=csv");
    assert_eq!(own.body.lines().count(), 2, "{}", own.body);
    assert!(own.body.contains(&stu2.to_string()));
    assert!(!own.body.contains(&stu1.to_string()));
    let mut first = Client::new(&app);
    first.login("stu1", PASSWORD);
    let own = first.get("/audit?format=csv");
    assert_eq!(own.body.lines().count(), 3, "{}", own.body);
    assert!(own.body.contains("RoleChanged"));
    assert!(!own.body.contains(&stu2.to_string()));

    // The history tab: visible to its owner and admins, 404 to others.
    let h = first.get(&format!("/history/user/{stu1}"));
    assert_eq!(h.status, 200);
    h.assert_contains("<strong>Role changed from student to staff</strong>")
        .assert_contains("by boss");
    assert!(!h.body.contains("RoleChanged"), "no stored type names");
    assert_eq!(first.get(&format!("/history/user/{stu2}")).status, 404);
    assert_eq!(admin.get(&format!("/history/user/{stu2}")).status, 200);
    let frag = admin.get_htmx(&format!("/history/user/{stu1}"));
    assert!(!frag.body.contains("<html"));
    frag.assert_contains("timeline");
}

#[test]
fn the_audit_log_pages_by_position_older_and_newer() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    note_events(&app, 120);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);

    let first = admin.get("/audit?event_type=Noted");
    let p1 = positions(&first.body);
    assert_eq!(p1.len(), 50);
    assert!(p1.windows(2).all(|w| w[0] > w[1]), "newest first");
    first.assert_contains("1–50 of 120");
    assert!(link(&first.body, "← Newer").is_none());
    let older = link(&first.body, "Older →").expect("an older link");
    assert!(older.contains("before="), "{older}");
    assert!(!older.contains("offset"));

    let second = admin.get(&older);
    let p2 = positions(&second.body);
    assert_eq!(p2.len(), 50);
    assert!(p2[0] < *p1.last().unwrap());
    second.assert_contains("51–100 of 120");
    let third = admin.get(&link(&second.body, "Older →").unwrap());
    let p3 = positions(&third.body);
    assert_eq!(p3.len(), 20);
    third.assert_contains("101–120 of 120");
    assert!(link(&third.body, "Older →").is_none());

    let back = admin.get(&link(&third.body, "← Newer").unwrap());
    assert_eq!(positions(&back.body), p2);
    back.assert_contains("51–100 of 120");

    // With HTMX only the results are swapped.
    let frag = admin.get_htmx(&older);
    assert!(frag
        .body
        .trim_start()
        .starts_with("<section id=\"audit-results\""));
    assert_eq!(positions(&frag.body), p2);
}

#[test]
fn admins_rebuild_and_verify_projections_from_the_page() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut analyst = Client::new(&app);
    analyst.login("ana", PASSWORD);
    assert_eq!(analyst.get("/admin/projections").status, 403);

    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let page = admin.get("/admin/projections");
    assert_eq!(page.status, 200);
    page.assert_contains("users")
        .assert_contains("inline")
        .assert_contains("Catch-up subscribers")
        .assert_contains("scholarships-enrollment-reaction");
    assert_eq!(
        analyst
            .post("/admin/projections/users/rebuild", &[("confirm", "yes")])
            .status,
        403
    );
    assert_eq!(
        admin
            .post("/admin/projections/nope/rebuild", &[("confirm", "yes")])
            .status,
        404
    );

    let res = admin.post("/admin/projections/users/rebuild", &[("confirm", "yes")]);
    assert_eq!(res.status, 303, "{}", res.body);
    let wait_for = |client: &mut Client, text: &str| -> String {
        for _ in 0..200 {
            let body = client.get_htmx("/admin/projections/users/progress").body;
            if body.contains(text) {
                return body;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("never saw {text:?}");
    };
    let done = wait_for(&mut admin, "rebuild done");
    assert!(done.contains("2 events replayed, 2 rows"), "{done}");

    let res = admin.post_htmx("/admin/projections/users/verify", &[]);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("HX-Trigger"), Some("ProjectionRunStarted"));
    res.assert_contains("id=\"progress-users\"");
    let done = wait_for(&mut admin, "verify done");
    assert!(done.contains("no difference from a rebuild"), "{done}");
    admin
        .get("/admin/projections")
        .assert_contains("no difference from a rebuild");
    // Without JavaScript the progress is a page of its own.
    let full = admin.get("/admin/projections/users/progress");
    assert_eq!(full.status, 200);
    full.assert_contains("<h1>Progress of users</h1>")
        .assert_contains("verify done");
    assert_eq!(admin.get("/admin/projections/nope/progress").status, 404);
    // Nobody notified the admin of anything yet.
    admin
        .get("/notifications")
        .assert_contains("No notifications.");
}

#[test]
fn metrics_count_requests_by_route_events_and_pool() {
    let app = TestApp::spawn();
    let stu = create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get(&format!("/admin/accounts/{stu}"));
    admin.get("/no/such/page");
    let m = admin.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    m.assert_contains(
        "heyboss_http_requests_total{method=\"GET\",route=\"/admin/accounts/{id}\",status=\"200\"} 1",
    )
    .assert_contains("status=\"404\"")
    .assert_contains("heyboss_http_request_duration_seconds_bucket{route=\"/admin/accounts/{id}\",le=\"+Inf\"} 1")
    .assert_contains("heyboss_events_appended_total{event_type=\"UserRegistered\"}")
    .assert_contains("heyboss_command_conflicts_total")
    .assert_contains("heyboss_db_pool_connections{state=\"idle\"}")
    .assert_contains("heyboss_subscriber_lag_events{subscriber=\"notifications\"}")
    .assert_contains(
        "heyboss_subscriber_lag_events{subscriber=\"scholarships-enrollment-reaction\"}",
    );
    assert!(
        !m.body.contains(&stu.to_string()),
        "raw paths are not labels"
    );
}
