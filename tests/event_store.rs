//! The event store against a real PostgreSQL: optimistic concurrency, transactional projections,
//! the append-only trigger, idempotency, upcasting and rebuild.

mod common;

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use heyboss::es::projection::{rebuild, ProjectionError};
use heyboss::es::{
    store, Actor, CommandContext, CommandError, Decider, DomainEvent, EventStore, Metadata,
    Projection, Projections, RecordedEvent,
};
use heyboss::testing::TestDatabase;
use serde::{Deserialize, Serialize};

/// A tiny aggregate for exercising the store: a counter that refuses to go past a limit.
struct Counter;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum CounterEvent {
    Incremented { by: i64 },
}

impl DomainEvent for CounterEvent {
    fn schema_version(_: &str) -> i32 {
        2
    }
    /// Version 1 stored `{"amount": n}`; version 2 calls it `by`.
    fn upcast(
        _: &str,
        stored: i32,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, String> {
        match stored {
            1 => Ok(serde_json::json!({ "by": payload["amount"] })),
            2 => Ok(payload),
            v => Err(format!("unknown version {v}")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the counter may not pass {limit}")]
struct TooHigh {
    limit: i64,
}

impl Decider for Counter {
    const STREAM_TYPE: &'static str = "counter";
    type State = i64;
    type Command = i64;
    type Event = CounterEvent;
    type Rejection = TooHigh;

    fn decide(state: &i64, by: &i64) -> Result<Vec<CounterEvent>, TooHigh> {
        if state + by > 100 {
            return Err(TooHigh { limit: 100 });
        }
        Ok(vec![CounterEvent::Incremented { by: *by }])
    }

    fn evolve(state: i64, event: &CounterEvent) -> i64 {
        match event {
            CounterEvent::Incremented { by } => state + by,
        }
    }
}

/// A projection into a table the test creates; optionally failing, to prove rollback.
struct CounterTotals {
    fail: bool,
}

impl Projection for CounterTotals {
    fn name(&self) -> &'static str {
        "counter_totals"
    }
    fn handles(&self) -> &'static [&'static str] {
        &["Incremented"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["counter_totals"]
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if self.fail {
            // A real failure of the database, not a simulated one.
            diesel::sql_query("INSERT INTO no_such_table VALUES (1)").execute(conn)?;
        }
        let CounterEvent::Incremented { by } = event.decode()?;
        diesel::sql_query(
            "INSERT INTO counter_totals (id, total) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET total = counter_totals.total + EXCLUDED.total",
        )
        .bind::<diesel::sql_types::Text, _>(&event.stream_id)
        .bind::<diesel::sql_types::BigInt, _>(by)
        .execute(conn)?;
        Ok(())
    }
}

fn setup(fail: bool) -> (TestDatabase, EventStore) {
    let db = TestDatabase::new();
    diesel::sql_query("CREATE TABLE counter_totals (id TEXT PRIMARY KEY, total BIGINT NOT NULL)")
        .execute(&mut db.connect())
        .unwrap();
    (
        db,
        EventStore::new(Projections::new().with(CounterTotals { fail })),
    )
}

fn ctx() -> CommandContext {
    CommandContext::new(Metadata::new(Actor::Cli))
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

fn total(conn: &mut PgConnection, id: &str) -> Option<i64> {
    diesel::sql_query("SELECT total FROM counter_totals WHERE id = $1")
        .bind::<diesel::sql_types::Text, _>(id)
        .get_result::<Total>(conn)
        .optional()
        .unwrap()
        .map(|t| t.total)
}

#[test]
fn a_command_appends_its_event_and_projects_it_in_one_transaction() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    let outcome = store
        .execute::<Counter>(&mut conn, "c1", &5, &ctx())
        .unwrap();
    assert_eq!(outcome.stream_version, 1);
    assert_eq!(outcome.event_types, vec!["Incremented"]);
    store
        .execute::<Counter>(&mut conn, "c1", &7, &ctx())
        .unwrap();
    assert_eq!(total(&mut conn, "c1"), Some(12));

    let events = store::load_stream(&mut conn, "counter", "c1").unwrap();
    assert_eq!(
        events.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(events[0].schema_version, 2);
    assert!(events[0].transaction_id > 0);
    assert_eq!(events[0].metadata["actor"]["kind"], "cli");
    assert!(events[0].metadata["command_id"].is_string());
    assert!(events[0].metadata["correlation_id"].is_string());
}

#[test]
fn a_rejected_command_writes_nothing() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    store
        .execute::<Counter>(&mut conn, "c1", &90, &ctx())
        .unwrap();
    let err = store
        .execute::<Counter>(&mut conn, "c1", &20, &ctx())
        .unwrap_err();
    assert!(matches!(err, CommandError::Rejected(_)));
    assert_eq!(err.to_string(), "the counter may not pass 100");
    assert_eq!(
        store::stream_version(&mut conn, "counter", "c1").unwrap(),
        1
    );
    assert_eq!(total(&mut conn, "c1"), Some(90));
}

#[test]
fn a_failing_projection_rolls_the_event_back() {
    let (db, store) = setup(true);
    let mut conn = db.connect();
    let err = store
        .execute::<Counter>(&mut conn, "c1", &5, &ctx())
        .unwrap_err();
    assert!(matches!(err, CommandError::Projection(_)), "{err}");
    assert_eq!(
        store::stream_version(&mut conn, "counter", "c1").unwrap(),
        0,
        "no event without its projection"
    );
    assert_eq!(store::head_position(&mut conn).unwrap(), 0);
}

#[test]
fn concurrent_appends_to_one_stream_never_share_a_version() {
    let (db, store) = setup(false);
    let pool = db.pool(8);
    let clients = 8;
    let rounds = 25;
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (pool, store, barrier) = (pool.clone(), store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                let (mut won, mut conflicts) = (0, 0);
                for _ in 0..rounds {
                    barrier.wait();
                    // Everyone read the same version; all append at once.
                    let version = store::stream_version(&mut conn, "counter", "hot").unwrap();
                    let ctx = ctx().expected_version(version);
                    match store.execute::<Counter>(&mut conn, "hot", &0, &ctx) {
                        Ok(_) => won += 1,
                        Err(CommandError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
                (won, conflicts)
            })
        })
        .collect();
    let results: Vec<(i32, i32)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let won: i32 = results.iter().map(|r| r.0).sum();
    let conflicts: i32 = results.iter().map(|r| r.1).sum();
    let mut conn = db.connect();
    let events = store::load_stream(&mut conn, "counter", "hot").unwrap();
    let versions: Vec<i64> = events.iter().map(|e| e.stream_version).collect();
    assert_eq!(
        versions,
        (1..=events.len() as i64).collect::<Vec<_>>(),
        "versions are dense and unique"
    );
    assert_eq!(
        won as usize,
        events.len(),
        "every winner has exactly one event"
    );
    assert!(conflicts > 0, "the losers were told of the conflict");
    assert_eq!(won + conflicts, (clients * rounds) as i32);
}

#[test]
fn retries_on_conflict_apply_every_command_once() {
    let (db, store) = setup(false);
    let pool = db.pool(8);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (pool, store) = (pool.clone(), store.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                for _ in 0..10 {
                    store
                        .execute::<Counter>(&mut conn, "shared", &1, &ctx().retry_on_conflict(100))
                        .unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let mut conn = db.connect();
    assert_eq!(total(&mut conn, "shared"), Some(80));
    assert_eq!(
        store::stream_version(&mut conn, "counter", "shared").unwrap(),
        80
    );
}

#[test]
fn the_database_rejects_update_delete_and_truncate_of_events() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    store
        .execute::<Counter>(&mut conn, "c1", &1, &ctx())
        .unwrap();
    for statement in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "TRUNCATE events",
    ] {
        let err = diesel::sql_query(statement).execute(&mut conn).unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(
        store::stream_version(&mut conn, "counter", "c1").unwrap(),
        1
    );
}

#[test]
fn an_idempotency_key_applies_a_command_once_and_reports_the_first_outcome() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    let first = store
        .execute::<Counter>(&mut conn, "c1", &5, &ctx().idempotency_key("form-1"))
        .unwrap();
    let second = store
        .execute::<Counter>(&mut conn, "c1", &5, &ctx().idempotency_key("form-1"))
        .unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.positions, second.positions);
    assert_eq!(total(&mut conn, "c1"), Some(5));

    // Concurrent double submits: still one event.
    let pool = db.pool(4);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (pool, store) = (pool.clone(), store.clone());
            std::thread::spawn(move || {
                store
                    .execute::<Counter>(
                        &mut pool.get().unwrap(),
                        "c2",
                        &3,
                        &ctx().idempotency_key("form-2").retry_on_conflict(5),
                    )
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| !o.duplicate).count(), 1);
    assert_eq!(total(&mut conn, "c2"), Some(3));
}

#[test]
fn a_used_key_leaves_nothing_of_a_second_command_whatever_it_asks() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    let keyed = |key: &str, fingerprint: &str| {
        ctx()
            .idempotency_key(key.to_owned())
            .fingerprint(fingerprint.to_owned())
    };
    let first = store
        .execute::<Counter>(&mut conn, "c1", &5, &keyed("form-1", "add 5 to c1"))
        .unwrap();
    // The same form posted again, after the first moved the stream on.
    let again = store
        .execute::<Counter>(&mut conn, "c1", &5, &keyed("form-1", "add 5 to c1"))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    // The key under another command: refused, and the other stream has no event.
    let other = store.execute::<Counter>(&mut conn, "c2", &7, &keyed("form-1", "add 7 to c2"));
    assert!(matches!(other, Err(CommandError::KeyReused)), "{other:?}");
    assert_eq!(total(&mut conn, "c2"), None);
    // A form posted again once the counter is full: it would be rejected now (100 + 5 > 100),
    // and answers as the first instead.
    let first = store
        .execute::<Counter>(&mut conn, "c3", &5, &keyed("form-3", "add 5 to c3"))
        .unwrap();
    store
        .execute::<Counter>(&mut conn, "c3", &95, &ctx())
        .unwrap();
    let again = store
        .execute::<Counter>(&mut conn, "c3", &5, &keyed("form-3", "add 5 to c3"))
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.positions, first.positions);
    assert_eq!(total(&mut conn, "c3"), Some(100));

    // Concurrent double submits without retries: one applies, the others answer as it did.
    let pool = db.pool(4);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (pool, store) = (pool.clone(), store.clone());
            std::thread::spawn(move || {
                store.execute::<Counter>(
                    &mut pool.get().unwrap(),
                    "c4",
                    &3,
                    &ctx().idempotency_key("form-4"),
                )
            })
        })
        .collect();
    let outcomes: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().expect("every submit answers"))
        .collect();
    assert_eq!(outcomes.iter().filter(|o| !o.duplicate).count(), 1);
    assert!(outcomes
        .windows(2)
        .all(|w| w[0].positions == w[1].positions));
    assert_eq!(total(&mut conn, "c4"), Some(3));
}

