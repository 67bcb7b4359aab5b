//! The partitions of `events`: ranges of positions (`events_partitioning.partition_size` each,
//! one million by default), a DEFAULT partition for anything beyond the newest, and detaching
//! old partitions to archive them (and attaching them again). The SQL side is in the migration
//! `2026-12-10-400000_partition_events` (`events_add_partition`, `events_ensure_partitions`).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz};

/// One partition, attached or archived.
#[derive(Debug, Clone, QueryableByName)]
pub struct Partition {
    #[diesel(sql_type = Integer)]
    pub number: i32,
    #[diesel(sql_type = Text)]
    pub table: String,
    /// Its positions: from (inclusive) to (exclusive).
    #[diesel(sql_type = BigInt)]
    pub from_position: i64,
    #[diesel(sql_type = BigInt)]
    pub to_position: i64,
    /// The planner's estimate of its rows (exact after an `ANALYZE`).
    #[diesel(sql_type = BigInt)]
    pub rows: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub detached_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("there is no partition {0} (see `heyboss events partitions`)")]
    Unknown(i32),
    #[error("partition {0} is already detached")]
    AlreadyDetached(i32),
    #[error("partition {0} is attached")]
    AlreadyAttached(i32),
    #[error("partition {number} holds positions up to {to}, and the log's newest position is {head}: only partitions entirely below the newest position can be detached")]
    Current { number: i32, to: i64, head: i64 },
    #[error("subscriber {name} has not read past position {position}, inside partition {number}: let it catch up first")]
    Unread {
        number: i32,
        name: String,
        position: i64,
    },
    #[error("the table {0} of the detached partition is gone")]
    Missing(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

/// Make partitions up to one whole partition beyond the newest position (moving any events the
/// DEFAULT partition caught into theirs); how many were made.
pub fn ensure(conn: &mut PgConnection) -> QueryResult<i32> {
    #[derive(QueryableByName)]
    struct Added {
        #[diesel(sql_type = Integer)]
        added: i32,
    }
    diesel::sql_query("SELECT events_ensure_partitions() AS added")
        .get_result::<Added>(conn)
        .map(|a| a.added)
}

/// [`ensure`], giving up after `wait` for a lock instead of queueing for it: making a partition
/// locks `events` exclusively, and a lock request that waits (behind a long read of the log)
/// holds every append and read that comes after it. What the [`Keeper`] runs; it tries again
/// later, and until then appends find the partition made ahead, or the DEFAULT partition.
pub fn ensure_without_queueing(conn: &mut PgConnection, wait: Duration) -> QueryResult<i32> {
    conn.transaction(|conn| {
        diesel::sql_query(format!(
            "SET LOCAL lock_timeout = {}",
            wait.as_millis().max(1)
        ))
        .execute(conn)?;
        ensure(conn)
    })
}

/// Every partition made so far, in position order.
pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Partition>> {
    diesel::sql_query(
        "SELECT p.number, 'events_p' || p.number AS table, p.from_position, p.to_position,
                coalesce(greatest(c.reltuples, 0), 0)::int8 AS rows, p.detached_at
         FROM events_partitions p LEFT JOIN pg_class c ON c.oid = to_regclass('events_p' || p.number)
         ORDER BY p.from_position",
    )
    .load(conn)
}

fn find(conn: &mut PgConnection, number: i32) -> Result<Partition, PartitionError> {
    list(conn)?
        .into_iter()
        .find(|p| p.number == number)
        .ok_or(PartitionError::Unknown(number))
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// Detach partition `number` from the log: its table stays, as it was, for `pg_dump` or
/// cheaper storage, with a range constraint (so that attaching it again needs no scan) and its
/// own append-only trigger. Its events leave the log: stream loads, projection rebuilds and
/// audit pages no longer see them. Only a partition wholly below the newest position, and
/// already read by every catch-up subscriber.
pub fn detach(conn: &mut PgConnection, number: i32) -> Result<Partition, PartitionError> {
    conn.transaction(|conn| {
        let p = find(conn, number)?;
        if p.detached_at.is_some() {
            return Err(PartitionError::AlreadyDetached(number));
        }
        let head = crate::store::head_position(conn)?;
        if p.to_position > head {
            return Err(PartitionError::Current {
                number,
                to: p.to_position - 1,
                head,
            });
        }
        #[derive(QueryableByName)]
        struct Behind {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = BigInt)]
            position: i64,
        }
        let behind: Option<Behind> = diesel::sql_query(
            "SELECT name, last_position AS position FROM subscriber_checkpoints
             WHERE last_position < $1 ORDER BY last_position LIMIT 1",
        )
        .bind::<BigInt, _>(p.to_position - 1)
        .get_result(conn)
        .optional()?;
        if let Some(b) = behind {
            return Err(PartitionError::Unread {
                number,
                name: b.name,
                position: b.position,
            });
        }
        let table = crate::db::quote_ident(&p.table);
        diesel::sql_query(format!("ALTER TABLE events DETACH PARTITION {table}")).execute(conn)?;
        diesel::sql_query(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {} CHECK (position >= {} AND position < {})",
            crate::db::quote_ident(&format!("{}_range", p.table)),
            p.from_position,
            p.to_position
        ))
        .execute(conn)?;
        diesel::sql_query(format!(
            "CREATE TRIGGER events_archive_no_update_or_delete BEFORE UPDATE OR DELETE ON {table}
             FOR EACH ROW EXECUTE FUNCTION events_reject_change()"
        ))
        .execute(conn)?;
        diesel::sql_query("UPDATE events_partitions SET detached_at = now() WHERE number = $1")
            .bind::<Integer, _>(number)
            .execute(conn)?;
        find(conn, number)
    })
}

