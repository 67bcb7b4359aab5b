//! Finding the database (the contract's discovery order), the connection pool and migrations.

use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

pub use heyboss_es::db::{
    analyze_if_stale, quote_ident, statistics_current, PgPool, PgPooled, PoolOptions,
};

diesel::define_sql_function! {
    /// SQL `lower(text)`: usernames and signature names match in any letter case.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The default when `DATABASE_URL` is not set, when the server on port 5432 has no Unix socket
/// this process can use (see [`LOCAL_SOCKET_DIRS`]).
pub const DEFAULT_SERVER: &str = "postgres://localhost:5432";
/// Where a local server on port 5432 keeps its Unix socket: Debian's packages, then PostgreSQL's
/// own default. The localhost step reaches the server there when it can: the same server as
/// localhost:5432, with round trips about twice as cheap as over TCP loopback (pgbench of small
/// transactions at 8 clients, docs/BENCHMARKS.md "The web path"), and a command makes five. Named
/// in the URL because the bundled libpq looks only in /tmp by default.
pub const LOCAL_SOCKET_DIRS: [&str; 2] = ["/var/run/postgresql", "/tmp"];
pub const DEFAULT_DATABASE: &str = "heyboss";
/// The connection parameters of the localhost step: no TLS. libpq's default (`sslmode=prefer`)
/// encrypts every round trip when the server has `ssl = on` (as Debian's packages set it up), which
/// on loopback protects nothing (whoever can read loopback traffic is root on this host) and costs
/// CPU on both ends of every statement (docs/BENCHMARKS.md, "The web path"). A `DATABASE_URL` is
/// used as given: its `sslmode` is the operator's (a remote server needs `require` or stronger).
pub const LOCAL_PARAMS: &str = "?sslmode=disable";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no PostgreSQL found: set DATABASE_URL, start a server on localhost:5432, or install one (Debian: apt-get install -y postgresql)")]
    NotFound,
    #[error("database error: {0}")]
    Connection(#[from] diesel::ConnectionError),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error(transparent)]
    Migration(#[from] heyboss_es::db::MigrationError),
    #[error("private PostgreSQL cluster: {0}")]
    Cluster(String),
}

/// A PostgreSQL server the application may use, and the database on it.
#[derive(Debug)]
pub struct Database {
    /// URL of the application's database.
    pub url: String,
    /// A private cluster this process started; stopped when dropped.
    pub cluster: Option<PrivateCluster>,
}

impl Database {
    /// The contract's order: DATABASE_URL; else localhost:5432/heyboss (created when missing);
    /// else a private cluster in ./var/postgres from the installed server binaries; else an error.
    pub fn discover() -> Result<Database, DbError> {
        init_tls();
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                // Best effort: a managed server may not let us create databases, and need not.
                if let Err(e) = ensure_database(&url) {
                    tracing::debug!(error = %e, "could not check or create the DATABASE_URL database");
                }
                return Ok(Database { url, cluster: None });
            }
        }
        // HEYBOSS_LOCAL_SERVER replaces the localhost step (tests use it to exercise the fallback).
        // Else the server on port 5432: through its Unix socket when it has one that lets us in,
        // else over TCP.
        let servers = match std::env::var("HEYBOSS_LOCAL_SERVER") {
            Ok(server) => vec![server],
            Err(_) => {
                let mut servers = local_socket_servers(5432);
                servers.push(DEFAULT_SERVER.to_owned());
                servers
            }
        };
        for server in servers {
            if PgConnection::establish(&format!("{server}/postgres{LOCAL_PARAMS}")).is_ok() {
                // A URL built here: no password in it.
                tracing::info!(server = %server.replace("%2F", "/"), "using the local PostgreSQL server");
                let url = format!("{server}/{DEFAULT_DATABASE}{LOCAL_PARAMS}");
                ensure_database(&url)?;
                return Ok(Database { url, cluster: None });
            }
        }
        let cluster = PrivateCluster::start(Path::new("var/postgres"))?;
        let url = format!("{}/{DEFAULT_DATABASE}", cluster.server_url());
        ensure_database(&url)?;
        Ok(Database {
            url,
            cluster: Some(cluster),
        })
    }
}

