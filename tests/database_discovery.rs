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
