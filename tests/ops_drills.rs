//! Failure drills: the database goes away while the app runs (503 pages, then recovery without a
//! restart), and the app is killed with SIGKILL under load (every acknowledged command is in the
//! log after a restart, and every projection equals a rebuild).

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_user, Client, PASSWORD};
use diesel::prelude::*;
use heyboss::db::quote_ident;
use heyboss::testing::{TestApp, TestDatabase};

fn admin_conn(db: &TestDatabase) -> PgConnection {
    let url = db.url.rsplit_once('/').unwrap().0.to_owned() + "/postgres";
    PgConnection::establish(&url).unwrap()
}

/// Refuse new connections to the test database and end the open ones: an outage of that
/// database, without touching the shared server.
fn outage(db: &TestDatabase, on: bool) {
    let mut admin = admin_conn(db);
    diesel::sql_query(format!(
        "ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}",
        quote_ident(&db.name),
        !on
    ))
    .execute(&mut admin)
    .unwrap();
    if on {
        diesel::sql_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind::<diesel::sql_types::Text, _>(&db.name)
        .execute(&mut admin)
        .unwrap();
    }
}

#[test]
fn a_database_outage_gives_503_pages_and_the_app_recovers_by_itself() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    assert_eq!(admin.get("/admin/accounts").status, 200);

    outage(&app.db, true);
    let page = admin.get("/admin/accounts");
    assert_eq!(page.status, 503);
    page.assert_contains("The database is not answering right now");
    assert_eq!(page.header("retry-after"), Some("5"));
    let health = admin.get("/healthz");
    assert_eq!(health.status, 503);
    assert_eq!(health.json()["database"], "unreachable");

    outage(&app.db, false);
    // Back without a restart: the pool replaces its dead connections.
    let page = admin.get("/admin/accounts");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(admin.get("/healthz").status, 200);
    // Commands work again, and the subscribers reconnected (the notification arrives).
    let stu = create_user(&app, "stu", "student", PASSWORD);
    admin.get(&format!("/admin/accounts/{stu}"));
    assert_eq!(
        admin
            .post(&format!("/admin/accounts/{stu}/role"), &[("role", "staff")])
            .status,
        303
    );
    let mut conn = app.state.pool.get().unwrap();
    let mut notified = 0i64;
    for _ in 0..400 {
        notified = heyboss::schema::notifications::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        if notified > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(notified, 1);
}

/// Hold `table` locked (in `mode`) in a transaction of its own, so that the next request touching
/// it waits inside the database; then end that request's connection as a fast shutdown does
/// (SQLSTATE 57P01) and release the lock.
fn terminate_the_request_waiting_on(
    db: &TestDatabase,
    table: &str,
    mode: &str,
    request: impl FnOnce() -> common::Response + Send,
) -> common::Response {
    let mut holder = PgConnection::establish(&db.url).unwrap();
    diesel::sql_query("BEGIN").execute(&mut holder).unwrap();
    diesel::sql_query(format!("LOCK TABLE {table} IN {mode} MODE"))
        .execute(&mut holder)
        .unwrap();
    std::thread::scope(|scope| {
        let answer = scope.spawn(request);
        let mut admin = admin_conn(db);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            #[derive(QueryableByName)]
            struct Ended {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                ended: i64,
            }
            let ended: Ended = diesel::sql_query(
                "SELECT count(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity
                 WHERE datname = $1 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            )
            .bind::<diesel::sql_types::Text, _>(&db.name)
            .get_result(&mut admin)
            .unwrap();
            if ended.ended > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the request never waited on {table}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        diesel::sql_query("ROLLBACK").execute(&mut holder).unwrap();
        answer.join().unwrap()
    })
}

/// A response of plain ureq, as the tests read it.
fn plain(r: Result<ureq::Response, ureq::Error>) -> common::Response {
    let res = match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    common::Response {
        status: res.status(),
        headers: vec![(
            "retry-after".into(),
            res.header("retry-after").unwrap_or("").to_owned(),
        )],
        body: res.into_string().unwrap(),
    }
}

