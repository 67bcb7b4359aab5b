//! Rebuild and verify projections through shadow tables, so that readers never see a half-built
//! read model.
//!
//! # The mechanism: a shadow schema with same-named tables
//! A projection's `apply` code names its tables without a schema (`users`), and PostgreSQL
//! resolves unqualified names through `search_path`. A rebuild of projection `p`:
//! 1. creates the schema `shadow_p` holding, for each table `T` of `p`, an empty
//!    `shadow_p.T (LIKE T INCLUDING ALL)` (same columns, defaults, checks and indexes);
//! 2. replays the log into it in batches, each batch its own short transaction run with
//!    `SET LOCAL search_path TO shadow_p, public`, so the unchanged apply code writes the shadow
//!    tables (and still reads `events` and other contexts' tables from `public`); batches read in
//!    commit-safe order (`es::subscriber`), so no event committed late is skipped (a projection
//!    that replays in the database is handed each batch as a range of the log instead:
//!    `BulkReplay::replay_range`); then completes it: `BulkReplay::finish_replay`, and the indexes
//!    (and for tables `finish_replay` fills, the keys) that the replay left out, built on a second
//!    connection too when the caller gives one;
//! 3. swaps in one short transaction: lock the live tables, apply the events committed since the
//!    replay (for an inline projection; a catch-up projection's checkpoint is set to the replay's
//!    end instead), drop each live table, move the shadow table into `public`, give its indexes
//!    their old names (error handling keys on constraint names), drop the schema. Its lock
//!    request waits a short while and tries again rather than queue behind a long read
//!    (`without_queueing`), since a queued request holds every reader and writer after it.
//!
//! Readers keep reading the old table until the swap commits, then see the new one; writers wait
//! only for the swap. Verify runs steps 1 and 2, then in one transaction that blocks writers (but
//! not readers) catches the shadow up and compares it with the live table both ways
//! (`EXCEPT ALL`), reporting every differing row; the shadow is dropped afterwards.
//! Projections must therefore be deterministic functions of the log (no `now()`, no identity
//! values in compared columns) and use column types with equality (jsonb, not json).

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::event::RecordedEvent;
use super::projection::{Projection, ProjectionError, ReplayRange};
use super::subscriber::{self, Cursor};
use crate::db::quote_ident;

/// How long the replay waits for transactions open elsewhere before leaving the remaining events
/// to the swap (which replays them while holding the live tables locked).
pub const MAX_WAIT_FOR_XMIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The first key of the advisory lock taken while a projection is rebuilt or verified.
pub const SHADOW_LOCK: i32 = 4_243;

#[derive(Debug, thiserror::Error)]
pub enum ShadowError {
    #[error("a rebuild or verify of {0} is already running")]
    Busy(String),
    #[error("projection {0} owns no tables")]
    NoTables(String),
    #[error("projection {name} failed: {source}")]
    Apply {
        name: String,
        #[source]
        source: ProjectionError,
    },
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Progress at each step of a rebuild or verify and after each batch of its replay.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ShadowProgress {
    pub phase: Phase,
    pub events_done: u64,
    /// Events of the handled types in the log when the replay started (0 while preparing).
    pub events_total: u64,
    pub position: i64,
}

/// The step a rebuild or verify is at, so that a progress bar never sits at "0 / 0" or at 100%
/// without saying what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Creating the shadow tables and counting the events to replay.
    Preparing,
    Replaying,
    /// Completing what the replay deferred and building the indexes.
    Indexing,
    /// Gathering the planner's statistics of the rebuilt tables.
    Analyzing,
    /// Swapping the rebuilt tables in (a rebuild).
    Swapping,
    /// Comparing the rebuilt tables with the live ones (a verify).
    Comparing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preparing => "preparing",
            Phase::Replaying => "replaying",
            Phase::Indexing => "indexing",
            Phase::Analyzing => "analyzing",
            Phase::Swapping => "swapping",
            Phase::Comparing => "comparing",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RebuildReport {
    pub events: u64,
    /// Where the replay ended, in commit-safe order.
    pub cursor: Cursor,
    pub rows: i64,
}

/// A row that is in one table and not the other.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    pub table: String,
    /// "missing" (the rebuild has it, the live table not) or "unexpected" (only the live table).
    pub kind: String,
    /// The row as JSON.
    pub row: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.kind == "missing" {
            "missing from the live table"
        } else {
            "in the live table but not in a rebuild"
        };
        write!(f, "{}: {what}: {}", self.table, self.row)
    }
}