#[derive(QueryableByName)]
struct StoredKey {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    fingerprint: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
    outcome: Option<serde_json::Value>,
}

fn stored_keys(conn: &mut PgConnection, key: &str) -> Vec<StoredKey> {
    diesel::sql_query(
        "SELECT fingerprint, outcome FROM command_outcomes WHERE idempotency_key = $1",
    )
    .bind::<diesel::sql_types::Text, _>(key)
    .load(conn)
    .unwrap()
}

/// A one-event command stores its key's outcome in the append's own statement
/// (`events_append_one_keyed`): the stored outcome is the command's, a stale expected version or a
/// failing projection leaves no key behind, and the key then still applies its command once.
#[test]
fn a_one_event_command_stores_its_key_with_the_append_and_only_when_it_commits() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    let first = store
        .execute::<Counter>(
            &mut conn,
            "c1",
            &5,
            &ctx().idempotency_key("k1").fingerprint("add 5 to c1"),
        )
        .unwrap();
    let stored = stored_keys(&mut conn, "k1");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].fingerprint.as_deref(), Some("add 5 to c1"));
    assert_eq!(
        stored[0].outcome,
        Some(serde_json::to_value(&first).unwrap()),
        "the outcome the SQL function builds is the executor's own"
    );

    // Not at the expected version: nothing appended, no key stored.
    let stale = store.execute::<Counter>(
        &mut conn,
        "c1",
        &1,
        &ctx().idempotency_key("k2").expected_version(0),
    );
    assert!(
        matches!(stale, Err(CommandError::Conflict { .. })),
        "{stale:?}"
    );
    assert!(stored_keys(&mut conn, "k2").is_empty());
    let applied = store
        .execute::<Counter>(
            &mut conn,
            "c1",
            &1,
            &ctx().idempotency_key("k2").expected_version(1),
        )
        .unwrap();
    assert!(!applied.duplicate);
    assert_eq!(total(&mut conn, "c1"), Some(6));

    // A projection that fails after the append: the key is rolled back with the event.
    let (failing_db, failing) = setup(true);
    let mut failing_conn = failing_db.connect();
    let failed =
        failing.execute::<Counter>(&mut failing_conn, "c1", &5, &ctx().idempotency_key("k3"));
    assert!(failed.is_err());
    assert!(stored_keys(&mut failing_conn, "k3").is_empty());
    assert_eq!(
        store::stream_version(&mut failing_conn, "counter", "c1").unwrap(),
        0
    );
}

