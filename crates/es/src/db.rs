//! Connections for the event store: an r2d2 pool whose connections plan each statement for its
//! own parameters, and the event store's own migrations (`events`, `command_outcomes`,
//! `subscriber_checkpoints`).

use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{
    ConnectionManager, CustomizeConnection, ManageConnection, Pool, PooledConnection,
};
use diesel::ConnectionError;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub type PgPool = Pool<Manager>;
pub type PgPooled = PooledConnection<Manager>;

/// The event store's tables. An application with tables of its own runs these together with its
/// own (diesel orders them by version; see the heyboss application's `db::migrate`).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// How a pool is made. [`PoolOptions::new`] gives the defaults the heyboss application uses.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: u32,
    pub min_idle: Option<u32>,
    /// How long a check-out waits for a connection before it fails.
    pub connection_timeout: Duration,
    /// Ping (`SELECT 1`) a connection at check-out, so that a connection the server dropped is
    /// replaced before it fails a request: one more round trip per check-out.
    pub test_on_check_out: bool,
    /// A connection that answered a ping this recently is handed out without another: under load
    /// a connection is checked out hundreds of times a second, and one ping a second each is
    /// enough to find one the server dropped. `Duration::ZERO` pings at every check-out.
    pub ping_interval: Duration,
    /// Statements run on every new connection (`SET ...`).
    pub session_settings: Vec<String>,
}

impl PoolOptions {
    pub fn new(max_size: u32) -> PoolOptions {
        PoolOptions {
            max_size,
            min_idle: Some(1),
            connection_timeout: Duration::from_secs(5),
            test_on_check_out: true,
            ping_interval: Duration::from_secs(1),
            session_settings: default_session_settings(),
        }
    }
}

/// Diesel keeps prepared statements per connection, and after five runs PostgreSQL may switch a
/// statement to a generic plan that it keeps until the table's statistics change. Read models
/// grow from empty, and where nothing analyzes them (autovacuum off) a plan made while a table was
/// nearly empty (a sequential scan) stayed for good: seen as the sensor ingest's lookups of
/// `threat_files` by id growing from 1 ms to 70 ms a batch. Planning each statement for its own
/// parameters costs a fraction of a millisecond and cannot go stale.
///
/// Read models are looked up by key in batches (`id = ANY($1)` of a few hundred ids, joins from
/// `unnest`); with the default `random_page_cost` of 4 (a spinning disk) the planner scans a
/// table of some ten thousand rows rather than probe its index a few hundred times, a choice that
/// costs more with every batch until the table is large enough to flip it. A working set in
/// memory makes an index probe cost about as much as a sequential page read.
///
/// JIT compilation is for queries that run for seconds. The planner turns it on by estimated
/// cost, and the estimates of this application's statements (a log read above a checkpoint, a
/// report summing time buckets, a batch's upserts) are often far above what they take: compiling
/// cost 9-158 ms a call for statements that ran in under a millisecond (the projections page,
/// EXPLAIN ANALYZE at 1,000,000 events).
pub fn default_session_settings() -> Vec<String> {
    vec![
        "SET plan_cache_mode = force_custom_plan".into(),
        "SET random_page_cost = 1.1".into(),
        "SET jit = off".into(),
    ]
}

/// A pool with the default options.
pub fn pool(url: &str, max_size: u32) -> Result<PgPool, diesel::r2d2::PoolError> {
    pool_with(url, PoolOptions::new(max_size))
}

pub fn pool_with(url: &str, options: PoolOptions) -> Result<PgPool, diesel::r2d2::PoolError> {
    let manager = Manager {
        inner: ConnectionManager::new(url),
        ping_interval: options.ping_interval,
    };
    Pool::builder()
        .max_size(options.max_size)
        .min_idle(options.min_idle)
        .connection_timeout(options.connection_timeout)
        .test_on_check_out(options.test_on_check_out)
        .connection_customizer(Box::new(SessionSettings(options.session_settings)))
        .build(manager)
}

/// A connection outside the pool, with the pool's default session settings.
pub fn connect(url: &str) -> ConnectionResult<PgConnection> {
    let mut conn = PgConnection::establish(url)?;
    apply_settings(&mut conn, &default_session_settings())
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

fn apply_settings(conn: &mut PgConnection, settings: &[String]) -> QueryResult<()> {
    for s in settings {
        diesel::sql_query(s).execute(conn)?;
    }
    Ok(())
}

/// Diesel's connection manager, with pings spaced by [`PoolOptions::ping_interval`].
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
    ping_interval: Duration,
}

