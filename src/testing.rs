//! Test and benchmark support: a fresh database per test, cloned from a migrated template, and
//! the real application started on a free port. Not used by the application itself.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::OnceLock;

use diesel::prelude::*;

use crate::db::{self, quote_ident, with_database, Database, PgPool};
use crate::startup::Application;
use crate::web::Settings;

/// The database server tests use: the same discovery as `serve` (DATABASE_URL, localhost, a
/// private cluster). Kept for the life of the test process.
fn server() -> &'static Database {
    static SERVER: OnceLock<Database> = OnceLock::new();
    SERVER.get_or_init(|| Database::discover().expect("a PostgreSQL server for tests"))
}

/// A name that changes whenever a migration does, so a stale template is never reused.
fn template_name() -> String {
    template_name_of(&db::embedded_migration_names())
}

/// [`template_name`] for a binary carrying the migrations `embedded`.
fn template_name_of(embedded: &[String]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // How the template is created counts too (see `db::create_database_sql`).
    "collation: C where the server's default is C.UTF-8".hash(&mut hasher);
    // The event store's migrations and the application's.
    let mut files: Vec<_> = walk(&root.join("crates/es/migrations"));
    files.extend(walk(&root.join("migrations")));
    files.sort();
    for f in files {
        f.hash(&mut hasher);
        std::fs::read(&f).unwrap_or_default().hash(&mut hasher);
    }
    // And the migrations this binary carries: one built before a migration landed in the same
    // tree (an A/B benchmark's base) reads the newer files above, but must not reuse a template
    // made with migrations it lacks, nor make one under their name.
    embedded.hash(&mut hasher);
    format!("heyboss_template_{:016x}", hasher.finish())
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A database of its own for one test, dropped when this value is.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    found: bool,
}

impl TestDatabase {
    pub fn new() -> TestDatabase {
        let admin_url = with_database(&server().url, "postgres");
        let template = template_name();
        let mut admin =
            PgConnection::establish(&admin_url).expect("connect to the maintenance database");
        // Test processes run in parallel: one of them migrates the template, the others wait.
        diesel::sql_query("SELECT pg_advisory_lock(7242012)")
            .execute(&mut admin)
            .unwrap();
        let exists: Found = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(&template)
        .get_result(&mut admin)
        .unwrap();
        if !exists.found {
            let building = format!("{template}_building");
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {}",
                quote_ident(&building)
            ))
            .execute(&mut admin)
            .unwrap();
            let create = db::create_database_sql(&mut admin, &building).unwrap();
            diesel::sql_query(create).execute(&mut admin).unwrap();
            {
                let mut conn =
                    PgConnection::establish(&with_database(&server().url, &building)).unwrap();
                db::migrate(&mut conn).expect("migrations apply to the template");
            }
            diesel::sql_query(format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_ident(&building),
                quote_ident(&template)
            ))
            .execute(&mut admin)
            .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(7242012)")
            .execute(&mut admin)
            .unwrap();

        let name = format!("heyboss_test_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(&template)
        ))
        .execute(&mut admin)
        .expect("clone the template database");
        TestDatabase {
            url: with_database(&server().url, &name),
            name,
            admin_url,
        }
    }

    /// A database of its own with only the migrations older than `version`: a store as it was
    /// before that migration (not cloned from the template).
    pub fn before_migration(version: &str) -> TestDatabase {
        let admin_url = with_database(&server().url, "postgres");
        let mut admin =
            PgConnection::establish(&admin_url).expect("connect to the maintenance database");
        let name = format!("heyboss_test_{}", uuid::Uuid::new_v4().simple());
        let create = db::create_database_sql(&mut admin, &name).unwrap();
        diesel::sql_query(create).execute(&mut admin).unwrap();
        let db = TestDatabase {
            url: with_database(&server().url, &name),
            name,
            admin_url,
        };
        let mut conn = PgConnection::establish(&db.url).unwrap();
        db::migrate_before(&mut conn, version).expect("the older migrations apply");
        db
    }

    pub fn pool(&self, size: u32) -> PgPool {
        db::pool(&self.url, size).expect("a pool on the test database")
    }

    pub fn connect(&self) -> PgConnection {
        db::connect(&self.url).expect("connect to the test database")
    }
}

impl Default for TestDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(&self.name)
            ))
            .execute(&mut admin);
        }
    }
}

/// The real application on a free port of 127.0.0.1, served from its own thread.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: TestDatabase,
    pub state: crate::web::AppState,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestApp {
    pub fn spawn() -> TestApp {
        Self::spawn_with(|_| {})
    }

    pub fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            crate::telemetry::init("debug");
        }
        let db = TestDatabase::new();
        let mut settings = Settings::from_env(db.url.clone());
        settings.bind = "127.0.0.1:0".into();
        settings.pool_size = 8;
        settings.templates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        settings.static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        configure(&mut settings);
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            system.block_on(async move {
                let app = Application::build(settings).expect("the application starts");
                tx.send((app.port(), app.server_handle(), app.state().clone()))
                    .unwrap();
                app.run_until_stopped().await.unwrap();
            });
        });
        let (port, handle, state) = rx.recv().expect("the application reports its port");
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            db,
            state,
            handle,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// An account that signs in with `password`, made through the accounts service as the CLI
    /// makes one.
    pub fn create_account(&self, username: &str, role: &str, password: &str) -> uuid::Uuid {
        let mut conn = self.state.pool.get().expect("a connection");
        let account = crate::accounts::NewAccount::parse(username, "", "", role, password)
            .expect("a valid account");
        crate::accounts::service::register(
            &mut conn,
            &self.state.store,
            crate::es::Metadata::new(crate::es::Actor::Cli),
            account,
            |_, _| Ok(()),
        )
        .expect("the account is registered")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop the server before its database is dropped.
        let _ =
            std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)))
                .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The CSRF token a rendered page carries in its forms (`csrf_token`), as a browser submits it.
pub fn csrf_token(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_owned())
}

/// `VACUUM ANALYZE` of `what` (a table, or the whole database when empty) for a benchmark's
/// store, once no snapshot is older than what it loaded (`heyboss_es::upkeep::until_horizon_passes`,
/// up to a minute): a vacuum right after a load, while a replica's `hot_standby_feedback` or a
/// stopped replica's slot still holds an older snapshot, marks no page all-visible, and every
/// index-only read then fetches the heap. Says so when it could not wait that out.
pub fn vacuum_analyze_loaded(conn: &mut PgConnection, what: &str) {
    match heyboss_es::upkeep::until_horizon_passes(conn, std::time::Duration::from_secs(60)) {
        Ok(None) => {}
        Ok(Some(h)) => eprintln!(
            "warning: {} holds the oldest snapshot ({} transactions behind): VACUUM cannot mark the loaded pages all-visible, so index-only reads will fetch the heap (start the replica or drop its slot)",
            h.holder, h.behind
        ),
        Err(e) => eprintln!("warning: the xmin horizon could not be read: {e}"),
    }
    diesel::sql_query(format!("VACUUM ANALYZE {what}"))
        .execute(conn)
        .expect("VACUUM ANALYZE");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary that lacks the newest migration (built before it landed) names another template
    /// than one that carries it, though both read the same files.
    #[test]
    fn a_binary_missing_a_migration_uses_a_template_of_its_own() {
        let all = db::embedded_migration_names();
        assert!(all.len() > 10, "{all:?}");
        assert_eq!(template_name(), template_name_of(&all));
        assert_ne!(
            template_name_of(&all[..all.len() - 1]),
            template_name_of(&all)
        );
    }
}
