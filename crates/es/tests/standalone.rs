//! The event store used alone, as another crate would: its own migrations on an empty database,
//! a decider and a projection of the user's own, commands with idempotency keys and expected
//! versions, and a rebuild in shadow tables that verifies equal. No heyboss application table is
//! needed (or created).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use heyboss_es::projection::ProjectionError;
use heyboss_es::{
    db, shadow, Actor, CommandContext, CommandError, Decider, DomainEvent, EventStore, Metadata,
    Projection, Projections, RecordedEvent,
};
use serde::{Deserialize, Serialize};

struct Counter;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum CounterEvent {
    Incremented { by: i64 },
}

impl DomainEvent for CounterEvent {}

#[derive(Debug, thiserror::Error)]
#[error("increment must be positive, got {0}")]
struct NotPositive(i64);

impl Decider for Counter {
    const STREAM_TYPE: &'static str = "counter";
    type State = i64;
    type Command = i64;
    type Event = CounterEvent;
    type Rejection = NotPositive;

    fn decide(_: &i64, by: &i64) -> Result<Vec<CounterEvent>, NotPositive> {
        if *by <= 0 {
            return Err(NotPositive(*by));
        }
        Ok(vec![CounterEvent::Incremented { by: *by }])
    }

    fn evolve(total: i64, event: &CounterEvent) -> i64 {
        match event {
            CounterEvent::Incremented { by } => total + by,
        }
    }
}

struct Totals;

impl Projection for Totals {
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
        let CounterEvent::Incremented { by } = event.decode()?;
        diesel::sql_query(
            "INSERT INTO counter_totals (id, total) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET total = counter_totals.total + excluded.total",
        )
        .bind::<Text, _>(&event.stream_id)
        .bind::<BigInt, _>(by)
        .execute(conn)?;
        Ok(())
    }
}

/// A fresh database on the server the tests use (DATABASE_URL's, else localhost), dropped after.
struct Scratch {
    server: String,
    name: String,
}

impl Scratch {
    fn new() -> Scratch {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://localhost:5432/postgres".into());
        let server = url.rsplit_once('/').unwrap().0.to_owned();
        let name = format!("heyboss_es_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&format!("{server}/postgres")).unwrap();
        diesel::sql_query(format!("CREATE DATABASE {}", db::quote_ident(&name)))
            .execute(&mut admin)
            .unwrap();
        Scratch { server, name }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&format!("{}/postgres", self.server)) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                db::quote_ident(&self.name)
            ))
            .execute(&mut admin);
        }
    }
}

#[test]
fn the_event_store_works_alone_with_its_own_migrations() {
    let scratch = Scratch::new();
    let pool = db::pool(&scratch.url(), 2).unwrap();
    let mut conn = pool.get().unwrap();
    let applied = db::migrate(&mut conn).unwrap();
    assert!(applied >= 4, "the event store's migrations ran ({applied})");
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let tables: Vec<String> = diesel::sql_query(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename !~ '^events_(p[0-9]+|default)$' ORDER BY 1",
    )
    .load::<Name>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    assert_eq!(
        tables,
        [
            "__diesel_schema_migrations",
            "command_outcomes",
            "events",
            "events_partitioning",
            "events_partitions",
            "streams",
            "subscriber_checkpoints"
        ],
        "only the event store's tables"
    );
    diesel::sql_query("CREATE TABLE counter_totals (id TEXT PRIMARY KEY, total BIGINT NOT NULL)")
        .execute(&mut conn)
        .unwrap();

    let store = EventStore::new(Projections::new().with(Totals));
    let ctx = |key: &str| {
        CommandContext::new(Metadata::new(Actor::Cli))
            .idempotency_key(key)
            .fingerprint(key)
    };
    let first = store
        .execute::<Counter>(&mut conn, "c1", &2, &ctx("k1"))
        .unwrap();
    assert_eq!(first.stream_version, 1);
    // The same key and command: the first outcome; the key for another command: refused.
    let again = store
        .execute::<Counter>(&mut conn, "c1", &2, &ctx("k1"))
        .unwrap();
    assert!(again.duplicate && again.positions == first.positions);
    let reused = store.execute::<Counter>(
        &mut conn,
        "c1",
        &5,
        &CommandContext::new(Metadata::new(Actor::Cli))
            .idempotency_key("k1")
            .fingerprint("another"),
    );
    assert!(matches!(reused, Err(CommandError::KeyReused)), "{reused:?}");
    // A stale expected version is a conflict; a rejection records nothing.
    let stale = store.execute::<Counter>(
        &mut conn,
        "c1",
        &1,
        &CommandContext::new(Metadata::new(Actor::Cli)).expected_version(0),
    );
    assert!(matches!(stale, Err(CommandError::Conflict { .. })));
    let refused = store.execute::<Counter>(&mut conn, "c1", &0, &ctx("k2"));
    assert!(matches!(
        refused,
        Err(CommandError::Rejected(NotPositive(0)))
    ));
    for (id, by) in [("c1", 3), ("c2", 7)] {
        store
            .execute::<Counter>(
                &mut conn,
                id,
                &by,
                &CommandContext::new(Metadata::new(Actor::Cli)),
            )
            .unwrap();
    }
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let total = |conn: &mut PgConnection| {
        diesel::sql_query("SELECT sum(total)::int8 AS total FROM counter_totals")
            .get_result::<Total>(conn)
            .unwrap()
            .total
    };
    assert_eq!(total(&mut conn), 12);

    // A rebuild beside the live table equals it.
    let diffs = shadow::verify(&mut conn, None, &Totals, false, 2, |_| {}).unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    shadow::rebuild(&mut conn, None, &Totals, false, 2, |_| {}).unwrap();
    assert_eq!(total(&mut conn), 12);
}