/// The schema that holds a projection's shadow tables.
pub fn shadow_schema(projection: &str) -> String {
    let clean: String = projection
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("shadow_{clean}")
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    flag: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Holds the projection's shadow lock for the life of the value.
struct ShadowLock<'a> {
    name: &'a str,
}

impl<'a> ShadowLock<'a> {
    fn take(conn: &mut PgConnection, name: &'a str) -> Result<ShadowLock<'a>, ShadowError> {
        let got: Flag = diesel::sql_query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS flag")
            .bind::<diesel::sql_types::Integer, _>(SHADOW_LOCK)
            .bind::<Text, _>(name)
            .get_result(conn)?;
        if got.flag {
            Ok(ShadowLock { name })
        } else {
            Err(ShadowError::Busy(name.to_owned()))
        }
    }

    fn release(self, conn: &mut PgConnection) {
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1, hashtext($2)) AS flag")
            .bind::<diesel::sql_types::Integer, _>(SHADOW_LOCK)
            .bind::<Text, _>(self.name)
            .get_result::<Flag>(conn);
    }
}

fn live_schema(conn: &mut PgConnection) -> QueryResult<String> {
    diesel::sql_query("SELECT current_schema()::text AS name")
        .get_result::<Name>(conn)
        .map(|n| n.name)
}