/// Attach a detached partition again, with the bounds it had: its events are back in the log.
pub fn attach(conn: &mut PgConnection, number: i32) -> Result<Partition, PartitionError> {
    conn.transaction(|conn| {
        let p = find(conn, number)?;
        if p.detached_at.is_none() {
            return Err(PartitionError::AlreadyAttached(number));
        }
        #[derive(QueryableByName)]
        struct Exists {
            #[diesel(sql_type = Bool)]
            exists: bool,
        }
        let exists = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS exists")
            .bind::<Text, _>(&p.table)
            .get_result::<Exists>(conn)?;
        if !exists.exists {
            return Err(PartitionError::Missing(p.table));
        }
        let table = crate::db::quote_ident(&p.table);
        diesel::sql_query(format!(
            "DROP TRIGGER IF EXISTS events_archive_no_update_or_delete ON {table}"
        ))
        .execute(conn)?;
        diesel::sql_query(format!(
            "ALTER TABLE events ATTACH PARTITION {table} FOR VALUES FROM ({}) TO ({})",
            p.from_position, p.to_position
        ))
        .execute(conn)?;
        diesel::sql_query(format!(
            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {}",
            crate::db::quote_ident(&format!("{}_range", p.table))
        ))
        .execute(conn)?;
        diesel::sql_query("UPDATE events_partitions SET detached_at = NULL WHERE number = $1")
            .bind::<Integer, _>(number)
            .execute(conn)?;
        find(conn, number)
    })
}

/// The newest position the log holds in the DEFAULT partition (0: none), which means the
/// partitions fell behind.
pub fn in_default(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query("SELECT coalesce(max(position), 0) AS position FROM events_default")
        .get_result::<Position>(conn)
        .map(|p| p.position)
}

/// How long the keeper waits for the lock that making a partition takes.
const KEEPER_LOCK_WAIT: Duration = Duration::from_millis(200);
/// When the keeper tries again after giving up that wait.
const KEEPER_RETRY: Duration = Duration::from_secs(5);

/// A thread that runs [`ensure_without_queueing`] every `every` until stopped (what `heyboss serve` runs, so
/// that appends find their partition made ahead of them).
pub struct Keeper(crate::upkeep::Periodic);

impl Keeper {
    /// Ensures the partitions over a connection of its own, made for each run (once a minute):
    /// not from the request pool, where one more idle connection would cost a request a 503
    /// after a database outage (an idle connection that answered within the pool's ping interval
    /// is handed out unchecked; tests/ops_drills.rs).
    pub fn start(database_url: String, every: Duration) -> Keeper {
        Keeper(crate::upkeep::Periodic::start(every, move || {
            match crate::db::connect(&database_url)
                .map(|mut c| ensure_without_queueing(&mut c, KEEPER_LOCK_WAIT))
            {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(added = n, "event log partitions made ahead"),
                Ok(Err(e)) if crate::db::is_lock_timeout(&e) => {
                    tracing::info!(
                        "event log partitions: the log is being read, trying again shortly"
                    );
                    // Sooner than `every`: the next partition is still one ahead.
                    return Some(KEEPER_RETRY);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "event log partitions"),
                Err(e) => tracing::warn!(error = %e, "event log partitions"),
            }
            None
        }))
    }

    pub fn stop(&mut self) {
        self.0.stop();
    }
}
