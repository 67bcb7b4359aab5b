//! Read replicas (`HEYBOSS_REPLICA_URL`, several separated by commas): PostgreSQL streaming
//! replicas that serve the read-only pages (threat reports, the audit log, histories, CSV
//! exports). Commands, sessions, checkpoints and advisory locks stay on the primary: a replica
//! cannot write, and advisory locks and snapshots are per server.
//!
//! Reading your own writes: after a state-changing request the frame sets the `heyboss_wrote`
//! cookie to the primary's WAL position at that moment ([`Lsn`]). A read for that browser goes to a
//! replica only once the replica has replayed that position, waiting at most [`WAIT`]; after that it
//! reads the primary. A replica that fails (stopped, unreachable, a query cancelled by recovery) is
//! left alone for [`REST`] and its reads go to the primary, so a stopped replica costs no error.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::PgConnection;

use crate::db::{PgPool, PgPooled, PoolOptions};

/// Longest a read waits for a replica to replay the browser's own last write.
pub const WAIT: Duration = Duration::from_millis(500);
/// How long a failed replica is left alone before it is tried again.
pub const REST: Duration = Duration::from_secs(5);
/// The cookie holding the WAL position of the browser's last write.
pub const WROTE_COOKIE: &str = "heyboss_wrote";

/// A WAL position (`pg_lsn`), written `X/Y` in hexadecimal as PostgreSQL writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = ();
    fn from_str(s: &str) -> Result<Lsn, ()> {
        let (hi, lo) = s.split_once('/').ok_or(())?;
        let hi = u64::from_str_radix(hi, 16).map_err(|_| ())?;
        let lo = u64::from_str_radix(lo, 16).map_err(|_| ())?;
        if hi > u32::MAX as u64 || lo > u32::MAX as u64 {
            return Err(());
        }
        Ok(Lsn(hi << 32 | lo))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

fn position(conn: &mut PgConnection, sql: &str) -> QueryResult<Option<Lsn>> {
    let p = diesel::sql_query(sql).get_result::<Position>(conn)?;
    Ok(p.lsn.and_then(|s| s.parse().ok()))
}

/// The primary's current WAL position: what a replica must have replayed to show every commit
/// made so far.
pub fn primary_position(conn: &mut PgConnection) -> QueryResult<Option<Lsn>> {
    position(conn, "SELECT pg_current_wal_lsn()::text AS lsn")
}

/// What a replica has replayed (None on a server that is not in recovery).
pub fn replayed_position(conn: &mut PgConnection) -> QueryResult<Option<Lsn>> {
    position(conn, "SELECT pg_last_wal_replay_lsn()::text AS lsn")
}

struct Replica {
    /// `host:port/database`, without user or password: safe in metrics and pages.
    label: String,
    pool: PgPool,
    resting_until: Mutex<Option<Instant>>,
}

impl Replica {
    fn resting(&self) -> bool {
        let mut until = self.resting_until.lock().unwrap();
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    fn rest(&self, why: &dyn fmt::Display) {
        tracing::warn!(replica = %self.label, error = %why, "replica failed; reading the primary for a while");
        *self.resting_until.lock().unwrap() = Some(Instant::now() + REST);
    }
}

/// Why a read went where it went (counted in `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Replica,
    /// No replica configured.
    PrimaryOnly,
    /// The replica had not replayed the browser's last write within [`WAIT`].
    PrimaryReplicaBehind,
    /// Every replica was failing (or resting after a failure).
    PrimaryReplicaDown,
}

impl Served {
    pub const ALL: [Served; 4] = [
        Served::Replica,
        Served::PrimaryOnly,
        Served::PrimaryReplicaBehind,
        Served::PrimaryReplicaDown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Served::Replica => "replica",
            Served::PrimaryOnly => "primary_no_replica",
            Served::PrimaryReplicaBehind => "primary_replica_behind",
            Served::PrimaryReplicaDown => "primary_replica_down",
        }
    }
}

static SERVED: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

pub fn count(served: Served) {
    SERVED[served as usize].fetch_add(1, Ordering::Relaxed);
}

/// Reads served so far, by where they went.
pub fn served_counts() -> Vec<(Served, u64)> {
    Served::ALL
        .iter()
        .map(|s| (*s, SERVED[*s as usize].load(Ordering::Relaxed)))
        .collect()
}

/// The replicas of one application (none when `HEYBOSS_REPLICA_URL` is unset).
#[derive(Default)]
pub struct Replicas {
    members: Vec<Replica>,
    next: AtomicUsize,
}

/// One replica's state for `/metrics` and the projections page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplicaLag {
    pub replica: String,
    pub up: bool,
    /// WAL bytes the replica has still to replay (None when it is down).
    pub lag_bytes: Option<u64>,
    /// Seconds since the last transaction it replayed was committed, when it is behind.
    pub lag_seconds: Option<f64>,
}

