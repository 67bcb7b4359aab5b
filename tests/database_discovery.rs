//! The contract's database discovery, run through the real binary.

use std::process::Command;

#[test]
fn without_database_url_or_a_local_server_a_private_cluster_is_started_and_stopped() {
    if !std::path::Path::new("/usr/lib/postgresql").exists() {
        panic!(
            "PostgreSQL server binaries are needed for this test (apt-get install -y postgresql)"
        );
    }
    let dir = std::env::temp_dir().join(format!(
        "heyboss-discovery-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .arg("migrate")
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        // Nothing listens on port 1: the localhost step fails and the fallback runs.
        .env("HEYBOSS_LOCAL_SERVER", "postgres://localhost:1")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("migrations applied"), "{stdout}");
    assert!(
        dir.join("var/postgres/PG_VERSION").exists(),
        "the cluster lives in ./var/postgres"
    );
    assert!(
        !dir.join("var/postgres/postmaster.pid").exists(),
        "the cluster was stopped on exit"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_database_url_the_local_server_is_reached_through_its_unix_socket() {
    // This machine's server (Debian's packages) keeps its socket in /var/run/postgresql; the
    // localhost step uses it rather than TCP loopback (cheaper round trips, same server).
    let socket = std::path::Path::new("/var/run/postgresql/.s.PGSQL.5432");
    assert!(
        socket.exists(),
        "the tests' server on port 5432 has its socket at {}",
        socket.display()
    );
    let servers = heyboss::db::local_socket_servers(5432);
    assert_eq!(
        servers.first().map(String::as_str),
        Some("postgres://%2Fvar%2Frun%2Fpostgresql:5432")
    );
    // Through it, the same server as localhost:5432, and a connection that is not TCP.
    use diesel::prelude::*;
    #[derive(QueryableByName, PartialEq, Debug)]
    struct Seen {
        #[diesel(sql_type = diesel::sql_types::Text)]
        data_directory: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        over_tcp: bool,
    }
    let seen = |server: &str| -> Seen {
        let mut conn =
            PgConnection::establish(&format!("{server}/postgres{}", heyboss::db::LOCAL_PARAMS))
                .unwrap();
        diesel::sql_query(
            "SELECT current_setting('data_directory') AS data_directory, \
             inet_client_addr() IS NOT NULL AS over_tcp",
        )
        .get_result(&mut conn)
        .unwrap()
    };
    let by_socket = seen(&servers[0]);
    let by_tcp = seen(heyboss::db::DEFAULT_SERVER);
    assert_eq!(by_socket.data_directory, by_tcp.data_directory);
    assert!(!by_socket.over_tcp && by_tcp.over_tcp);

    // And the binary chooses it when DATABASE_URL is not set.
    let dir =
        std::env::temp_dir().join(format!("heyboss-socket-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .arg("migrate")
        .current_dir(&dir)
        .env_remove("DATABASE_URL")
        .env_remove("HEYBOSS_LOCAL_SERVER")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let logged = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{logged}");
    assert!(
        logged.contains("using the local PostgreSQL server")
            && logged.contains("postgres:///var/run/postgresql:5432"),
        "{logged}"
    );
    assert!(
        !dir.join("var/postgres").exists(),
        "no private cluster when the local server answers"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_created_database_orders_text_as_the_servers_default_does() {
    // On a server whose default collation is C.UTF-8 (code point order), the app creates its
    // databases with collation C: the same order, compared bytewise. Otherwise the default stays.
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let text = |conn: &mut PgConnection, sql: &str| -> String {
        diesel::sql_query(sql)
            .get_result::<Row>(conn)
            .unwrap()
            .value
    };
    let server = heyboss::db::Database::discover().unwrap();
    let name = format!("heyboss_collation_{}", uuid::Uuid::new_v4().simple());
    let url = heyboss::db::with_database(&server.url, &name);
    heyboss::db::ensure_database(&url).unwrap();
    let mut admin =
        PgConnection::establish(&heyboss::db::with_database(&server.url, "postgres")).unwrap();
    let default = text(
        &mut admin,
        "SELECT datcollate::text AS value FROM pg_database WHERE datname = 'template1'",
    );
    let (created, order) = {
        let mut conn = PgConnection::establish(&url).unwrap();
        (
            text(
                &mut conn,
                "SELECT datcollate::text AS value FROM pg_database WHERE datname = current_database()",
            ),
            text(
                &mut conn,
                "SELECT string_agg(w, ' ' ORDER BY w) AS value
                 FROM unnest(ARRAY['zebra', 'Zebra', 'éclair', 'eclair', 'a1', 'a10', 'a9']) AS w",
            ),
        )
    };
    diesel::sql_query(format!("DROP DATABASE {}", heyboss::db::quote_ident(&name)))
        .execute(&mut admin)
        .unwrap();
    if default == "C.UTF-8" || default == "C.utf8" {
        assert_eq!(created, "C");
        // Code point order, as C.UTF-8 gave.
        assert_eq!(order, "Zebra a1 a10 a9 eclair zebra éclair");
    } else {
        assert_eq!(created, default);
    }
}

#[test]
fn processes_creating_one_database_at_once_all_succeed() {
    // Parallel test binaries and two `serve` on an empty server all create "their" database.
    let server = heyboss::db::Database::discover().unwrap();
    let name = format!("heyboss_race_{}", uuid::Uuid::new_v4().simple());
    let url = heyboss::db::with_database(&server.url, &name);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let results: Vec<_> = (0..8)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                heyboss::db::ensure_database(&url).map_err(|e| e.to_string())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    drop_database(&server.url, &name);
    for r in results {
        assert_eq!(r, Ok(()));
    }
}

#[test]
fn several_servers_started_at_once_on_an_empty_database_all_come_up_with_the_demo_once() {
    use std::process::Stdio;
    let server = heyboss::db::Database::discover().unwrap();
    let name = format!("heyboss_first_start_{}", uuid::Uuid::new_v4().simple());
    let url = heyboss::db::with_database(&server.url, &name);
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let mut children: Vec<_> = ports
        .iter()
        .map(|port| {
            Command::new(env!("CARGO_BIN_EXE_heyboss"))
                .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}")])
                .env("DATABASE_URL", &url)
                .env("HEYBOSS_HOME", env!("CARGO_MANIFEST_DIR"))
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut up = vec![false; ports.len()];
    while std::time::Instant::now() < deadline && up.iter().any(|u| !u) {
        for (i, port) in ports.iter().enumerate() {
            if !up[i] {
                up[i] = ureq::get(&format!("http://127.0.0.1:{port}/healthz"))
                    .call()
                    .is_ok();
            }
        }
        if children.iter_mut().any(|c| c.try_wait().unwrap().is_some()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The demo is seeded once, however many servers seeded it.
    let registered = {
        use diesel::prelude::*;
        let mut conn = PgConnection::establish(&url).unwrap();
        heyboss::schema::events::table
            .filter(heyboss::schema::events::event_type.eq("UserRegistered"))
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "payload->>'username' = 'admin'",
            ))
            .count()
            .get_result::<i64>(&mut conn)
            .unwrap()
    };
    let mut failures = Vec::new();
    for (i, mut child) in children.drain(..).enumerate() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            failures.push(format!("server {i} exited ({status}): {err}"));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    drop_database(&server.url, &name);
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        up.iter().all(|u| *u),
        "every server answered /healthz: {up:?}"
    );
    assert_eq!(registered, 1, "the demo admin is registered once");
}

fn drop_database(server_url: &str, name: &str) {
    use diesel::prelude::*;
    let mut admin =
        PgConnection::establish(&heyboss::db::with_database(server_url, "postgres")).unwrap();
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        heyboss::db::quote_ident(name)
    ))
    .execute(&mut admin)
    .unwrap();
}
