//! What autovacuum does for a store, done by the store where autovacuum will not: after a bulk
//! load, an import or a rebuild on a server with `autovacuum = off` (or a table with
//! `autovacuum_enabled = false`), nothing sets the tables' visibility maps or gathers their
//! statistics, and reads that should be index-only fetch every row from the heap instead (the
//! threat reports' bounded ranges, docs/BENCHMARKS.md "Time ranges").
//!
//! [`vacuum_due`] picks the tables of the store's schema that autovacuum leaves alone and that
//! autovacuum would have vacuumed or analyzed by now, by the server's own thresholds
//! (`autovacuum_vacuum_threshold` and `_scale_factor`, their `_insert_` twins, and
//! `autovacuum_analyze_*`), and runs `VACUUM` / `ANALYZE` on each, throttled as autovacuum is
//! (`autovacuum_vacuum_cost_delay`). Where autovacuum runs, it finds nothing to do: a second
//! vacuum would only cancel autovacuum's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::db::quote_ident;

/// A table autovacuum leaves alone, and what it needs.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Due {
    #[diesel(sql_type = Text)]
    pub table: String,
    /// Rows inserted since its last vacuum, and dead rows.
    #[diesel(sql_type = BigInt)]
    pub inserted: i64,
    #[diesel(sql_type = BigInt)]
    pub dead: i64,
    /// Past autovacuum's vacuum threshold (else only its analyze threshold).
    #[diesel(sql_type = Bool)]
    pub vacuum: bool,
}

/// The tables of the current schema that autovacuum leaves alone and that have passed one of its
/// thresholds since their last vacuum or analyze, largest change first.
pub fn due(conn: &mut PgConnection) -> QueryResult<Vec<Due>> {
    diesel::sql_query(include_str!("sql/upkeep_due.sql")).load(conn)
}

/// What one pass did to one table.
#[derive(Debug, Clone)]
pub struct Done {
    pub table: String,
    /// `VACUUM (ANALYZE)` (true) or `ANALYZE` alone.
    pub vacuumed: bool,
    pub took: Duration,
    /// Its pages, and those the visibility map does not mark all-visible, after it.
    pub pages: i64,
    pub pages_not_visible: i64,
}

impl Done {
    /// A vacuum that left most of a table's pages not all-visible: a snapshot older than its
    /// newest rows was still open (a long transaction, or a replica's `hot_standby_feedback`,
    /// which holds back the horizon for up to `wal_receiver_status_interval`), so the rows of a
    /// load that just ended could not be marked. Its insert count is back to zero, so nothing
    /// would look at the table again until it grows by another fifth: worth one more try.
    pub fn left_pages_unmarked(&self) -> bool {
        self.vacuumed && self.pages >= 64 && self.pages_not_visible * 2 > self.pages
    }
}

/// Vacuum (and analyze) or analyze every table [`due`] lists, and vacuum each of `again` (tables
/// an earlier pass vacuumed too soon, [`Done::left_pages_unmarked`]), throttled by autovacuum's
/// cost delay. Outside any transaction (`VACUUM` cannot run in one).
pub fn vacuum_due(conn: &mut PgConnection, again: &[String]) -> QueryResult<Vec<Done>> {
    // The cost limit stays the server's `vacuum_cost_limit`, which autovacuum uses by default.
    diesel::sql_query(
        "SELECT set_config('vacuum_cost_delay', \
                current_setting('autovacuum_vacuum_cost_delay'), false)",
    )
    .execute(conn)?;
    let mut work: Vec<(String, bool)> = due(conn)?
        .into_iter()
        .map(|d| (d.table, d.vacuum))
        .collect();
    for table in again {
        match work.iter_mut().find(|(t, _)| t == table) {
            Some((_, vacuum)) => *vacuum = true,
            None => work.push((table.clone(), true)),
        }
    }
    let mut done = Vec::new();
    for (table, vacuum) in work {
        let started = Instant::now();
        let statement = if vacuum {
            "VACUUM (ANALYZE)"
        } else {
            "ANALYZE"
        };
        diesel::sql_query(format!("{statement} {}", quote_ident(&table))).execute(conn)?;
        let took = started.elapsed();
        let Some(pages) = pages_of(conn, &table)? else {
            continue; // dropped meanwhile (a rebuild's swap)
        };
        done.push(Done {
            table,
            vacuumed: vacuum,
            took,
            pages: pages.pages,
            pages_not_visible: pages.pages - pages.all_visible.min(pages.pages),
        });
    }
    Ok(done)
}

