//! Read replicas for real: the application with `HEYBOSS_REPLICA_URL` pointing at a PostgreSQL
//! streaming replica of the test server (made by `scripts/replica.sh`, which `scripts/setup.sh`
//! runs). The audit log reads the replica; a user's own write is on their next page (the read
//! waits for the replica, then goes to the primary); another user's page shows the replica's state;
//! lag is on `/metrics`; a stopped replica sends reads to the primary with no error.
//!
//! Ignored by plain `cargo test` (it needs the replica); `bash scripts/test.sh` runs it.

mod common;
mod scholarships_support;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{create_user, Client, PASSWORD};
use diesel::prelude::*;
use heyboss::testing::TestApp;

fn replica_port() -> u16 {
    std::env::var("HEYBOSS_REPLICA_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5433)
}

fn replica_script(action: &str) {
    let status = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/replica.sh"))
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/replica.sh {action}");
}

/// Whatever happens in the test, the shared replica is left replaying and running.
struct LeaveReplicaRunning(String);

impl Drop for LeaveReplicaRunning {
    fn drop(&mut self) {
        replica_script("start_if_down");
        if let Ok(mut conn) = PgConnection::establish(&self.0) {
            let _ = diesel::sql_query("SELECT pg_wal_replay_resume()").execute(&mut conn);
        }
    }
}

fn metric(client: &mut Client, line_start: &str) -> Option<f64> {
    let m = client.get("/metrics");
    m.body
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what}, within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn role_changes(client: &mut Client, target: uuid::Uuid) -> usize {
    let csv = client.get("/audit?event_type=RoleChanged&format=csv");
    assert_eq!(csv.status, 200, "{}", csv.body);
    csv.body
        .lines()
        .filter(|l| l.contains(&target.to_string()))
        .count()
}

#[test]
#[ignore = "needs the streaming replica that scripts/setup.sh makes; bash scripts/test.sh runs it"]
fn pages_read_the_replica_see_their_own_writes_and_survive_a_stopped_replica() {
    let port = replica_port();
    let probe = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(
        probe.is_ok(),
        "no read replica on port {port}: run `bash scripts/replica.sh ensure` (scripts/setup.sh does)"
    );
    let mut replica_url = String::new();
    let app = TestApp::spawn_with(|s| {
        replica_url = s.database_url.replacen(":5432/", &format!(":{port}/"), 1);
        assert_ne!(
            replica_url, s.database_url,
            "the test server is on port 5432"
        );
        s.replica_urls = vec![replica_url.clone()];
    });
    let _leave = LeaveReplicaRunning(replica_url.clone());
    // The new database reaches the replica through the WAL like everything else.
    eventually("the test database is on the replica", || {
        PgConnection::establish(&replica_url).is_ok()
    });
    let mut on_replica = PgConnection::establish(&replica_url).unwrap();

    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "auditor", "admin", PASSWORD);
    let target = create_user(&app, "stu", "student", PASSWORD);
    let mut boss = Client::new(&app);
    boss.login("boss", PASSWORD);
    let mut auditor = Client::new(&app);
    auditor.login("auditor", PASSWORD);

    // Reads of the audit log go to the replica.
    let before = metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap();
    eventually("the audit log is read on the replica", || {
        role_changes(&mut auditor, target);
        metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap() > before
    });
    assert_eq!(
        metric(&mut boss, "heyboss_replica_up{replica=").unwrap(),
        1.0
    );
    // So do the threat reports and their CSV exports.
    for page in [
        "/threats/top/hash",
        "/threats/top/protocol?format=csv",
        "/threats/sessions",
    ] {
        let served = metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap();
        let res = auditor.get(page);
        assert_eq!(res.status, 200, "{page}: {}", res.body);
        assert!(
            metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap() > served,
            "{page} is read on the replica"
        );
    }

    // And the other reports and their exports: a hash's page, the rescans report, the staff's
    // enrollment pipeline and a fund's report, each read on the replica once it has the data.
    let md5 = one_threat_hit(&app);
    let fund = one_fund(&app);
    let mut staff = Client::new(&app);
    staff.login("sam", PASSWORD);
    eventually("the replica has replayed the hit and the fund", || {
        metric(&mut boss, "heyboss_replica_lag_bytes{replica=") == Some(0.0)
    });
    for (by_staff, page) in [
        (false, format!("/threats/hashes/{md5}")),
        (false, "/threats/rescans".to_owned()),
        (false, "/threats/rescans?format=csv".to_owned()),
        (true, "/enrollment/pipeline".to_owned()),
        (true, "/enrollment/pipeline?format=csv".to_owned()),
        (true, format!("{fund}/report")),
        (true, format!("{fund}/report?format=csv")),
    ] {
        let who = if by_staff { &mut staff } else { &mut auditor };
        let served = metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap();
        let res = who.get(&page);
        assert_eq!(res.status, 200, "{page}: {}", res.body);
        assert!(
            metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap() > served,
            "{page} is read on the replica"
        );
    }

    // Hold the replica at this point of the log: writes from now on are on the primary only.
    eventually("the replica has replayed everything so far", || {
        metric(&mut boss, "heyboss_replica_lag_bytes{replica=") == Some(0.0)
    });
    diesel::sql_query("SELECT pg_wal_replay_pause()")
        .execute(&mut on_replica)
        .unwrap();
    let res = boss.post(
        &format!("/admin/accounts/{target}/role"),
        &[("role", "analyst")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert!(
        metric(&mut boss, "heyboss_replica_lag_bytes{replica=").unwrap() > 0.0,
        "the lag shows on /metrics"
    );

    // The writer sees their own write at once: the replica is behind, so after a bounded wait
    // the read goes to the primary.
    let behind = metric(
        &mut boss,
        "heyboss_reads_total{served_by=\"primary_replica_behind\"}",
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(role_changes(&mut boss, target), 1, "the writer's own write");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        metric(
            &mut boss,
            "heyboss_reads_total{served_by=\"primary_replica_behind\"}"
        )
        .unwrap(),
        behind + 1.0
    );
    // Another admin reads the replica as it stands: proof that the page really reads there.
    assert_eq!(
        role_changes(&mut auditor, target),
        0,
        "the paused replica does not have the role change yet"
    );

    // Once the replica replays again, everyone's page has it.
    diesel::sql_query("SELECT pg_wal_replay_resume()")
        .execute(&mut on_replica)
        .unwrap();
    eventually("the auditor sees the change through the replica", || {
        role_changes(&mut auditor, target) == 1
    });
    drop(on_replica);

    // A stopped replica: pages still answer, from the primary, and /metrics says it is down.
    replica_script("stop");
    let down = metric(
        &mut boss,
        "heyboss_reads_total{served_by=\"primary_replica_down\"}",
    )
    .unwrap();
    assert_eq!(role_changes(&mut auditor, target), 1);
    let history = auditor.get(&format!("/history/user/{target}"));
    assert_eq!(history.status, 200, "{}", history.body);
    assert!(
        metric(
            &mut boss,
            "heyboss_reads_total{served_by=\"primary_replica_down\"}"
        )
        .unwrap()
            > down
    );
    assert_eq!(
        metric(&mut boss, "heyboss_replica_up{replica=").unwrap(),
        0.0
    );
    let page = boss.get("/admin/projections");
    assert_eq!(page.status, 200);
    page.assert_contains("not answering");

    // Started again, the replica serves reads again (after its rest).
    replica_script("start");
    eventually("reads return to the replica", || {
        let served = metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap();
        role_changes(&mut auditor, target);
        metric(&mut boss, "heyboss_reads_total{served_by=\"replica\"}").unwrap() > served
    });
}

/// One file hit by one signature, posted through the sensor API; its md5.
fn one_threat_hit(app: &TestApp) -> &'static str {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::threats::service;
    const MD5: &str = "cccccccccccccccccccccccccccccccc";
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = &app.state.store;
    service::set_signature(&mut conn, store, &ctx, "sig-r", "alpha", None, None).unwrap();
    let (_, token) = service::create_sensor(&mut conn, store, &ctx, "edge").unwrap();
    let ev = |t: &str, data: serde_json::Value| serde_json::json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data});
    let events = vec![
        ev(
            "SessionDiscovered",
            serde_json::json!({"session_id": "r1", "start_time": chrono::Utc::now().to_rfc3339(), "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 80}),
        ),
        ev(
            "FileDiscovered",
            serde_json::json!({"file_id": "f1", "session_id": "r1", "md5": MD5, "filename": "f1.exe", "file_type": "pe", "size_bytes": 1}),
        ),
        ev(
            "FileScored",
            serde_json::json!({"file_id": "f1", "session_id": "r1", "integration": "av", "score": 60, "signature": "sig-r"}),
        ),
    ];
    let answer = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({ "events": events }))
        .unwrap();
    assert_eq!(answer.status(), 200);
    MD5
}

/// A staff member `sam` and a fund sam made; the fund's path.
fn one_fund(app: &TestApp) -> String {
    create_user(app, "sam", "staff", PASSWORD);
    let mut sam = Client::new(app);
    sam.login("sam", PASSWORD);
    let fund = scholarships_support::create_open_fund(&mut sam, "Merit", "1000");
    format!("/scholarships/funds/{fund}")
}