#[test]
fn old_event_shapes_are_upcast_when_read() {
    let (db, _) = setup(false);
    let mut conn = db.connect();
    diesel::sql_query(
        "INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata)
         VALUES ('counter', 'old', 1, 'Incremented', 1, '{\"amount\": 4}', '{}')",
    )
    .execute(&mut conn)
    .unwrap();
    let events = store::load_stream(&mut conn, "counter", "old").unwrap();
    assert_eq!(
        events[0].decode::<CounterEvent>().unwrap(),
        CounterEvent::Incremented { by: 4 }
    );
}

#[test]
fn a_rebuild_replays_the_whole_log_into_an_emptied_projection() {
    let (db, store) = setup(false);
    let mut conn = db.connect();
    for i in 0..700 {
        store
            .execute::<Counter>(&mut conn, &format!("c{}", i % 10), &0, &ctx())
            .unwrap();
    }
    store
        .execute::<Counter>(&mut conn, "c1", &9, &ctx())
        .unwrap();
    diesel::sql_query("UPDATE counter_totals SET total = -1")
        .execute(&mut conn)
        .unwrap();
    let mut batches = 0;
    let replayed = rebuild(&mut conn, &CounterTotals { fail: false }, 300, |_| {
        batches += 1
    })
    .unwrap();
    assert_eq!(replayed, 701);
    assert_eq!(batches, 3, "replayed in batches of 300");
    assert_eq!(total(&mut conn, "c1"), Some(9));
    assert_eq!(total(&mut conn, "c2"), Some(0));
}
