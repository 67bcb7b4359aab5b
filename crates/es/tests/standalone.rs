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
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
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