#[derive(QueryableByName)]
struct Pages {
    #[diesel(sql_type = BigInt)]
    pages: i64,
    #[diesel(sql_type = BigInt)]
    all_visible: i64,
}

fn pages_of(conn: &mut PgConnection, table: &str) -> QueryResult<Option<Pages>> {
    diesel::sql_query(
        "SELECT relpages::int8 AS pages, relallvisible::int8 AS all_visible FROM pg_class \
         WHERE oid = to_regclass($1)",
    )
    .bind::<Text, _>(quote_ident(table))
    .get_result(conn)
    .optional()
}

/// A thread that runs `job` every `every` (the first time at once) until stopped: the shape of
/// every upkeep `heyboss serve` runs. `job` answers when to run next when that should be sooner.
pub struct Periodic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Periodic {
    pub fn start(
        every: Duration,
        mut job: impl FnMut() -> Option<Duration> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    next = Instant::now() + every;
                    if let Some(sooner) = job() {
                        next = Instant::now() + every.min(sooner);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Periodic {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What holds back the server's xmin horizon for this database: a replication slot's `xmin`
/// (a replica with `hot_standby_feedback`, which keeps the slot's `xmin` while it is stopped)
/// or another session's snapshot. No vacuum can mark rows newer than the horizon all-visible
/// nor remove rows that died after it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Holder {
    /// `replication slot NAME (inactive)`, `session PID (APPLICATION, STATE)`.
    #[diesel(sql_type = Text)]
    pub holder: String,
    /// How many transactions behind the newest its snapshot is (`age(xmin)`).
    #[diesel(sql_type = BigInt)]
    pub behind: i64,
}

/// Every [`Holder`] of the horizon, the oldest first.
pub fn holding_back(conn: &mut PgConnection) -> QueryResult<Vec<Holder>> {
    diesel::sql_query(
        "SELECT 'replication slot ' || slot_name || CASE WHEN active THEN '' ELSE ' (inactive)' END \
                    AS holder, age(xmin)::int8 AS behind \
         FROM pg_replication_slots WHERE xmin IS NOT NULL \
         UNION ALL \
         SELECT 'session ' || pid || ' (' || coalesce(nullif(application_name, ''), backend_type) \
                    || ', ' || coalesce(state, '') || ')', age(backend_xmin)::int8 \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND backend_xmin IS NOT NULL \
           AND pid <> pg_backend_pid() \
         ORDER BY behind DESC",
    )
    .load(conn)
}

/// Wait (polling, up to `limit`) until no [`Holder`] has a snapshot older than the transactions
/// committed before this call, so that a vacuum can mark their rows all-visible. `None` once
/// that is so; else the oldest holder still in the way when `limit` ran out.
pub fn until_horizon_passes(
    conn: &mut PgConnection,
    limit: Duration,
) -> QueryResult<Option<Holder>> {
    #[derive(QueryableByName)]
    struct Mark {
        #[diesel(sql_type = Text)]
        mark: String,
    }
    let mark =
        diesel::sql_query("SELECT pg_snapshot_xmax(pg_current_snapshot())::xid::text AS mark")
            .get_result::<Mark>(conn)?
            .mark;
    let deadline = Instant::now() + limit;
    loop {
        #[derive(QueryableByName)]
        struct Behind {
            #[diesel(sql_type = BigInt)]
            behind: i64,
        }
        let mark_behind = diesel::sql_query("SELECT age($1::xid)::int8 AS behind")
            .bind::<Text, _>(&mark)
            .get_result::<Behind>(conn)?
            .behind;
        let oldest = holding_back(conn)?.into_iter().next();
        match oldest {
            Some(h) if h.behind > mark_behind => {
                if Instant::now() >= deadline {
                    return Ok(Some(h));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            _ => return Ok(None),
        }
    }
}

/// The advisory lock (session level) that one instance's upkeep pass holds.
pub const UPKEEP_LOCK: i32 = 4_244;

fn try_lock(conn: &mut PgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
        .bind::<diesel::sql_types::Integer, _>(UPKEEP_LOCK)
        .get_result::<Locked>(conn)
        .map(|l| l.locked)
}

/// The tables a pass vacuumed too soon ([`Done::left_pages_unmarked`]), vacuumed once more on
/// this instance's next pass that runs (not one that another instance's lock skipped), once.
#[derive(Debug, Default)]
pub struct Retries(Vec<String>);

impl Retries {
    pub fn tables(&self) -> &[String] {
        &self.0
    }

    /// After a pass that ran: the tables it left unmarked, except those it was already retrying.
    pub fn after_pass(&mut self, done: &[Done]) {
        let tried = std::mem::take(&mut self.0);
        self.0 = done
            .iter()
            .filter(|d| d.left_pages_unmarked() && !tried.contains(&d.table))
            .map(|d| d.table.clone())
            .collect();
    }
}

/// [`vacuum_due`] every `every` over a connection of its own, made for each pass (as the
/// partitions' keeper does, and for the same reason: not one more idle connection in the request
/// pool). Named `heyboss upkeep` in `pg_stat_activity`.
pub fn start(database_url: String, every: Duration) -> Periodic {
    let mut again = Retries::default();
    Periodic::start(every, move || {
        let pass = crate::db::connect(&database_url).map(|mut conn| -> QueryResult<_> {
            diesel::sql_query("SET application_name = 'heyboss upkeep'").execute(&mut conn)?;
            // One instance's pass at a time: a second `VACUUM` of a table would wait for the
            // first and then find nothing to do. The connection's end releases the lock. The
            // tables waiting for a second try wait for this instance's next pass.
            if !try_lock(&mut conn)? {
                return Ok(None);
            }
            let done = vacuum_due(&mut conn, again.tables())?;
            let holder = if done.iter().any(Done::left_pages_unmarked) {
                holding_back(&mut conn)?.into_iter().next()
            } else {
                None
            };
            Ok(Some((done, holder)))
        });
        match pass {
            Ok(Ok(None)) => {}
            Ok(Ok(Some((done, holder)))) => {
                again.after_pass(&done);
                for d in done {
                    tracing::info!(
                        table = %d.table,
                        vacuumed = d.vacuumed,
                        took_ms = d.took.as_millis() as u64,
                        pages = d.pages,
                        pages_not_visible = d.pages_not_visible,
                        "upkeep: autovacuum leaves this table alone, so heyboss vacuumed or analyzed it"
                    );
                    if !d.left_pages_unmarked() {
                        continue;
                    }
                    if let Some(h) = &holder {
                        tracing::warn!(
                            table = %d.table,
                            holder = %h.holder,
                            transactions_behind = h.behind,
                            "upkeep: a vacuum left most pages not all-visible; the oldest snapshot is held by this holder (a stopped replica's slot holds it until the replica runs again or the slot is dropped)"
                        );
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "upkeep"),
            Err(e) => tracing::warn!(error = %e, "upkeep"),
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vacuumed(table: &str, pages_not_visible: i64) -> Done {
        Done {
            table: table.to_owned(),
            vacuumed: true,
            took: Duration::ZERO,
            pages: 100,
            pages_not_visible,
        }
    }

    #[test]
    fn a_table_left_unmarked_is_tried_once_more_on_the_next_pass_that_runs() {
        let mut again = Retries::default();
        again.after_pass(&[vacuumed("hits", 90), vacuumed("sessions", 0)]);
        assert_eq!(again.tables(), ["hits"]);
        // Tried again and still unmarked: not a third time; a new table left unmarked is.
        again.after_pass(&[vacuumed("hits", 90), vacuumed("files", 80)]);
        assert_eq!(again.tables(), ["files"]);
        again.after_pass(&[vacuumed("files", 0)]);
        assert!(again.tables().is_empty());
    }
}