/// A tank that holds at most 3: filling past that is refused, so a decision rests on the state.
struct Tank;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum TankEvent {
    Filled { by: i64 },
    Drained { by: i64 },
}

impl DomainEvent for TankEvent {}

#[derive(Debug, thiserror::Error)]
#[error("the tank holds {0}; it cannot take {1} more")]
struct Overflow(i64, i64);

impl Decider for Tank {
    const STREAM_TYPE: &'static str = "tank";
    type State = i64;
    type Command = i64;
    type Event = TankEvent;
    type Rejection = Overflow;

    fn decide(level: &i64, change: &i64) -> Result<Vec<TankEvent>, Overflow> {
        if level + change > 3 {
            return Err(Overflow(*level, *change));
        }
        Ok(vec![if *change >= 0 {
            TankEvent::Filled { by: *change }
        } else {
            TankEvent::Drained { by: -change }
        }])
    }

    fn evolve(level: i64, event: &TankEvent) -> i64 {
        match event {
            TankEvent::Filled { by } => level + by,
            TankEvent::Drained { by } => level - by,
        }
    }
}

/// Two stores on one database, as two processes: each keeps the state of the streams it wrote
/// (`EventStore::execute` does not read them again), and what the other one wrote since is never
/// decided over: a kept state that is behind makes the append fail on the stream's version, or a
/// refusal be checked again, and the command runs on the log as it is.
#[test]
fn a_kept_state_never_decides_over_what_another_process_wrote() {
    let scratch = Scratch::new();
    let mut conn = PgConnection::establish(&scratch.url()).unwrap();
    db::migrate(&mut conn).unwrap();
    let (a, b) = (
        EventStore::new(Projections::new()),
        EventStore::new(Projections::new()),
    );
    let ctx = || CommandContext::new(Metadata::new(Actor::Cli));
    let level = |conn: &mut PgConnection| -> i64 {
        heyboss_es::executor::fold::<Tank>(
            &heyboss_es::store::load_stream(conn, "tank", "t1").unwrap(),
        )
        .unwrap()
    };

    a.execute::<Tank>(&mut conn, "t1", &1, &ctx()).unwrap();
    a.execute::<Tank>(&mut conn, "t1", &1, &ctx()).unwrap(); // a keeps level 2 at version 2
    b.execute::<Tank>(&mut conn, "t1", &1, &ctx()).unwrap(); // b reads the log: full, version 3

    // A kept state that is behind accepts what the log refuses: the append at version 2 fails
    // on the stream's version, a reads the log and refuses.
    let refused = a.execute::<Tank>(&mut conn, "t1", &1, &ctx());
    assert!(
        matches!(refused, Err(CommandError::Rejected(Overflow(3, 1)))),
        "{refused:?}"
    );
    assert_eq!(level(&mut conn), 3);

    a.execute::<Tank>(&mut conn, "t1", &-1, &ctx()).unwrap(); // a keeps level 2 at version 4
    b.execute::<Tank>(&mut conn, "t1", &-2, &ctx()).unwrap(); // b: conflict, reread: 0 at 5
    a.execute::<Tank>(&mut conn, "t1", &0, &ctx()).unwrap(); // a: conflict, reread: 0 at 6
    let outcome = a.execute::<Tank>(&mut conn, "t1", &3, &ctx()).unwrap();
    assert_eq!(outcome.stream_version, 7);
    assert_eq!(level(&mut conn), 3);

    // b keeps level 0 at version 5: its append fails on the version and the log refuses.
    let refused = b.execute::<Tank>(&mut conn, "t1", &2, &ctx());
    assert!(
        matches!(refused, Err(CommandError::Rejected(Overflow(3, 2)))),
        "{refused:?}"
    );
    // A kept state that is behind refuses what the log accepts: a keeps level 3, b drains it,
    // and a's refusal is checked on the log, which accepts.
    b.execute::<Tank>(&mut conn, "t1", &-3, &ctx()).unwrap();
    let accepted = a.execute::<Tank>(&mut conn, "t1", &3, &ctx());
    assert!(accepted.is_ok(), "{accepted:?}");
    assert_eq!(level(&mut conn), 3);
    let versions: i64 = heyboss_es::store::load_stream(&mut conn, "tank", "t1")
        .unwrap()
        .len() as i64;
    assert_eq!(versions, 9, "every accepted command is one event, in order");
}

