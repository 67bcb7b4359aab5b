//! Projections: read models built from events, applied in the append transaction (inline) and
//! rebuildable from the whole log.

use std::sync::Arc;

use diesel::prelude::*;

use super::event::{DecodeError, RecordedEvent};
use super::store;
use super::subscriber::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event of a stream keyed by a uuid whose stream id is not one: the log holds what its
    /// writer should have refused, which is not a row that is missing.
    #[error("the {stream_type} stream id {stream_id:?} is not a uuid")]
    BadStreamId {
        stream_type: String,
        stream_id: String,
    },
}

/// One read model. It owns its tables; nothing else writes them. The contract is four methods:
/// its name, the event types it handles, the tables it owns and how it applies one event; the
/// rest has defaults. A projection that replays the log faster than event by event also
/// implements [`BulkReplay`] and returns itself from [`Projection::bulk_replay`].
pub trait Projection: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The event types this projection reads; it is never given any other.
    fn handles(&self) -> &'static [&'static str];
    /// The tables it owns, emptied by [`Projection::reset`].
    fn tables(&self) -> &'static [&'static str];
    /// Apply one event with the open connection (inside the caller's transaction).
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError>;

    /// Apply several events in log order. Override to batch statements.
    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        events.iter().try_for_each(|e| self.apply(conn, e))
    }

    /// Its bulk-replay side, if it has one (rebuild, verify and a catch-up start then use it).
    fn bulk_replay(&self) -> Option<&dyn BulkReplay> {
        None
    }

    /// Why this projection must run in the append transaction, when it must (what commands
    /// validate against, or what decides who may see what): naming it in catch-up mode is then
    /// refused ([`Projections::check_catch_up`]).
    fn inline_only(&self) -> Option<&'static str> {
        None
    }

    fn reset(&self, conn: &mut PgConnection) -> QueryResult<()> {
        for table in self.tables() {
            diesel::sql_query(format!("TRUNCATE TABLE {table}")).execute(conn)?;
        }
        Ok(())
    }

    fn handles_type(&self, event_type: &str) -> bool {
        self.handles().contains(&event_type)
    }
}

/// How a projection replays the whole log faster than event by event (rebuild, verify, a
/// catch-up projection's first start). Only the threat reports need it; every method has a
/// default that replays through [`Projection::apply_batch`].
pub trait BulkReplay: Projection {
    /// Apply a batch of a replay. A projection may leave out here what one pass at the end does
    /// for less, such as aggregates it otherwise updates event by event; it completes them in
    /// [`BulkReplay::finish_replay`].
    fn replay_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        self.apply_batch(conn, events)
    }

    /// After the last batch of a replay, before anything reads the tables or applies newer
    /// events to them incrementally.
    fn finish_replay(&self, _conn: &mut PgConnection) -> Result<(), ProjectionError> {
        Ok(())
    }

    /// Whether [`BulkReplay::replay_range`] replays in the database. When it does, a replay into
    /// shadow tables hands it ranges of the log instead of reading the events into the
    /// application.
    fn replays_in_database(&self) -> bool {
        false
    }

    /// Replay the handled events in `range` with statements that read them from `events` in the
    /// database, so that no event crosses the connection or is decoded in the application. The
    /// result must equal [`BulkReplay::replay_batch`] of the same events (`verify` compares the
    /// two, since the live tables are kept by the application path).
    fn replay_range(
        &self,
        _conn: &mut PgConnection,
        _range: &ReplayRange,
    ) -> Result<(), ProjectionError> {
        Err(ProjectionError::Database(
            diesel::result::Error::QueryBuilderError(
                format!("projection {} does not replay in the database", self.name()).into(),
            ),
        ))
    }

    /// Whether [`BulkReplay::replay_range`] can replay this range; when it cannot, the range is
    /// replayed with [`BulkReplay::replay_batch`]. By default: when every handled event in it is
    /// stored at schema version 1, the shape statements read (older shapes need the
    /// application's upcasters).
    fn can_replay_in_database(
        &self,
        conn: &mut PgConnection,
        range: &ReplayRange,
    ) -> Result<bool, ProjectionError> {
        Ok(range.current_schema_only(conn, self.handles())?)
    }

    /// Whether a replay into shadow tables may build the tables' non-unique indexes after the
    /// replay rather than maintain them row by row (a bulk index build is several times
    /// cheaper). Only for projections whose apply code does not read their own tables through
    /// such an index.
    fn defer_indexes(&self) -> bool {
        false
    }

    /// Tables that a replay leaves empty for [`BulkReplay::finish_replay`] to fill. With
    /// [`BulkReplay::defer_indexes`], a replay into shadow tables also builds their primary keys
    /// and unique constraints after `finish_replay` (loading rows into a bare table and indexing
    /// them once costs about 60% of keeping the index row by row), and may index the other
    /// tables on a second connection while `finish_replay` runs.
    fn filled_at_finish(&self) -> &'static [&'static str] {
        &[]
    }

    /// Most events per batch when a catch-up subscriber runs it (`None`: the runner's default).
    /// A projection whose statements are set-based keeps up better with larger batches.
    fn catch_up_batch_size(&self) -> Option<i64> {
        None
    }
}

