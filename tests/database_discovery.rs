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