/// URLs of the local server on `port` through its Unix socket (`postgres://%2Fvar%2Frun%2F
/// postgresql:5432`), one for each of [`LOCAL_SOCKET_DIRS`] that holds it. Whether it lets us in
/// (a Debian cluster's `peer` rule does for a role named as the system user) is the caller's
/// first connection.
pub fn local_socket_servers(port: u16) -> Vec<String> {
    LOCAL_SOCKET_DIRS
        .iter()
        .filter(|dir| Path::new(dir).join(format!(".s.PGSQL.{port}")).exists())
        .map(|dir| format!("postgres://{}:{port}", dir.replace('/', "%2F")))
        .collect()
}

/// Split `postgres://host:port/db?params` into the server part and the database name.
pub fn split_url(url: &str) -> (String, String, String) {
    let (base, params) = match url.split_once('?') {
        Some((b, p)) => (b, format!("?{p}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].rfind('/') {
        Some(i) => {
            let cut = scheme_end + i;
            (base[..cut].to_owned(), base[cut + 1..].to_owned(), params)
        }
        None => (base.to_owned(), String::new(), params),
    }
}

/// Replace the database name in a URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (server, _, params) = split_url(url);
    format!("{server}/{database}{params}")
}

/// Initialize OpenSSL, which the bundled libpq uses for TLS, before the first connection and
/// without its `atexit` cleanup. That cleanup frees OpenSSL's locks while a pool thread may still
/// be opening a connection (r2d2 replaces dead connections in the background), and the process
/// died of a segfault on its way out: seen in about one run in three of `ops_drills`' database
/// outage drill, which ends while the pool reconnects. The same could hit `serve` stopped during
/// an outage. Idempotent.
pub fn init_tls() {
    openssl_sys::init();
}

/// Database work could not start: no connection came from the pool in time (the database is
/// away or every connection is busy), or the thread running the work was lost.
#[derive(Debug, thiserror::Error)]
pub enum NoConnection {
    #[error("no database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("the database work was cancelled")]
    Cancelled,
}

/// Whether an error says the database went away (a restart, a fast shutdown, a terminated
/// connection, the network) rather than that the statement was wrong: SQLSTATE class 08
/// (connection exception) and 57P01-57P05 (operator intervention: admin or crash shutdown,
/// cannot connect now, database dropped, idle session timeout). Such a request may succeed when
/// retried, so it is a 503, never a 500. Diesel gives the kind only for class 08; the others are
/// known by PostgreSQL's and libpq's messages.
pub fn is_unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    const GONE: [&str; 14] = [
        "terminating connection due to administrator command",
        "terminating connection because of crash of another server process",
        "terminating connection due to idle-session timeout",
        "terminating connection due to idle-in-transaction timeout",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "server closed the connection unexpectedly",
        "no connection to the server",
        "could not receive data from server",
        "could not send data to server",
        "SSL connection has been closed unexpectedly",
        "SSL SYSCALL error",
    ];
    match e {
        E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => true,
        E::DatabaseError(_, info) => GONE.iter().any(|m| info.message().contains(m)),
        E::BrokenTransactionManager => true,
        E::RollbackErrorOnCommit { commit_error, .. } => is_unavailable(commit_error),
        _ => false,
    }
}

/// Create the URL's database on its server when it does not exist yet. Several processes may
/// start at once on an empty server (`serve` twice, parallel test binaries): they take turns on
/// an advisory lock, so one creates it and the others find it there.
pub fn ensure_database(url: &str) -> Result<(), DbError> {
    init_tls();
    let (_, name, _) = split_url(url);
    let mut admin = PgConnection::establish(&with_database(url, "postgres"))?;
    diesel::sql_query("SELECT pg_advisory_lock(7242013)").execute(&mut admin)?;
    let created = create_if_missing(&mut admin, &name);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock(7242013)").execute(&mut admin);
    created?;
    unlocked?;
    Ok(())
}

