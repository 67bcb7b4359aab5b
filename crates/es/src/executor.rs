//! Executing a command: one transaction of load, decide, append and inline projections.

use std::sync::Arc;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::decider::Decider;
use super::event::{DecodeError, DomainEvent, Metadata, RecordedEvent};
use super::projection::{ProjectionFailed, Projections};
use super::store::{self, StoreError};
use crate::schema::command_outcomes;

/// What the caller knows about a command besides the command itself.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub metadata: Metadata,
    /// A second command with the same key does nothing and reports the first outcome.
    pub idempotency_key: Option<String>,
    /// What the key was used for (a digest of the request). The same key with another
    /// fingerprint is refused ([`CommandError::KeyReused`]) instead of answered as a success.
    pub fingerprint: Option<String>,
    /// The stream version the user saw; a different current version is a conflict (409).
    pub expected_version: Option<i64>,
    /// How often to re-run the command on a concurrent append before reporting the conflict.
    /// Only for commands whose decision does not rest on what a person saw.
    pub retries_on_conflict: u32,
}

impl CommandContext {
    pub fn new(metadata: Metadata) -> Self {
        CommandContext {
            metadata,
            idempotency_key: None,
            fingerprint: None,
            expected_version: None,
            retries_on_conflict: 0,
        }
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Bind the idempotency key to this command (see [`CommandContext::fingerprint`]).
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }

    pub fn expected_version(mut self, version: i64) -> Self {
        self.expected_version = Some(version);
        self
    }

    pub fn retry_on_conflict(mut self, retries: u32) -> Self {
        self.retries_on_conflict = retries;
        self
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    pub stream_type: String,
    pub stream_id: String,
    /// The stream's version after the command.
    pub stream_version: i64,
    /// Global positions of the appended events (empty when the command decided nothing).
    pub positions: Vec<i64>,
    pub event_types: Vec<String>,
    /// True when this is the stored outcome of an earlier command with the same idempotency key.
    #[serde(skip)]
    pub duplicate: bool,
}

impl CommandOutcome {
    pub fn last_position(&self) -> Option<i64> {
        self.positions.last().copied()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<R: std::error::Error + 'static> {
    #[error("{0}")]
    Rejected(#[source] R),
    #[error("{stream_type} {stream_id} was changed by someone else while you were working on it (you saw version {expected}, it is now at {actual:?}); reload and try again")]
    Conflict {
        stream_type: String,
        stream_id: String,
        expected: i64,
        actual: Option<i64>,
    },
    /// The idempotency key was first used for another command (a stale form, the back button).
    #[error("this form was already used for another action; reload the page and try again")]
    KeyReused,
    #[error(transparent)]
    Projection(#[from] ProjectionFailed),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

impl<R: std::error::Error + 'static> CommandError<R> {
    pub fn is_conflict(&self) -> bool {
        matches!(self, CommandError::Conflict { .. })
    }

    pub fn is_rejection(&self) -> bool {
        matches!(self, CommandError::Rejected(_))
    }
}

impl<R: std::error::Error + 'static> From<StoreError> for CommandError<R> {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict {
                stream_type,
                stream_id,
                expected,
            } => CommandError::Conflict {
                stream_type,
                stream_id,
                expected,
                actual: None,
            },
            StoreError::Database(d) => CommandError::Database(d),
        }
    }
}

/// The event store as the application uses it: the log plus the inline projections. (Reactions
/// between contexts run after commit, as catch-up subscribers: `es::subscriber`.)
#[derive(Clone)]
pub struct EventStore {
    projections: Arc<Projections>,
    states: Arc<StateCache>,
}

impl EventStore {
    pub fn new(projections: Projections) -> Self {
        EventStore {
            projections: Arc::new(projections),
            states: Arc::new(StateCache::default()),
        }
    }