#[test]
fn a_connection_ended_mid_request_is_a_503_with_retry_after_for_pages_and_the_api() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx =
            heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli));
        heyboss::threats::service::create_sensor(&mut conn, &app.state.store, &ctx, "edge")
            .unwrap()
            .1
    };
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);

    // A page whose session lookup is cut off.
    let session = admin.cookie(heyboss::accounts::sessions::COOKIE).unwrap();
    let page_url = app.url("/admin/accounts");
    let page = terminate_the_request_waiting_on(&app.db, "sessions", "ACCESS EXCLUSIVE", || {
        let r = ureq::get(&page_url)
            .set(
                "Cookie",
                &format!("{}={session}", heyboss::accounts::sessions::COOKIE),
            )
            .call();
        plain(r)
    });
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(page.header("retry-after"), Some("5"));
    page.assert_contains("The database is not answering right now");

    // A sensor batch cut off mid-transaction, at the append: its reads pass (EXCLUSIVE lets
    // them), its insert into the log waits. (This answered 500: the append's error was kept as
    // text.)
    let base = app.address.clone();
    let batch = serde_json::json!({"events": [{
        "id": uuid::Uuid::new_v4(), "type": "SessionDiscovered",
        "data": {"session_id": "s-1", "start_time": "2026-11-27T04:00:00Z", "protocol": "https",
                 "source_ip": "10.0.0.7", "destination_ip": "198.51.100.9",
                 "source_port": 51514, "destination_port": 443}}]});
    let api = terminate_the_request_waiting_on(&app.db, "events", "EXCLUSIVE", || {
        let r = ureq::post(&format!("{base}/api/v1/events"))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(batch.clone());
        plain(r)
    });
    assert_eq!(api.status, 503, "{}", api.body);
    assert_eq!(api.header("retry-after"), Some("5"));
    assert!(api.json()["error"].as_str().is_some(), "{}", api.body);

    // The retried batch is stored, once.
    let again = ureq::post(&format!("{}/api/v1/events", app.address))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(batch)
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(common::count_events(&app, "SessionDiscovered"), 1);
}