#[derive(QueryableByName)]
struct Seconds {
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    seconds: Option<f64>,
}

/// `postgres://user:secret@host:port/db?x` -> `host:port/db`.
fn label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

impl Replicas {
    /// Pools for the replicas at `urls`. A replica that is down at start is no error: its reads go
    /// to the primary until it answers.
    pub fn connect(urls: &[String], pool_size: u32) -> Replicas {
        let members = urls
            .iter()
            .filter_map(|url| {
                let mut options = PoolOptions::new(pool_size);
                options.min_idle = Some(0);
                // A replica that does not answer quickly is treated as down: the primary is there.
                options.connection_timeout = Duration::from_millis(500);
                match crate::db::pool_with(url, options) {
                    Ok(pool) => Some(Replica {
                        label: label(url),
                        pool,
                        resting_until: Mutex::new(None),
                    }),
                    Err(e) => {
                        tracing::error!(replica = %label(url), error = %e, "replica pool not made");
                        None
                    }
                }
            })
            .collect();
        Replicas {
            members,
            next: AtomicUsize::new(0),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn labels(&self) -> Vec<String> {
        self.members.iter().map(|r| r.label.clone()).collect()
    }

    /// A connection to a replica that has replayed `wrote` (the browser's last write), or why the
    /// read must go to the primary. Blocking: call it off the async executor.
    pub fn checkout(&self, wrote: Option<Lsn>) -> Result<PgPooled, Served> {
        if self.members.is_empty() {
            return Err(Served::PrimaryOnly);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut behind = false;
        for i in 0..self.members.len() {
            let index = (start + i) % self.members.len();
            let replica = &self.members[index];
            if replica.resting() {
                continue;
            }
            let mut conn = match replica.pool.get() {
                Ok(c) => c,
                Err(e) => {
                    replica.rest(&e);
                    continue;
                }
            };
            let Some(wrote) = wrote else {
                return Ok(conn);
            };
            let deadline = Instant::now() + WAIT;
            loop {
                match replayed_position(&mut conn) {
                    // Promoted (no longer replaying): it has everything the old primary had.
                    Ok(None) => return Ok(conn),
                    Ok(Some(replayed)) if replayed >= wrote => return Ok(conn),
                    Ok(Some(_)) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Ok(Some(_)) => {
                        behind = true;
                        break;
                    }
                    Err(e) => {
                        replica.rest(&e);
                        break;
                    }
                }
            }
        }
        Err(if behind {
            Served::PrimaryReplicaBehind
        } else {
            Served::PrimaryReplicaDown
        })
    }

    /// Each replica's lag behind the primary, as of now.
    pub fn lag(&self, primary: &mut PgConnection) -> Vec<ReplicaLag> {
        let head = primary_position(primary).ok().flatten();
        self.members
            .iter()
            .map(|replica| {
                let measured = (|| -> Option<(u64, Option<f64>)> {
                    if replica.resting() {
                        return None;
                    }
                    let mut conn = replica.pool.get().ok()?;
                    let replayed = replayed_position(&mut conn).ok()?;
                    let bytes = match (head, replayed) {
                        (Some(h), Some(r)) => h.0.saturating_sub(r.0),
                        _ => 0,
                    };
                    // The replay timestamp is of the last commit replayed: it says how old the
                    // replica's view is only while it is behind.
                    let seconds = if bytes > 0 {
                        diesel::sql_query(
                            "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS seconds",
                        )
                        .get_result::<Seconds>(&mut conn)
                        .ok()
                        .and_then(|s| s.seconds)
                    } else {
                        Some(0.0)
                    };
                    Some((bytes, seconds))
                })();
                ReplicaLag {
                    replica: replica.label.clone(),
                    up: measured.is_some(),
                    lag_bytes: measured.map(|m| m.0),
                    lag_seconds: measured.and_then(|m| m.1),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_positions_read_and_compare_as_postgresql_writes_them() {
        let a: Lsn = "0/3000148".parse().unwrap();
        let b: Lsn = "1/0".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "0/3000148");
        assert_eq!(b.0, 1 << 32);
        assert!("".parse::<Lsn>().is_err());
        assert!("0/zz".parse::<Lsn>().is_err());
        assert!("100000000/0".parse::<Lsn>().is_err());
    }

    #[test]
    fn replica_labels_never_carry_credentials() {
        assert_eq!(
            label("postgres://u:secret@db2:5433/heyboss?sslmode=require"),
            "db2:5433/heyboss"
        );
        assert_eq!(label("postgres://db2/heyboss"), "db2/heyboss");
    }
}