/// What a pooled connection remembers of itself: when a statement last succeeded on it, unless
/// one has failed since. Kept as the connection's diesel instrumentation, which sees every
/// statement finish.
struct Answered(Option<Instant>);

impl Instrumentation for Answered {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { error, .. } = event {
            self.0 = error.is_none().then(Instant::now);
        }
    }
}

impl Manager {
    /// When a statement last succeeded on `conn` with none failing since.
    fn answered(conn: &mut PgConnection) -> Option<Instant> {
        conn.instrumentation()
            .downcast_ref::<Answered>()
            .and_then(|a| a.0)
    }
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        let mut conn = self.inner.connect()?;
        conn.set_instrumentation(Answered(Some(Instant::now())));
        Ok(conn)
    }

    /// A connection whose last statement succeeded less than `ping_interval` ago is good; any
    /// other is pinged. After a failed statement it is always pinged, so that a connection the
    /// server dropped is replaced at its next check-out.
    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let recent = Manager::answered(conn).is_some_and(|t| t.elapsed() < self.ping_interval);
        if recent {
            return Ok(());
        }
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn)
    }
}

#[derive(Debug)]
struct SessionSettings(Vec<String>);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        apply_settings(conn, &self.0).map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
}

/// Run the event store's pending migrations.
pub fn migrate(conn: &mut PgConnection) -> Result<usize, MigrationError> {
    migrate_from(conn, MIGRATIONS)
}

/// Run pending migrations of `source`, serialized with an advisory lock so that several
/// processes can start at once on one database.
pub fn migrate_from(
    conn: &mut PgConnection,
    source: impl diesel::migration::MigrationSource<diesel::pg::Pg>,
) -> Result<usize, MigrationError> {
    diesel::sql_query("SELECT pg_advisory_lock(7242011)").execute(conn)?;
    let result = conn
        .run_pending_migrations(source)
        .map(|applied| applied.len())
        .map_err(|e| MigrationError::Migration(e.to_string()));
    diesel::sql_query("SELECT pg_advisory_unlock(7242011)").execute(conn)?;
    result
}

/// A name quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether `table` has planner statistics that still describe it: analyzed at least once, and
/// changed by less than a fifth of its rows since. A store after a bulk load or an import has
/// none until autovacuum reaches it (never, where autovacuum is off).
pub fn statistics_current(conn: &mut PgConnection, table: &str) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Current {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        current: bool,
    }
    let row: Option<Current> = diesel::sql_query(
        "SELECT coalesce(s.last_analyze, s.last_autoanalyze) IS NOT NULL \
                AND s.n_mod_since_analyze <= greatest(c.reltuples, 0) * 0.2 AS current \
         FROM pg_class c LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid \
         WHERE c.oid = to_regclass($1)",
    )
    .bind::<diesel::sql_types::Text, _>(table)
    .get_result(conn)
    .optional()?;
    Ok(row.is_none_or(|r| r.current))
}

/// `ANALYZE` `table` (a name as written in SQL, quoted where needed) unless its statistics are
/// current: what a bulk read of the log (a rebuild, a verify, a subscriber's first start) needs
/// so that its plans do not depend on whether autovacuum happened to run. Returns whether it
/// analyzed. Sampling keeps it to a fraction of a second on millions of rows.
pub fn analyze_if_stale(conn: &mut PgConnection, table: &str) -> QueryResult<bool> {
    if statistics_current(conn, table)? {
        return Ok(false);
    }
    diesel::sql_query(format!("ANALYZE {table}")).execute(conn)?;
    Ok(true)
}

/// The plan of `query` (`EXPLAIN (COSTS OFF)`), one line a row: for tests that check which
/// partitions of `events` a query reads.
pub fn explain<Q>(conn: &mut PgConnection, query: Q) -> QueryResult<Vec<String>>
where
    Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    Explain(query)
        .load::<Line>(conn)
        .map(|lines| lines.into_iter().map(|l| l.line).collect())
}

struct Explain<Q>(Q);

impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for Explain<Q>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        out.push_sql("EXPLAIN (COSTS OFF) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> diesel::query_builder::QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Q> RunQueryDsl<PgConnection> for Explain<Q> {}

/// Whether `e` is a lock wait given up at `lock_timeout` (SQLSTATE 55P03; diesel keeps the
/// message, not the code).
pub fn is_lock_timeout(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if info.message().starts_with("canceling statement due to lock timeout"))
}