/// The bulk append (`store::append_many_each`, a binary COPY after the positions are taken):
/// the rows in the order given, each with its own writer's metadata and the transaction's time and
/// id; a stream that moved on is a conflict, and the connection goes on working after it.
#[test]
fn a_bulk_append_stores_the_rows_in_order_and_refuses_a_stale_version() {
    use heyboss_es::store::{append_many_each, load_stream, StreamAppend};
    use heyboss_es::{NewEvent, StoreError};
    let scratch = Scratch::new();
    let mut conn = PgConnection::establish(&scratch.url()).unwrap();
    db::migrate(&mut conn).unwrap();
    let event = |n: i64| NewEvent {
        event_type: "Incremented".into(),
        schema_version: if n == 3 { 2 } else { 1 },
        payload: serde_json::json!({"by": n, "text": "a \"quoted\"\ttab, é and \\"}),
    };
    let (a_events, b_events) = ([event(1), event(2)], [event(3)]);
    let first = serde_json::json!({"actor": {"kind": "cli"}, "n": 1});
    let second = serde_json::json!({"actor": {"kind": "cli"}, "n": 2});
    let (a, b) = (
        StreamAppend {
            stream_type: "counter",
            stream_id: "b",
            expected_version: 0,
            events: &a_events,
        },
        StreamAppend {
            stream_type: "counter",
            stream_id: "a",
            expected_version: 0,
            events: &b_events,
        },
    );
    let recorded = conn
        .transaction(|conn| append_many_each(conn, &[(&a, &first), (&b, &second)]))
        .unwrap();
    let stored: Vec<RecordedEvent> = heyboss_es::store::read_after(&mut conn, 0, None, 10).unwrap();
    assert_eq!(stored.len(), 3);
    for (r, s) in recorded.iter().zip(&stored) {
        assert_eq!(
            (r.position, &r.stream_id, r.stream_version, r.schema_version),
            (s.position, &s.stream_id, s.stream_version, s.schema_version)
        );
        assert_eq!((&r.payload, &r.metadata), (&s.payload, &s.metadata));
        assert_eq!(
            (r.recorded_at, r.transaction_id),
            (s.recorded_at, s.transaction_id)
        );
    }
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.stream_id.as_str(), e.stream_version))
            .collect::<Vec<_>>(),
        [("b", 1), ("b", 2), ("a", 1)],
        "in the order given"
    );
    assert!(stored.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(stored[2].metadata, second);
    assert_eq!(stored[0].payload["text"], "a \"quoted\"\ttab, é and \\");

    // The stream moved on: a conflict, nothing stored, and the connection still works.
    let stale = conn.transaction(|conn| append_many_each(conn, &[(&b, &first)]));
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(load_stream(&mut conn, "counter", "a").unwrap().len(), 1);
    let next = StreamAppend {
        expected_version: 1,
        ..b
    };
    conn.transaction(|conn| append_many_each(conn, &[(&next, &first)]))
        .unwrap();
    assert_eq!(load_stream(&mut conn, "counter", "a").unwrap().len(), 2);
}