#[derive(Debug, thiserror::Error)]
#[error("projection {name} failed: {source}")]
pub struct ProjectionFailed {
    pub name: &'static str,
    #[source]
    pub source: ProjectionError,
}

/// The registry of every projection of the application.
#[derive(Clone, Default)]
pub struct Projections {
    list: Vec<Arc<dyn Projection>>,
    /// Names of the projections run by a catch-up subscriber rather than in the append transaction.
    catch_up: Vec<String>,
}

impl Projections {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(self, projection: impl Projection) -> Self {
        self.with_arc(Arc::new(projection))
    }

    pub fn with_arc(mut self, projection: Arc<dyn Projection>) -> Self {
        self.list.push(projection);
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Projection>> {
        self.list.iter()
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Projection>> {
        self.list.iter().find(|p| p.name() == name)
    }

    /// Run the named projections as catch-up subscribers (`es::subscriber`): the append
    /// transaction skips them and a background runner applies them after commit. Unknown names
    /// are ignored (the configuration may name a projection of another build); a projection that
    /// runs inline only stays inline, and [`Projections::check_catch_up`] says so.
    pub fn with_catch_up(mut self, names: &[String]) -> Self {
        for n in names {
            let n = n.trim();
            if !n.is_empty() && !self.catch_up.iter().any(|c| c == n) {
                self.catch_up.push(n.to_owned());
            }
        }
        self
    }

    pub fn is_catch_up(&self, name: &str) -> bool {
        self.catch_up.iter().any(|c| c == name)
            && self.get(name).is_none_or(|p| p.inline_only().is_none())
    }

    /// Refuses a configuration that names an inline-only projection in catch-up mode: one
    /// message saying which and why (the application does not start with it).
    pub fn check_catch_up(&self) -> Result<(), String> {
        let refused: Vec<String> = self
            .catch_up
            .iter()
            .filter_map(|n| {
                let reason = self.get(n)?.inline_only()?;
                Some(format!("{n} ({reason})"))
            })
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        Err(format!(
            "HEYBOSS_CATCHUP_PROJECTIONS names projections that run inline only: {}; remove them",
            refused.join("; ")
        ))
    }

    /// The projections run by catch-up subscribers.
    pub fn catch_up(&self) -> impl Iterator<Item = &Arc<dyn Projection>> {
        self.list.iter().filter(|p| self.is_catch_up(p.name()))
    }

    /// Run every projection on the events just appended, in the same transaction.
    pub fn apply_inline(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionFailed> {
        for projection in &self.list {
            if self.is_catch_up(projection.name()) {
                continue;
            }
            let mine: Vec<&RecordedEvent> = events
                .iter()
                .filter(|e| projection.handles_type(&e.event_type))
                .collect();
            if !mine.is_empty() {
                projection
                    .apply_batch(conn, &mine)
                    .map_err(|source| ProjectionFailed {
                        name: projection.name(),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

/// A batch of a replay: the events after `after`, up to and including `upto`, in commit-safe
/// order (`es::subscriber`), of the replaying projection's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRange {
    pub after: Cursor,
    pub upto: Cursor,
}

impl ReplayRange {
    /// The condition on `events` rows of the range, with the bind parameters $1 to $4 that
    /// [`ReplayRange::query`] binds. Order by `transaction_id, position` for log order.
    pub const EVENTS: &'static str =
        "(transaction_id, position) > ($1, $2) AND (transaction_id, position) <= ($3, $4)";

    /// Whether every event of the range that `types` names is stored at schema version 1 (a
    /// probe of `events_past_schema_idx`, which holds only the other events).
    pub fn current_schema_only(
        &self,
        conn: &mut PgConnection,
        types: &[&str],
    ) -> QueryResult<bool> {
        self.only_schemas(conn, types, &[])
    }

    /// Whether every event of the range that `types` names is stored at schema version 1 or at
    /// one of the `readable` (event type, schema version) pairs: the shapes a replay's statements
    /// read (a projection whose SQL reads the fields two versions share lists the newer one).
    pub fn only_schemas(
        &self,
        conn: &mut PgConnection,
        types: &[&str],
        readable: &[(&str, i32)],
    ) -> QueryResult<bool> {
        use diesel::sql_types::{Array, Integer, Text};
        #[derive(QueryableByName)]
        struct Current {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            current: bool,
        }
        let readable_types: Vec<&str> = readable.iter().map(|r| r.0).collect();
        let readable_versions: Vec<i32> = readable.iter().map(|r| r.1).collect();
        self.query(format!(
            "SELECT NOT EXISTS (SELECT 1 FROM events
                                WHERE {} AND event_type = ANY($5) AND schema_version <> 1
                                  AND (event_type, schema_version) NOT IN
                                      (SELECT * FROM unnest($6::text[], $7::int4[]))) AS current",
            Self::EVENTS
        ))
        .bind::<Array<Text>, _>(types)
        .bind::<Array<Text>, _>(readable_types)
        .bind::<Array<Integer>, _>(readable_versions)
        .get_result::<Current>(conn)
        .map(|c| c.current)
    }

    /// A statement over the range: `sql` uses [`ReplayRange::EVENTS`]; further binds are $5 on.
    pub fn query(
        &self,
        sql: impl Into<String>,
    ) -> diesel::query_builder::BoxedSqlQuery<
        'static,
        diesel::pg::Pg,
        diesel::query_builder::SqlQuery,
    > {
        use diesel::sql_types::BigInt;
        diesel::sql_query(sql.into())
            .into_boxed()
            .bind::<BigInt, _>(self.after.transaction_id)
            .bind::<BigInt, _>(self.after.position)
            .bind::<BigInt, _>(self.upto.transaction_id)
            .bind::<BigInt, _>(self.upto.position)
    }
}

/// Progress of a rebuild, reported after each batch.
#[derive(Debug, Clone, Copy)]
pub struct RebuildProgress {
    pub events_done: u64,
    pub position: i64,
}

/// Empty a projection and replay the whole log into it, in place, in batches of `batch_size`
/// events so that memory stays flat however long the log is. Runs in one transaction whose
/// TRUNCATE locks the tables: readers wait until it commits. (`shadow::rebuild`, which the CLI and
/// the projections page use, rebuilds beside the live tables and swaps them in instead.)
pub fn rebuild(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    batch_size: i64,
    mut on_progress: impl FnMut(RebuildProgress),
) -> Result<u64, ProjectionFailed> {
    let fail = |source: ProjectionError| ProjectionFailed {
        name: projection.name(),
        source,
    };
    conn.transaction(|conn| {
        projection.reset(conn).map_err(|e| fail(e.into()))?;
        let mut position = 0;
        let mut done = 0u64;
        loop {
            let batch = store::read_after(conn, position, Some(projection.handles()), batch_size)
                .map_err(|e| fail(e.into()))?;
            let Some(last) = batch.last() else { break };
            position = last.position;
            let refs: Vec<&RecordedEvent> = batch.iter().collect();
            match projection.bulk_replay() {
                Some(bulk) => bulk.replay_batch(conn, &refs),
                None => projection.apply_batch(conn, &refs),
            }
            .map_err(fail)?;
            done += batch.len() as u64;
            on_progress(RebuildProgress {
                events_done: done,
                position,
            });
        }
        if let Some(bulk) = projection.bulk_replay() {
            bulk.finish_replay(conn).map_err(fail)?;
        }
        Ok(done)
    })
}

impl From<diesel::result::Error> for ProjectionFailed {
    fn from(source: diesel::result::Error) -> Self {
        ProjectionFailed {
            name: "transaction",
            source: source.into(),
        }
    }
}