fn create_if_missing(admin: &mut PgConnection, name: &str) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(admin)?;
    if found.exists {
        return Ok(());
    }
    match diesel::sql_query(create_database_sql(admin, name)?).execute(admin) {
        Ok(_) => Ok(()),
        // A process that does not take the lock (an older version) created it meanwhile: either
        // "already exists" or, when both inserted the catalog row at once, a unique violation.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        Err(e) if e.to_string().contains("already exists") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `CREATE DATABASE name`, with text compared bytewise where the server's default collation
/// already orders text that way.
///
/// A server whose default collation is C.UTF-8 (Debian's when no locale is configured, as on
/// this project's machines) orders text by code point, which for UTF-8 is byte order. But
/// PostgreSQL 15 takes its byte-comparison path only for a collation named C; for C.UTF-8 it
/// calls `strcoll` on every comparison, and every index of text keys (stream ids, hashes, report
/// keys) compares through it. On such a server the database is created with `LC_COLLATE 'C'`:
/// the same order, compared faster. A linguistic default (say en_US.UTF-8) is kept as it is.
pub fn create_database_sql(admin: &mut PgConnection, name: &str) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Collation {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datcollate: String,
    }
    let default: Collation = diesel::sql_query(
        "SELECT datcollate::text AS datcollate FROM pg_database WHERE datname = 'template1'",
    )
    .get_result(admin)?;
    let code_point_order = matches!(default.datcollate.as_str(), "C.UTF-8" | "C.utf8");
    Ok(if code_point_order {
        format!(
            "CREATE DATABASE {} TEMPLATE template0 LC_COLLATE 'C'",
            quote_ident(name)
        )
    } else {
        format!("CREATE DATABASE {}", quote_ident(name))
    })
}

/// The event store's pool (`heyboss_es::db`), after OpenSSL is set up for the bundled libpq.
pub fn pool(url: &str, max_size: u32) -> Result<PgPool, DbError> {
    pool_with(url, PoolOptions::new(max_size))
}

pub fn pool_with(url: &str, options: PoolOptions) -> Result<PgPool, DbError> {
    init_tls();
    Ok(heyboss_es::db::pool_with(url, options)?)
}

/// A connection outside the pool, with the pool's session settings.
pub fn connect(url: &str) -> ConnectionResult<PgConnection> {
    init_tls();
    heyboss_es::db::connect(url)
}

/// Every migration of the application: the event store's (`heyboss_es::db::MIGRATIONS`) and the
/// contexts' (`migrations/`), in version order.
struct AllMigrations;

impl MigrationSource<Pg> for AllMigrations {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        let mut all = MigrationSource::<Pg>::migrations(&heyboss_es::db::MIGRATIONS)?;
        all.extend(MigrationSource::<Pg>::migrations(&MIGRATIONS)?);
        Ok(all)
    }
}

/// The names of the migrations this binary carries (embedded when it was compiled), in order.
pub fn embedded_migration_names() -> Vec<String> {
    AllMigrations
        .migrations()
        .map(|all| all.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// Run the pending migrations older than `version` (e.g. `2026-12-10-400000`): a store as it
/// was before that migration, for tests of the migration itself.
pub fn migrate_before(conn: &mut PgConnection, version: &str) -> Result<usize, DbError> {
    struct Before<'a>(&'a str);
    impl MigrationSource<Pg> for Before<'_> {
        fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
            let all = AllMigrations.migrations()?;
            Ok(all
                .into_iter()
                .filter(|m| {
                    let digits =
                        |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
                    digits(&m.name().version().to_string()) < digits(self.0)
                })
                .collect())
        }
    }
    Ok(heyboss_es::db::migrate_from(conn, Before(version))?)
}

/// Run pending migrations, the event store's and the application's. Serialized with an advisory
/// lock so several instances can start at once.
pub fn migrate(conn: &mut PgConnection) -> Result<usize, DbError> {
    Ok(heyboss_es::db::migrate_from(conn, AllMigrations)?)
}

/// A PostgreSQL cluster of our own, for machines with the server installed but not running.
#[derive(Debug)]
pub struct PrivateCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PrivateCluster {
    pub fn start(dir: &Path) -> Result<PrivateCluster, DbError> {
        Self::start_on(dir, 54329)
    }