/// Create the shadow schema and tables and replay the log into them. Returns the replay's end.
fn build(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    live: &str,
    until: Option<Cursor>,
    batch_size: i64,
    on_progress: &mut dyn FnMut(ShadowProgress),
) -> Result<(Cursor, u64), ShadowError> {
    let name = projection.name();
    let mut step = |phase, events_done, events_total, position| {
        on_progress(ShadowProgress {
            phase,
            events_done,
            events_total,
            position,
        })
    };
    step(Phase::Preparing, 0, 0, 0);
    let schema = quote_ident(&shadow_schema(name));
    diesel::sql_query(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(conn)?;
    diesel::sql_query(format!("CREATE SCHEMA {schema}")).execute(conn)?;
    let bulk = projection.bulk_replay();
    // Deferred statements of the tables the replay fills, and of those `finish_replay` fills.
    let (mut replayed, mut finished) = (Vec::new(), Vec::new());
    for table in projection.tables() {
        diesel::sql_query(format!(
            "CREATE TABLE {schema}.{t} (LIKE {live}.{t} INCLUDING ALL)",
            t = quote_ident(table),
            live = quote_ident(live),
        ))
        .execute(conn)?;
        if let Some(bulk) = bulk.filter(|b| b.defer_indexes()) {
            if bulk.filled_at_finish().contains(table) {
                finished.extend(defer_indexes(conn, &schema, table, true)?);
            } else {
                replayed.extend(defer_indexes(conn, &schema, table, false)?);
            }
        }
    }
    // The replay reads the log by type and position: plan it with statistics that describe the
    // log, whether or not autovacuum ever ran (a store after a bulk load has none).
    crate::db::analyze_if_stale(conn, "events")?;
    let total: Count =
        diesel::sql_query("SELECT count(*) AS n FROM events WHERE event_type = ANY($1)")
            .bind::<diesel::sql_types::Array<Text>, _>(
                projection
                    .handles()
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .get_result(conn)?;
    step(Phase::Replaying, 0, total.n as u64, 0);
    let search_path = format!("SET LOCAL search_path TO {schema}, {}", quote_ident(live));
    let mut cursor = Cursor::START;
    let mut done = 0u64;
    let mut waited_since: Option<std::time::Instant> = None;
    loop {
        let applied = conn.transaction(|conn| -> Result<Option<Cursor>, ShadowError> {
            diesel::sql_query(&search_path).execute(conn)?;
            // A lost batch of a shadow is rebuilt anyway: no need to wait for the disk.
            diesel::sql_query("SET LOCAL synchronous_commit TO off").execute(conn)?;
            let apply_error = |source| ShadowError::Apply {
                name: name.to_owned(),
                source,
            };
            let mut until = until;
            if let Some(bulk) = bulk.filter(|b| b.replays_in_database()) {
                let Some((upto, n)) = subscriber::committed_range_after(
                    conn,
                    cursor,
                    until,
                    projection.handles(),
                    batch_size,
                )?
                else {
                    return Ok(None);
                };
                let range = ReplayRange {
                    after: cursor,
                    upto,
                };
                if bulk
                    .can_replay_in_database(conn, &range)
                    .map_err(apply_error)?
                {
                    bulk.replay_range(conn, &range).map_err(apply_error)?;
                    done += n;
                    return Ok(Some(upto));
                }
                // Replayed by the application instead: the same events.
                until = Some(upto);
            }
            let batch = subscriber::read_committed_after(
                conn,
                cursor,
                until,
                Some(projection.handles()),
                batch_size,
            )?;
            let Some(last) = batch.last() else {
                return Ok(None);
            };
            let refs: Vec<&RecordedEvent> = batch.iter().collect();
            match bulk {
                Some(bulk) => bulk.replay_batch(conn, &refs),
                None => projection.apply_batch(conn, &refs),
            }
            .map_err(apply_error)?;
            done += batch.len() as u64;
            Ok(Some(Cursor::of(last)))
        })?;
        let Some(next) = applied else {
            // Nothing more is safe to read. If committed events remain (a transaction open
            // elsewhere on the server holds the snapshot's xmin back), wait for it rather than
            // replaying them all in the swap, which holds the live tables locked.
            let waiting = waited_since.get_or_insert_with(std::time::Instant::now);
            let more = subscriber::read_visible_after(conn, cursor, Some(projection.handles()), 1)?;
            let beyond = match (until, more.first()) {
                (_, None) => false,
                (Some(until), Some(e)) => subscriber::Cursor::of(e) <= until,
                (None, Some(_)) => true,
            };
            if beyond && waiting.elapsed() < MAX_WAIT_FOR_XMIN {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            break;
        };
        waited_since = None;
        cursor = next;
        step(
            Phase::Replaying,
            done,
            (total.n as u64).max(done),
            cursor.position,
        );
    }
    step(Phase::Indexing, done, done, cursor.position);
    // Complete what the replay left out, then build the deferred indexes (before any incremental
    // apply of newer events, which may read through them).
    finish(conn, helper, projection, &search_path, replayed, finished)?;
    // (Unlogged shadow tables made logged before the swap measured slower: `SET LOGGED` rewrites
    // the whole table.)
    Ok((cursor, done))
}

/// Drop the shadow table's indexes that back no constraint and are not unique (and with
/// `constraints` its primary key and unique constraints too), returning the statements that
/// build each one again once the replay is done.
fn defer_indexes(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
    constraints: bool,
) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Constraint {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        def: String,
    }
    let qualified = format!("{schema}.{}", quote_ident(table));
    let mut deferred = Vec::new();
    if constraints {
        let keys: Vec<Constraint> = diesel::sql_query(
            "SELECT conname::text AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u') ORDER BY conname",
        )
        .bind::<Text, _>(&qualified)
        .load(conn)?;
        for k in keys {
            let name = quote_ident(&k.name);
            diesel::sql_query(format!("ALTER TABLE {qualified} DROP CONSTRAINT {name}"))
                .execute(conn)?;
            deferred.push(format!(
                "ALTER TABLE {qualified} ADD CONSTRAINT {name} {}",
                k.def
            ));
        }
    }
    let rows = index_defs(conn, &qualified)?
        .into_iter()
        .filter(|i| !i.backs_constraint && !i.def.starts_with("CREATE UNIQUE"));
    for r in rows {
        if let Some((_, body)) = r.def.split_once(" USING ") {
            diesel::sql_query(format!("DROP INDEX {schema}.{}", quote_ident(&r.name)))
                .execute(conn)?;
            deferred.push(format!("CREATE INDEX ON {qualified} USING {body}"));
        }
    }
    Ok(deferred)
}

/// The statements that build a shadow's deferred indexes and keys, as work for one or two
/// connections: those of the tables the replay filled may run while `finish_replay` fills the
/// others; those of the tables it fills, once it has committed.
struct IndexBuilds {
    state: std::sync::Mutex<IndexQueue>,
    changed: std::sync::Condvar,
}

struct IndexQueue {
    replayed: std::collections::VecDeque<String>,
    finished: std::collections::VecDeque<String>,
    /// `finish_replay` has committed: the `finished` statements may run.
    released: bool,
    /// A statement or `finish_replay` failed: the rest is not run.
    failed: bool,
}

impl IndexBuilds {
    fn new(replayed: Vec<String>, finished: Vec<String>) -> IndexBuilds {
        IndexBuilds {
            state: std::sync::Mutex::new(IndexQueue {
                replayed: replayed.into(),
                finished: finished.into(),
                released: false,
                failed: false,
            }),
            changed: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexQueue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After `finish_replay`: its tables may be indexed now, or (when it failed) nothing more.
    fn release(&self, finished: bool) {
        let mut q = self.lock();
        q.released = finished;
        q.failed |= !finished;
        self.changed.notify_all();
    }

    /// Run statements on `conn` until none is left (or another connection failed).
    fn run(&self, conn: &mut PgConnection) -> QueryResult<()> {
        loop {
            let statement = {
                let mut q = self.lock();
                loop {
                    if q.failed {
                        return Ok(());
                    }
                    if let Some(s) = q.replayed.pop_front() {
                        break s;
                    }
                    if q.released {
                        match q.finished.pop_front() {
                            Some(s) => break s,
                            None => return Ok(()),
                        }
                    }
                    q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            if let Err(e) = diesel::sql_query(&statement).execute(conn) {
                self.lock().failed = true;
                self.changed.notify_all();
                return Err(e);
            }
        }
    }
}

/// Complete the shadow after its last batch: `finish_replay`, then the deferred indexes. With a
/// `helper` connection, the indexes of the tables the replay filled are built on it while
/// `finish_replay` runs, and both connections then share the rest (PostgreSQL runs each
/// statement on one core, index builds on two at most).
fn finish(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    search_path: &str,
    replayed: Vec<String>,
    finished: Vec<String>,
) -> Result<(), ShadowError> {
    let finish_replay = |conn: &mut PgConnection| -> Result<(), ShadowError> {
        diesel::sql_query(search_path).execute(conn)?;
        let Some(bulk) = projection.bulk_replay() else {
            return Ok(());
        };
        bulk.finish_replay(conn)
            .map_err(|source| ShadowError::Apply {
                name: projection.name().to_owned(),
                source,
            })
    };
    let Some(helper) = helper else {
        return conn.transaction(|conn| -> Result<(), ShadowError> {
            finish_replay(conn)?;
            for statement in replayed.iter().chain(&finished) {
                diesel::sql_query(statement).execute(conn)?;
            }
            Ok(())
        });
    };
    let builds = IndexBuilds::new(replayed, finished);
    std::thread::scope(|scope| {
        let helping = scope.spawn(|| builds.run(helper));
        let main = conn.transaction(finish_replay);
        builds.release(main.is_ok());
        let main = main.and_then(|()| Ok(builds.run(conn)?));
        let helped = helping
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        main.and(helped.map_err(ShadowError::from))
    })
}

/// Apply every visible event after `cursor` to the shadow (search_path already set); only
/// correct while the live tables are locked against writers.
fn apply_visible_after(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    mut cursor: Cursor,
    batch_size: i64,
) -> Result<(Cursor, u64), ShadowError> {
    let mut done = 0;
    loop {
        let batch =
            subscriber::read_visible_after(conn, cursor, Some(projection.handles()), batch_size)?;
        let Some(last) = batch.last() else {
            return Ok((cursor, done));
        };
        cursor = Cursor::of(last);
        done += batch.len() as u64;
        let refs: Vec<&RecordedEvent> = batch.iter().collect();
        projection
            .apply_batch(conn, &refs)
            .map_err(|source| ShadowError::Apply {
                name: projection.name().to_owned(),
                source,
            })?;
    }
}

/// Apply events after `from` up to `to` (both final) to the shadow.
fn apply_between(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    mut from: Cursor,
    to: Cursor,
    batch_size: i64,
) -> Result<Cursor, ShadowError> {
    loop {
        let batch = subscriber::read_committed_after(
            conn,
            from,
            Some(to),
            Some(projection.handles()),
            batch_size,
        )?;
        let Some(last) = batch.last() else {
            return Ok(from);
        };
        from = Cursor::of(last);
        let refs: Vec<&RecordedEvent> = batch.iter().collect();
        projection
            .apply_batch(conn, &refs)
            .map_err(|source| ShadowError::Apply {
                name: projection.name().to_owned(),
                source,
            })?;
    }
}

fn lock_live(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    live: &str,
    mode: &str,
) -> QueryResult<()> {
    let tables: Vec<String> = projection
        .tables()
        .iter()
        .map(|t| format!("{}.{}", quote_ident(live), quote_ident(t)))
        .collect();
    diesel::sql_query(format!("LOCK TABLE {} IN {mode} MODE", tables.join(", "))).execute(conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct IndexDef {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    def: String,
    /// It backs a constraint (primary key, unique, exclusion).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    backs_constraint: bool,
}

/// The indexes of a table (`schema.table`), by name.
fn index_defs(conn: &mut PgConnection, qualified: &str) -> QueryResult<Vec<IndexDef>> {
    diesel::sql_query(
        "SELECT c.relname::text AS name, pg_get_indexdef(i.indexrelid) AS def, \
         EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) AS backs_constraint \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = to_regclass($1) ORDER BY c.relname",
    )
    .bind::<Text, _>(qualified)
    .load(conn)
}

fn indexes(conn: &mut PgConnection, qualified: &str) -> QueryResult<Vec<(String, String)>> {
    let rows = index_defs(conn, qualified)?;
    // An index is the same when it is unique or not alike and indexes the same expressions.
    Ok(rows
        .into_iter()
        .map(|r| {
            let unique = r.def.starts_with("CREATE UNIQUE");
            let body = r
                .def
                .split_once(" USING ")
                .map_or("", |(_, b)| b)
                .to_owned();
            (r.name, format!("{unique}:{body}"))
        })
        .collect())
}

fn row_count(conn: &mut PgConnection, projection: &dyn Projection, live: &str) -> QueryResult<i64> {
    let mut rows = 0;
    for t in projection.tables() {
        let c: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {}.{}",
            quote_ident(live),
            quote_ident(t)
        ))
        .get_result(conn)?;
        rows += c.n;
    }
    Ok(rows)
}

/// Rebuild a projection from the whole log into shadow tables and swap them in atomically.
/// `catch_up`: the projection is run by a catch-up subscriber (its checkpoint is set to the end of
/// the replay in the swap transaction) rather than inline. `helper`: a second connection to the
/// same database, which builds indexes alongside `conn` at the end of the replay.
pub fn rebuild(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    catch_up: bool,
    batch_size: i64,
    mut on_progress: impl FnMut(ShadowProgress),
) -> Result<RebuildReport, ShadowError> {
    under_shadow_lock(conn, projection, |conn| {
        rebuild_locked(
            conn,
            helper,
            projection,
            catch_up,
            batch_size,
            &mut on_progress,
        )
    })
}

/// Run `f` holding the projection's shadow lock, then drop its shadow schema (what a failed
/// rebuild or any verify leaves; a rebuild's swap already dropped it).
fn under_shadow_lock<T>(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, ShadowError>,
) -> Result<T, ShadowError> {
    let name = projection.name();
    if projection.tables().is_empty() {
        return Err(ShadowError::NoTables(name.to_owned()));
    }
    let lock = ShadowLock::take(conn, name)?;
    let result = f(conn);
    let _ = diesel::sql_query(format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(&shadow_schema(name))
    ))
    .execute(conn);
    lock.release(conn);
    result
}

fn rebuild_locked(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    catch_up: bool,
    batch_size: i64,
    on_progress: &mut dyn FnMut(ShadowProgress),
) -> Result<RebuildReport, ShadowError> {
    let name = projection.name();
    let live = live_schema(conn)?;
    let shadow = shadow_schema(name);
    let (cursor, replayed) = build(
        conn,
        helper,
        projection,
        &live,
        None,
        batch_size,
        on_progress,
    )?;
    let mut step = |phase| {
        on_progress(ShadowProgress {
            phase,
            events_done: replayed,
            events_total: replayed,
            position: cursor.position,
        })
    };
    step(Phase::Analyzing);
    // The tables go live with statistics (new tables have none, and where autovacuum is off no
    // page that reads them would ever be planned with any), gathered before the swap's lock.
    for table in projection.tables() {
        diesel::sql_query(format!(
            "ANALYZE {}.{}",
            quote_ident(&shadow),
            quote_ident(table)
        ))
        .execute(conn)?;
    }
    step(Phase::Swapping);
    let (events, cursor) = without_queueing(conn, name, |conn| {
        // A catch-up subscriber locks its checkpoint row, then writes the tables: take them in
        // the same order (the row first), or a subscriber mid-batch and this swap deadlock.
        if catch_up {
            subscriber::set_checkpoint(conn, name, cursor)?;
        }
        lock_live(conn, projection, &live, "ACCESS EXCLUSIVE")?;
        // Locked: nothing below waits for another session.
        diesel::sql_query("SET LOCAL lock_timeout = 0").execute(conn)?;
        diesel::sql_query(format!(
            "SET LOCAL search_path TO {}, {}",
            quote_ident(&shadow),
            quote_ident(&live)
        ))
        .execute(conn)?;
        let (cursor, late) = if catch_up {
            (cursor, 0)
        } else {
            // Every writer that touched the live tables has committed (the lock waited for
            // them); any other one will write the new tables after the swap.
            apply_visible_after(conn, projection, cursor, batch_size)?
        };
        for table in projection.tables() {
            let live_t = format!("{}.{}", quote_ident(&live), quote_ident(table));
            let shadow_t = format!("{}.{}", quote_ident(&shadow), quote_ident(table));
            let old = indexes(conn, &live_t)?;
            diesel::sql_query(format!("DROP TABLE {live_t}")).execute(conn)?;
            diesel::sql_query(format!(
                "ALTER TABLE {shadow_t} SET SCHEMA {}",
                quote_ident(&live)
            ))
            .execute(conn)?;
            let mut old = old;
            for (new_name, key) in indexes(conn, &live_t)? {
                if let Some(i) = old.iter().position(|(_, k)| *k == key) {
                    let (old_name, _) = old.remove(i);
                    if old_name != new_name {
                        diesel::sql_query(format!(
                            "ALTER INDEX {}.{} RENAME TO {}",
                            quote_ident(&live),
                            quote_ident(&new_name),
                            quote_ident(&old_name)
                        ))
                        .execute(conn)?;
                    }
                }
            }
        }
        diesel::sql_query(format!("DROP SCHEMA {} CASCADE", quote_ident(&shadow))).execute(conn)?;
        diesel::sql_query("SET LOCAL search_path TO DEFAULT").execute(conn)?;
        Ok((replayed + late, cursor))
    })?;
    // Counted once the swap has committed: a count inside it would hold every reader of the
    // tables on the exclusive lock for as long as it reads them.
    let rows = row_count(conn, projection, &live)?;
    Ok(RebuildReport {
        events,
        cursor,
        rows,
    })
}

/// How long a swap's tries wait for their locks before the last try, which waits as long as it
/// takes.
const SWAP_PATIENCE: Duration = Duration::from_secs(30);

/// Run the swap transaction `f`, whose exclusive lock request would otherwise queue behind a long
/// read of the live tables and hold every reader and writer that comes after it until that read
/// ends: each try waits a short while for its locks (100 ms, doubling up to 2 s), gives up and
/// tries again, and only after [`SWAP_PATIENCE`] does a last try wait as long as it takes.
fn without_queueing<T>(
    conn: &mut PgConnection,
    name: &str,
    mut f: impl FnMut(&mut PgConnection) -> Result<T, ShadowError>,
) -> Result<T, ShadowError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let patient = started.elapsed() < SWAP_PATIENCE;
        let outcome = conn.transaction(|conn| {
            if patient {
                diesel::sql_query(format!("SET LOCAL lock_timeout = {}", wait.as_millis()))
                    .execute(conn)?;
            }
            f(conn)
        });
        match outcome {
            Err(ShadowError::Database(e)) if patient && crate::db::is_lock_timeout(&e) => {
                tracing::info!(
                    projection = name,
                    waited_ms = wait.as_millis() as u64,
                    "the swap waits for readers of the live tables; trying again"
                );
                std::thread::sleep(wait / 2);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Rebuild a projection into shadow tables and report every row that differs from the live
/// tables (empty when the read model equals a rebuild). The live tables are not changed.
/// `helper` as for [`rebuild`].
pub fn verify(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    catch_up: bool,
    batch_size: i64,
    mut on_progress: impl FnMut(ShadowProgress),
) -> Result<Vec<Difference>, ShadowError> {
    under_shadow_lock(conn, projection, |conn| {
        verify_locked(
            conn,
            helper,
            projection,
            catch_up,
            batch_size,
            &mut on_progress,
        )
    })
}

fn verify_locked(
    conn: &mut PgConnection,
    helper: Option<&mut PgConnection>,
    projection: &dyn Projection,
    catch_up: bool,
    batch_size: i64,
    on_progress: &mut dyn FnMut(ShadowProgress),
) -> Result<Vec<Difference>, ShadowError> {
    let name = projection.name();
    let live = live_schema(conn)?;
    let shadow = shadow_schema(name);
    // A catch-up projection is compared at its checkpoint, which only moves forward: replay no
    // further than where it is now.
    let until = if catch_up {
        Some(subscriber::checkpoint(conn, name)?.unwrap_or(Cursor::START))
    } else {
        None
    };
    let (cursor, replayed) = build(
        conn,
        helper,
        projection,
        &live,
        until,
        batch_size,
        on_progress,
    )?;
    on_progress(ShadowProgress {
        phase: Phase::Comparing,
        events_done: replayed,
        events_total: replayed,
        position: cursor.position,
    });
    let mut differences = Vec::new();
    let outcome = conn.transaction(|conn| -> Result<(), ShadowError> {
        if catch_up {
            // Hold the subscriber still, then bring the shadow to its checkpoint.
            let now: (i64, i64) = crate::schema::subscriber_checkpoints::table
                .find(name)
                .select((
                    crate::schema::subscriber_checkpoints::last_transaction_id,
                    crate::schema::subscriber_checkpoints::last_position,
                ))
                .for_update()
                .first(conn)
                .optional()?
                .unwrap_or((0, 0));
            diesel::sql_query(format!(
                "SET LOCAL search_path TO {}, {}",
                quote_ident(&shadow),
                quote_ident(&live)
            ))
            .execute(conn)?;
            let to = Cursor {
                transaction_id: now.0,
                position: now.1,
            };
            apply_between(conn, projection, cursor, to, batch_size)?;
        } else {
            // Writers wait (readers do not) while the shadow catches up and is compared.
            lock_live(conn, projection, &live, "SHARE")?;
            diesel::sql_query(format!(
                "SET LOCAL search_path TO {}, {}",
                quote_ident(&shadow),
                quote_ident(&live)
            ))
            .execute(conn)?;
            apply_visible_after(conn, projection, cursor, batch_size)?;
        }
        for table in projection.tables() {
            let live_t = format!("{}.{}", quote_ident(&live), quote_ident(table));
            let shadow_t = format!("{}.{}", quote_ident(&shadow), quote_ident(table));
            differences.extend(diff(conn, table, &live_t, &shadow_t)?);
        }
        // Nothing of this transaction is kept.
        Err(ShadowError::Database(
            diesel::result::Error::RollbackTransaction,
        ))
    });
    match outcome {
        Err(ShadowError::Database(diesel::result::Error::RollbackTransaction)) | Ok(()) => {
            Ok(differences)
        }
        Err(e) => Err(e),
    }
}

#[derive(QueryableByName)]
struct DiffRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    row: String,
}

/// Rows of `expected` missing from `live` and rows of `live` not in `expected` (with multiplicity).
fn diff(
    conn: &mut PgConnection,
    table: &str,
    live: &str,
    expected: &str,
) -> QueryResult<Vec<Difference>> {
    let rows: Vec<DiffRow> = diesel::sql_query(format!(
        "(SELECT 'missing' AS kind, row_to_json(d)::text AS row \
           FROM (SELECT * FROM {expected} EXCEPT ALL SELECT * FROM {live}) d) \
         UNION ALL \
         (SELECT 'unexpected' AS kind, row_to_json(d)::text AS row \
           FROM (SELECT * FROM {live} EXCEPT ALL SELECT * FROM {expected}) d) \
         ORDER BY 1, 2 LIMIT 10000"
    ))
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Difference {
            table: table.to_owned(),
            kind: r.kind,
            row: r.row,
        })
        .collect())
}