/// A one-event append (`CALL events_append_one_proc`) hands back only what the database assigned
/// and rebuilds the rest from what was sent: the event it returns, which the projections then
/// see, equals the row stored, payload and metadata included; with a key the key's outcome is
/// stored; a stale version stores nothing.
#[test]
fn a_one_event_append_returns_the_row_as_stored() {
    use heyboss_es::store::{append_keyed, load_stream, OutcomeKey};
    use heyboss_es::{NewEvent, StoreError};
    let scratch = Scratch::new();
    let mut conn = PgConnection::establish(&scratch.url()).unwrap();
    db::migrate(&mut conn).unwrap();
    let event = NewEvent {
        event_type: "Incremented".into(),
        schema_version: 2,
        payload: serde_json::json!({
            "by": 3, "ratio": 0.1, "big": 12345678901234_i64, "nested": {"z": [1, 2.5, null], "a": true},
            "text": "a \"quoted\"\ttab, é and \\"
        }),
    };
    let metadata = serde_json::json!({"actor": {"kind": "cli"}, "command_id": "c-1", "n": 1.5});
    let append_at = |conn: &mut PgConnection, version: i64, key: Option<OutcomeKey>| {
        conn.transaction(|conn| {
            append_keyed(
                conn,
                "counter",
                "one",
                version,
                std::slice::from_ref(&event),
                &metadata,
                key,
            )
        })
    };
    let (first, _) = append_at(&mut conn, 0, None).unwrap();
    let key = OutcomeKey {
        key: "key-1",
        fingerprint: Some("f"),
    };
    let (second, key_stored) = append_at(&mut conn, 1, Some(key)).unwrap();
    assert!(key_stored);
    let stored = load_stream(&mut conn, "counter", "one").unwrap();
    let returned: Vec<&RecordedEvent> = first.iter().chain(&second).collect();
    assert_eq!(stored.len(), 2);
    for (r, s) in returned.iter().zip(&stored) {
        assert_eq!(
            format!("{r:?}"),
            format!("{s:?}"),
            "returned and stored differ"
        );
    }
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = Text)]
        outcome: String,
    }
    let outcome: Outcome = diesel::sql_query(
        "SELECT outcome::text AS outcome FROM command_outcomes WHERE idempotency_key = 'key-1'",
    )
    .get_result(&mut conn)
    .unwrap();
    let outcome: serde_json::Value = serde_json::from_str(&outcome.outcome).unwrap();
    assert_eq!(outcome["stream_version"], 2);
    assert_eq!(outcome["positions"][0], stored[1].position);

    // A stale expected version: a conflict, no event and no key stored.
    for key in [
        None,
        Some(OutcomeKey {
            key: "key-2",
            fingerprint: None,
        }),
    ] {
        let stale = append_at(&mut conn, 1, key);
        assert!(
            matches!(stale, Err(StoreError::Conflict { .. })),
            "{stale:?}"
        );
    }
    assert_eq!(load_stream(&mut conn, "counter", "one").unwrap().len(), 2);
    let keys: i64 = diesel::sql_query("SELECT count(*) AS n FROM command_outcomes")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(keys, 1);
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Functions that plan with `enable_seqscan = off` also run with `jit = off`, whatever the
/// connection says: a sequential scan they cannot avoid (the first append of a stream reads
/// `events_position_seq`) is costed over 10^10, and with JIT on (a connection outside the pool)
/// every new stream's append compiled its plan, 55-90 ms (migration
/// `2026-12-11-200100_append_without_jit`).
#[test]
fn functions_that_turn_off_seqscans_turn_off_jit() {
    let scratch = Scratch::new();
    let mut conn = PgConnection::establish(&scratch.url()).unwrap();
    db::migrate(&mut conn).unwrap();
    #[derive(QueryableByName)]
    struct Config {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        config: String,
    }
    let functions: Vec<Config> = diesel::sql_query(
        "SELECT proname::text AS name, array_to_string(proconfig, ',') AS config FROM pg_proc
         WHERE 'enable_seqscan=off' = ANY(proconfig) ORDER BY 1",
    )
    .load(&mut conn)
    .unwrap();
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    assert!(
        [
            "events_append_one",
            "events_append_one_keyed",
            "events_append_one_proc",
            "events_append_one_keyed_proc"
        ]
        .iter()
        .all(|f| names.contains(f)),
        "{names:?}"
    );
    for f in &functions {
        if f.name.starts_with("events_append") {
            assert!(f.config.contains("jit=off"), "{}: {}", f.name, f.config);
        }
    }
    // And a new stream's append on this connection (JIT as the server sets it) answers.
    diesel::sql_query("SET jit = on")
        .execute(&mut conn)
        .unwrap();
    let store = EventStore::new(Projections::new());
    let started = std::time::Instant::now();
    for i in 0..5 {
        store
            .execute::<Counter>(
                &mut conn,
                &format!("jit-{i}"),
                &1,
                &CommandContext::new(Metadata::new(Actor::Cli)).idempotency_key(format!("k{i}")),
            )
            .unwrap();
    }
    eprintln!("5 new streams on a JIT connection: {:?}", started.elapsed());
}