#[test]
fn a_fast_shutdown_of_the_server_mid_ingest_answers_503_never_500() {
    // A PostgreSQL server of this test's own, since it is shut down.
    let dir = std::env::temp_dir().join(format!(
        "heyboss-shutdown-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let port = free_port();
    let cluster = heyboss::db::PrivateCluster::start_on(&dir, port).unwrap();
    let url = format!("{}/heyboss", cluster.server_url());
    heyboss::db::ensure_database(&url).unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_heyboss"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    cli(&["migrate"]);
    let token = cli(&["sensors", "create", "--name", "edge"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let server = start_server_at(&url);

    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let posters: Vec<_> = (0..3)
        .map(|i| {
            let (base, token) = (server.base.clone(), token.clone());
            let (stop, statuses) = (stop.clone(), statuses.clone());
            std::thread::spawn(move || {
                let mut generator = heyboss::threats::simulate::Generator::new(
                    i,
                    vec!["ET-TROJAN-Emotet".into()],
                    1000,
                );
                while !stop.load(Ordering::Relaxed) {
                    let body = serde_json::json!({ "events": generator.batch(500) });
                    let answer = plain(
                        ureq::post(&format!("{base}/api/v1/events"))
                            .set("Authorization", &format!("Bearer {token}"))
                            .send_json(body),
                    );
                    statuses
                        .lock()
                        .unwrap()
                        .push((answer.status, answer.headers, answer.body));
                }
            })
        })
        .collect();
    // Let batches run, shut the server down under them, then keep posting a moment.
    std::thread::sleep(Duration::from_millis(1500));
    cluster.stop_fast().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for p in posters {
        p.join().unwrap();
    }
    drop(server);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);

    let statuses = statuses.lock().unwrap();
    let accepted = statuses.iter().filter(|s| s.0 == 200).count();
    let unavailable: Vec<_> = statuses.iter().filter(|s| s.0 == 503).collect();
    let other: Vec<_> = statuses
        .iter()
        .filter(|s| s.0 != 200 && s.0 != 503)
        .collect();
    assert!(other.is_empty(), "only 200 and 503: {other:#?}");
    assert!(accepted > 0, "batches went through before the shutdown");
    assert!(!unavailable.is_empty(), "the shutdown was seen");
    for (_, headers, body) in unavailable {
        assert_eq!(headers[0].1, "5", "Retry-After on every 503");
        assert!(body.contains("\"error\""), "{body}");
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(db: &TestDatabase) -> Server {
    start_server_at(&db.url)
}

fn start_server_at(database_url: &str) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("HEYBOSS_HOME", env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ureq::get(&format!("{}/healthz", server.base))
            .call()
            .is_ok()
        {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not start");
}

/// A signed-in admin session on raw ureq (transport errors are expected once the server dies).
fn admin_agent(base: &str) -> (ureq::Agent, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let login = agent.get(&format!("{base}/login")).call().unwrap();
    let csrf = heyboss::testing::csrf_token(&login.into_string().unwrap()).unwrap();
    let res = agent.post(&format!("{base}/login")).send_form(&[
        ("csrf_token", &csrf),
        ("username", "boss"),
        ("password", PASSWORD),
    ]);
    assert_eq!(res.unwrap().status(), 303);
    let page = agent.get(&format!("{base}/admin/accounts")).call().unwrap();
    let csrf = heyboss::testing::csrf_token(&page.into_string().unwrap()).unwrap();
    (agent, csrf)
}

#[test]
fn after_sigkill_under_load_every_acknowledged_command_is_in_the_log_and_projections_verify() {
    let db = TestDatabase::new();
    {
        let mut conn = db.connect();
        let store = heyboss::startup::event_store();
        let account =
            heyboss::accounts::NewAccount::parse("boss", "", "", "admin", PASSWORD).unwrap();
        heyboss::accounts::service::register(
            &mut conn,
            &store,
            heyboss::es::Metadata::new(heyboss::es::Actor::Cli),
            account,
            |_, _| Ok(()),
        )
        .unwrap();
    }
    let mut server = start_server(&db);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (base, acknowledged, stop) =
                (server.base.clone(), acknowledged.clone(), stop.clone());
            std::thread::spawn(move || {
                let (agent, csrf) = admin_agent(&base);
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let username = format!("load-{w}-{i}");
                    let res = agent.post(&format!("{base}/admin/accounts")).send_form(&[
                        ("csrf_token", csrf.as_str()),
                        ("username", &username),
                        ("display_name", ""),
                        ("email", ""),
                        ("role", "student"),
                        ("password", PASSWORD),
                    ]);
                    match res {
                        Ok(r) if r.status() == 303 => acknowledged.lock().unwrap().push(username),
                        Ok(_) | Err(ureq::Error::Status(..)) => {}
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    // SIGKILL: no shutdown, no flush, transactions cut in the middle.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 4,
        "the load ran: {}",
        acknowledged.len()
    );

    let restarted = start_server(&db);
    let mut conn = db.connect();
    for username in &acknowledged {
        let in_log: i64 = heyboss::schema::events::table
            .filter(heyboss::schema::events::event_type.eq("UserRegistered"))
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("payload ->> 'username' = ")
                    .bind::<diesel::sql_types::Text, _>(username),
            )
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(
            in_log, 1,
            "{username} was acknowledged but is not in the log"
        );
        assert!(
            heyboss::accounts::queries::find_by_username(&mut conn, username)
                .unwrap()
                .is_some()
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["projections", "verify"])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The restarted server serves the new accounts.
    let (agent, _) = admin_agent(&restarted.base);
    let page = agent
        .get(&format!(
            "{}/admin/accounts?q={}",
            restarted.base, acknowledged[0]
        ))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains(&acknowledged[0]));
    drop(restarted);
}