    /// A cluster in `dir` listening on `port` (tests run several side by side).
    pub fn start_on(dir: &Path, port: u16) -> Result<PrivateCluster, DbError> {
        let bin = find_server_binaries().ok_or(DbError::NotFound)?;
        let as_postgres_user = is_root();
        std::fs::create_dir_all(dir).map_err(|e| DbError::Cluster(e.to_string()))?;
        let data = std::fs::canonicalize(dir).map_err(|e| DbError::Cluster(e.to_string()))?;
        let cluster = PrivateCluster {
            bin,
            data,
            port,
            as_postgres_user,
        };
        if as_postgres_user {
            // initdb refuses to run as root: the cluster belongs to the postgres system user.
            let _ = Command::new("chown")
                .arg("-R")
                .arg("postgres")
                .arg(&cluster.data)
                .status();
        }
        if !cluster.data.join("PG_VERSION").exists() {
            cluster.run(
                "initdb",
                &["-D", &cluster.data_str(), "-A", "trust", "-U", "postgres"],
            )?;
        }
        let options = format!(
            "-p {} -k {} -c listen_addresses=localhost",
            cluster.port,
            cluster.data_str()
        );
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &cluster.data_str(),
                "-o",
                &options,
                "-l",
                &format!("{}/server.log", cluster.data_str()),
                "-w",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// Stop the server as an operator's fast shutdown does: open connections are ended
    /// (SQLSTATE 57P01) and new ones refused.
    pub fn stop_fast(&self) -> Result<(), DbError> {
        self.run(
            "pg_ctl",
            &["-D", &self.data_str(), "-m", "fast", "-w", "stop"],
        )
    }

    pub fn server_url(&self) -> String {
        format!("postgres://postgres@localhost:{}", self.port)
    }

    fn data_str(&self) -> String {
        self.data.display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), DbError> {
        let path = self.bin.join(program);
        let status = if self.as_postgres_user {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(&path).args(args);
            cmd.status()
        } else {
            Command::new(&path).args(args).status()
        }
        .map_err(|e| DbError::Cluster(format!("{program}: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(DbError::Cluster(format!("{program} exited with {status}")))
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data_str(), "-m", "fast", "stop"]);
    }
}

fn find_server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[cfg(test)]
pub(crate) mod tests {
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    /// What a test's database error says: its message and the constraint it names.
    #[derive(Debug)]
    struct Message(&'static str, Option<&'static str>);

    impl DatabaseErrorInformation for Message {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.1
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    /// A database error as Diesel reports it, for tests of what the application makes of one.
    pub(crate) fn error(kind: DatabaseErrorKind, message: &'static str) -> Error {
        Error::DatabaseError(kind, Box::new(Message(message, None)))
    }

    /// A unique violation of `constraint`, as PostgreSQL reports one.
    pub(crate) fn violation(constraint: Option<&'static str>) -> Error {
        Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(Message(
                "duplicate key value violates unique constraint",
                constraint,
            )),
        )
    }

    #[test]
    fn a_server_going_away_is_unavailable_and_a_wrong_statement_is_not() {
        use DatabaseErrorKind::{ClosedConnection, Unknown};
        // Diesel gives these a kind of their own only in SQLSTATE class 08, or when libpq has
        // already marked the connection bad: 57P01 while the connection still looked open was a 500.
        for gone in [
            error(
                Unknown,
                "terminating connection due to administrator command",
            ),
            error(Unknown, "FATAL:  the database system is shutting down"),
            error(
                Unknown,
                "terminating connection because of crash of another server process",
            ),
            error(
                Unknown,
                "server closed the connection unexpectedly\n\tThis probably means...",
            ),
            error(ClosedConnection, "anything"),
            Error::BrokenTransactionManager,
        ] {
            assert!(super::is_unavailable(&gone), "{gone:?}");
        }
        for wrong in [
            error(Unknown, "syntax error at or near \"SELEC\""),
            error(DatabaseErrorKind::UniqueViolation, "duplicate key value"),
            Error::NotFound,
        ] {
            assert!(!super::is_unavailable(&wrong), "{wrong:?}");
        }
    }
}