    /// Run the inline projections on events just appended.
    pub fn after_append<R: std::error::Error + 'static>(
        &self,
        conn: &mut PgConnection,
        appended: &[RecordedEvent],
    ) -> Result<(), CommandError<R>> {
        self.projections.apply_inline(conn, appended)?;
        Ok(())
    }

    pub fn projections(&self) -> &Projections {
        &self.projections
    }

    /// Run these projections as catch-up subscribers instead of inline (see
    /// [`Projections::with_catch_up`]).
    pub fn with_catch_up(mut self, names: &[String]) -> Self {
        let projections = (*self.projections).clone();
        self.projections = Arc::new(projections.with_catch_up(names));
        self
    }

    /// Execute a command in its own transaction; nothing is written unless everything succeeds.
    ///
    /// A stream this store has written before is not read again: its state and version are
    /// kept from the last command (after its commit), the command is decided on them and
    /// appended at that version. When another writer (another process) moved the stream on, the
    /// append fails on the stream's unique version and the command runs again on a fresh load;
    /// a rejection decided on a kept state is checked on a fresh load too, so a kept state never
    /// decides alone. (Marten, Axon and Akka keep aggregates the same way.)
    ///
    /// The idempotency key is claimed by the statement that stores the command's outcome (for a
    /// one-event command the append's own statement, else the transaction's last): the key's
    /// unique index makes a second command with the key wait for
    /// the first to finish and then fail, so that its transaction writes nothing and it answers
    /// with the first's outcome (or [`CommandError::KeyReused`]) read after the rollback. One
    /// statement instead of a claim and an update of the outcome.
    pub fn execute<D: Decider>(
        &self,
        conn: &mut PgConnection,
        stream_id: &str,
        command: &D::Command,
        ctx: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<D::Rejection>> {
        let mut attempt = 0;
        let mut trust_kept = true;
        loop {
            // Read before the transaction's first write, so that a kept version is always older
            // than this transaction's id (see `decide_and_append`).
            let kept = if trust_kept {
                self.states.get::<D>(stream_id)
            } else {
                None
            }
            .filter(|(version, _)| ctx.expected_version.is_none_or(|e| e == *version));
            let from_kept = kept.is_some();
            let result = conn.transaction(|conn| {
                self.decide_and_append::<D>(conn, stream_id, command, ctx, kept, Claim::AtEnd)
            });
            // Whatever stopped it (a rejection or conflict decided after the first command with
            // the key moved the stream, the key's own unique index): a used key answers first.
            let result = match result {
                Err(e) if ctx.idempotency_key.is_some() => {
                    match prior_outcome::<D::Rejection>(conn, ctx) {
                        Ok(Some(first)) => Ok((first, None)),
                        Ok(None) => Err(e),
                        Err(CommandError::KeyReused) => Err(CommandError::KeyReused),
                        // The database is gone: report what stopped the command.
                        Err(_) => Err(e),
                    }
                }
                other => other,
            };
            match result {
                Ok((outcome, state)) => {
                    match state {
                        Some(state) => {
                            self.states
                                .put::<D>(stream_id, outcome.stream_version, state)
                        }
                        // A repeated key: the stream may have moved since; read it next time.
                        None => self.states.forget::<D>(stream_id),
                    }
                    return Ok(outcome);
                }
                Err(e) if from_kept && (e.is_conflict() || e.is_rejection()) => {
                    self.states.forget::<D>(stream_id);
                    trust_kept = false;
                }
                Err(e) if e.is_conflict() && attempt < ctx.retries_on_conflict => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Execute a command inside a transaction the caller holds (to write more in the same one).
    /// The stream is always loaded: the caller's transaction may not be retried.
    pub fn execute_in<D: Decider>(
        &self,
        conn: &mut PgConnection,
        stream_id: &str,
        command: &D::Command,
        ctx: &CommandContext,
    ) -> Result<CommandOutcome, CommandError<D::Rejection>> {
        let (outcome, _) =
            self.decide_and_append::<D>(conn, stream_id, command, ctx, None, Claim::First)?;
        // What this store kept of the stream may be older than what the caller's transaction
        // commits.
        self.states.forget::<D>(stream_id);
        Ok(outcome)
    }

    /// Load the stream (unless its version and state are `known`), claim the key (`claim`),
    /// decide, append and project; the outcome and the stream's new state (`None` for a
    /// repeated key).
    fn decide_and_append<D: Decider>(
        &self,
        conn: &mut PgConnection,
        stream_id: &str,
        command: &D::Command,
        ctx: &CommandContext,
        known: Option<(i64, D::State)>,
        claim: Claim,
    ) -> Result<Decided<D>, CommandError<D::Rejection>> {
        // Know the version before the first write (the claim, or with `Claim::AtEnd` the append),
        // which gives the transaction its id, so a later writer of the stream always has a higher
        // id than an earlier one and catch-up subscribers (ordered by transaction id) see the
        // stream in order.
        let (version, state) = match known {
            Some(known) => known,
            None => {
                let history = store::load_stream(conn, D::STREAM_TYPE, stream_id)?;
                let version = history.last().map_or(0, |e| e.stream_version);
                (version, fold::<D>(&history)?)
            }
        };
        if claim == Claim::First {
            if let Some(first) = claim_idempotency_key(conn, ctx)? {
                return Ok((first, None));
            }
        }

        if let Some(expected) = ctx.expected_version {
            if expected != version {
                super::stats::count_conflict();
                return Err(CommandError::Conflict {
                    stream_type: D::STREAM_TYPE.to_owned(),
                    stream_id: stream_id.to_owned(),
                    expected,
                    actual: Some(version),
                });
            }
        }
        let decided = D::decide(&state, command).map_err(CommandError::Rejected)?;

        let new_events: Vec<_> = decided.iter().map(DomainEvent::encode).collect();
        let metadata = serde_json::to_value(&ctx.metadata).expect("metadata serializes");
        // With `Claim::AtEnd`, a one-event append stores the key's outcome in its own statement.
        let key = match claim {
            Claim::AtEnd => ctx.idempotency_key.as_deref().map(|key| store::OutcomeKey {
                key,
                fingerprint: ctx.fingerprint.as_deref(),
            }),
            Claim::First => None,
        };
        let (appended, key_stored) = store::append_keyed(
            conn,
            D::STREAM_TYPE,
            stream_id,
            version,
            &new_events,
            &metadata,
            key,
        )?;
        self.after_append(conn, &appended)?;

        let outcome = CommandOutcome {
            stream_type: D::STREAM_TYPE.to_owned(),
            stream_id: stream_id.to_owned(),
            stream_version: appended.last().map_or(version, |e| e.stream_version),
            positions: appended.iter().map(|e| e.position).collect(),
            event_types: appended.iter().map(|e| e.event_type.clone()).collect(),
            duplicate: false,
        };
        if let Some(key) = ctx.idempotency_key.as_ref().filter(|_| !key_stored) {
            let stored = serde_json::to_value(&outcome).ok();
            match claim {
                Claim::First => {
                    diesel::update(command_outcomes::table.find(key))
                        .set(command_outcomes::outcome.eq(stored))
                        .execute(conn)?;
                }
                // No `ON CONFLICT`: a key already used fails this transaction (see `execute`).
                Claim::AtEnd => {
                    diesel::insert_into(command_outcomes::table)
                        .values((
                            command_outcomes::idempotency_key.eq(key),
                            command_outcomes::fingerprint.eq(&ctx.fingerprint),
                            command_outcomes::outcome.eq(stored),
                        ))
                        .execute(conn)?;
                }
            }
        }
        let state = decided.iter().fold(state, D::evolve);
        Ok((outcome, Some(state)))
    }

    /// Append already-decided events to a stream and project them, in the caller's transaction,
    /// without a decider (a writer that decided them itself). The sensor API appends many
    /// streams at once with [`EventStore::append_many_in`].
    pub fn append_in(
        &self,
        conn: &mut PgConnection,
        stream_type: &str,
        stream_id: &str,
        expected_version: i64,
        events: &[super::NewEvent],
        metadata: &Metadata,
    ) -> Result<Vec<RecordedEvent>, CommandError<std::convert::Infallible>> {
        let metadata = serde_json::to_value(metadata).expect("metadata serializes");
        let appended = store::append(
            conn,
            stream_type,
            stream_id,
            expected_version,
            events,
            &metadata,
        )?;
        self.after_append(conn, &appended)?;
        Ok(appended)
    }
}

impl EventStore {
    /// Append already-decided events to many streams at once and project them, in the caller's
    /// transaction (the sensor API's batches).
    pub fn append_many_in(
        &self,
        conn: &mut PgConnection,
        appends: &[store::StreamAppend],
        metadata: &Metadata,
    ) -> Result<Vec<RecordedEvent>, CommandError<std::convert::Infallible>> {
        let metadata = serde_json::to_value(metadata).expect("metadata serializes");
        let appended = store::append_many(conn, appends, &metadata)?;
        self.projections.apply_inline(conn, &appended)?;
        Ok(appended)
    }

    /// [`EventStore::append_many_in`] for the batches of several writers at once, each append
    /// with its writer's metadata: one INSERT a chunk, and the projections run once over all of
    /// them, so that the rows the batches share (a report's totals, a session's) are written once.
    pub fn append_batches_in(
        &self,
        conn: &mut PgConnection,
        appends: &[(store::StreamAppend, &Metadata)],
    ) -> Result<Vec<RecordedEvent>, CommandError<std::convert::Infallible>> {
        // Each writer's metadata serialized once (a writer's appends share one `Metadata`).
        let mut serialized: Vec<(&Metadata, serde_json::Value)> = Vec::new();
        for (_, m) in appends {
            if !serialized.iter().any(|(known, _)| std::ptr::eq(*known, *m)) {
                serialized.push((m, serde_json::to_value(m).expect("metadata serializes")));
            }
        }
        let appends: Vec<(&store::StreamAppend, &serde_json::Value)> = appends
            .iter()
            .map(|(a, m)| {
                let value = serialized
                    .iter()
                    .find(|(known, _)| std::ptr::eq(*known, *m))
                    .map(|(_, v)| v)
                    .expect("serialized above");
                (a, value)
            })
            .collect();
        let appended = store::append_many_each(conn, &appends)?;
        self.projections.apply_inline(conn, &appended)?;
        Ok(appended)
    }
}

/// Fold a stream's recorded events into the decider's state.
pub fn fold<D: Decider>(history: &[RecordedEvent]) -> Result<D::State, DecodeError> {
    history.iter().try_fold(D::State::default(), |state, e| {
        Ok(D::evolve(state, &e.decode::<D::Event>()?))
    })
}

/// Claim the context's idempotency key for this transaction. A key claimed by a transaction
/// still in flight makes this one wait for it; when that one committed, its outcome is returned,
/// or `KeyReused` when it was claimed for another command.
fn claim_idempotency_key<R: std::error::Error + 'static>(
    conn: &mut PgConnection,
    ctx: &CommandContext,
) -> Result<Option<CommandOutcome>, CommandError<R>> {
    let Some(key) = &ctx.idempotency_key else {
        return Ok(None);
    };
    let claimed = diesel::insert_into(command_outcomes::table)
        .values((
            command_outcomes::idempotency_key.eq(key),
            command_outcomes::fingerprint.eq(&ctx.fingerprint),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if claimed == 1 {
        return Ok(None);
    }
    prior_outcome(conn, ctx)
}

/// The stored outcome of an earlier command with the context's idempotency key, if any; an error
/// when that key was used for another command. For services that check something before they
/// execute (a pre-check must not turn a double submit into a refusal).
pub fn prior_outcome<R: std::error::Error + 'static>(
    conn: &mut PgConnection,
    ctx: &CommandContext,
) -> Result<Option<CommandOutcome>, CommandError<R>> {
    let Some(key) = &ctx.idempotency_key else {
        return Ok(None);
    };
    let stored: Option<(Option<serde_json::Value>, Option<String>)> = command_outcomes::table
        .find(key)
        .select((command_outcomes::outcome, command_outcomes::fingerprint))
        .first(conn)
        .optional()?;
    let Some((outcome, fingerprint)) = stored else {
        return Ok(None);
    };
    if fingerprint.is_some() && fingerprint != ctx.fingerprint {
        return Err(CommandError::KeyReused);
    }
    Ok(outcome
        .and_then(|v| serde_json::from_value::<CommandOutcome>(v).ok())
        .map(|o| CommandOutcome {
            duplicate: true,
            ..o
        }))
}

/// When a command claims its idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Before deciding, with its own statement (`ON CONFLICT DO NOTHING`), the outcome stored by
    /// a second one: for a transaction the caller holds, which this store cannot roll back.
    First,
    /// With the outcome, in one statement at the end: for a transaction of the store's own,
    /// rolled back when the key turns out to be used.
    AtEnd,
}

/// A command's outcome and the stream's state after it (`None` for a repeated key).
type Decided<D> = (CommandOutcome, Option<<D as Decider>::State>);

/// The state and version of streams this process wrote last, by stream type and id (see
/// [`EventStore::execute`]). Bounded: when full it starts again empty, which costs one load per
/// stream.
#[derive(Default)]
struct StateCache {
    streams: std::sync::Mutex<StateMap>,
}

type StateMap =
    std::collections::HashMap<(&'static str, String), (i64, Arc<dyn std::any::Any + Send + Sync>)>;

impl StateCache {
    const MAX_STREAMS: usize = 100_000;

    fn get<D: Decider>(&self, stream_id: &str) -> Option<(i64, D::State)> {
        let streams = self.streams.lock().ok()?;
        let (version, state) = streams.get(&(D::STREAM_TYPE, stream_id.to_owned()))?;
        Some((*version, state.downcast_ref::<D::State>()?.clone()))
    }

    fn put<D: Decider>(&self, stream_id: &str, version: i64, state: D::State) {
        if let Ok(mut streams) = self.streams.lock() {
            if streams.len() >= Self::MAX_STREAMS {
                streams.clear();
            }
            streams.insert(
                (D::STREAM_TYPE, stream_id.to_owned()),
                (version, Arc::new(state)),
            );
        }
    }

    fn forget<D: Decider>(&self, stream_id: &str) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.remove(&(D::STREAM_TYPE, stream_id.to_owned()));
        }
    }
}
