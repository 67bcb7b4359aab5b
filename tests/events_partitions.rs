//! The partitioned log (issue 22.2): the migration that converts an existing store, partitions
//! made ahead and the DEFAULT partition, pruning of subscribers and keyset pages (by their
//! plans), and archiving a partition by detaching it and attaching it again.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use heyboss::es::store::{self, StoreError};
use heyboss::es::{NewEvent, RecordedEvent};
use heyboss::schema::events;
use heyboss::testing::{TestApp, TestDatabase};
use heyboss_es::partitions;
use heyboss_es::subscriber::{self, HandlerError, Subscriber};

const PARTITIONING: &str = "2026-12-10-400000";

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn names(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect()
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

fn log(conn: &mut PgConnection) -> Vec<RecordedEvent> {
    events::table
        .order(events::position)
        .select(RecordedEvent::as_select())
        .load(conn)
        .unwrap()
}

fn event(n: i64) -> NewEvent {
    NewEvent {
        event_type: "Ticked".into(),
        schema_version: 1,
        payload: serde_json::json!({ "n": n }),
    }
}

/// The demo's log (every context) written into a store as it was before partitioning, with a
/// gap in its positions and an identity ahead of its last event, then migrated.
#[test]
fn the_migration_converts_a_store_of_every_context_keeping_every_event_in_order() {
    let app = TestApp::spawn();
    heyboss::demo::seed(&app.state).unwrap();
    let mut source = app.db.connect();
    let demo = log(&mut source);
    let contexts: std::collections::BTreeSet<&str> =
        demo.iter().map(|e| e.stream_type.as_str()).collect();
    assert!(demo.len() > 50, "the demo wrote {} events", demo.len());
    for context in ["user", "enrollment", "fund", "threat_session"] {
        assert!(contexts.contains(context), "{context} in {contexts:?}");
    }

    let old = TestDatabase::before_migration(PARTITIONING);
    let mut conn = old.connect();
    assert_eq!(
        names(
            &mut conn,
            "SELECT c.relkind::text AS name FROM pg_class c WHERE c.relname = 'events'"
        ),
        ["r"],
        "a plain table before"
    );
    // Each event as it was, with its position (one skipped, as a rollback leaves), transaction
    // id and time.
    for e in &demo {
        diesel::sql_query(
            "INSERT INTO events (position, stream_type, stream_id, stream_version, event_type,
                                 schema_version, payload, metadata, recorded_at, transaction_id)
             OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind::<BigInt, _>(e.position * 2)
        .bind::<Text, _>(&e.stream_type)
        .bind::<Text, _>(&e.stream_id)
        .bind::<BigInt, _>(e.stream_version)
        .bind::<Text, _>(&e.event_type)
        .bind::<diesel::sql_types::Integer, _>(e.schema_version)
        .bind::<diesel::sql_types::Jsonb, _>(&e.payload)
        .bind::<diesel::sql_types::Jsonb, _>(&e.metadata)
        .bind::<diesel::sql_types::Timestamptz, _>(e.recorded_at)
        .bind::<BigInt, _>(e.transaction_id)
        .execute(&mut conn)
        .unwrap();
    }
    let last = demo.last().unwrap().position * 2;
    diesel::sql_query("SELECT setval('events_position_seq', $1) ")
        .bind::<BigInt, _>(last + 5)
        .execute(&mut conn)
        .unwrap();
    let before = log(&mut conn);
    let indexes_before = names(
        &mut conn,
        "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'events' ORDER BY 1",
    );

    heyboss::db::migrate(&mut conn).unwrap();

    assert_eq!(
        names(
            &mut conn,
            "SELECT c.relkind::text AS name FROM pg_class c WHERE c.relname = 'events'"
        ),
        ["p"],
        "partitioned after"
    );
    let after = log(&mut conn);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(
            (
                a.position,
                &a.stream_type,
                &a.stream_id,
                a.stream_version,
                &a.event_type,
                a.schema_version,
                &a.payload,
                &a.metadata,
                a.recorded_at,
                a.transaction_id
            ),
            (
                b.position,
                &b.stream_type,
                &b.stream_id,
                b.stream_version,
                &b.event_type,
                b.schema_version,
                &b.payload,
                &b.metadata,
                b.recorded_at,
                b.transaction_id
            )
        );
    }
    // Every index, by its name, on the partitioned table (the unique version key replaced by
    // `streams` and a plain index), and on each partition.
    let indexes_after = names(
        &mut conn,
        "SELECT indexname AS name FROM pg_indexes WHERE tablename = 'events' ORDER BY 1",
    );
    for name in &indexes_before {
        if name != "events_stream_version_key" {
            assert!(indexes_after.contains(name), "{name} in {indexes_after:?}");
        }
    }
    assert!(indexes_after.contains(&"events_stream_version_idx".to_owned()));
    // No more indexes than before (each one is written by every append), and the partial
    // causation index (2026-12-07-000100) still partial.
    assert_eq!(indexes_after.len(), indexes_before.len());
    assert_eq!(
        names(
            &mut conn,
            "SELECT indexdef AS name FROM pg_indexes WHERE indexname = 'events_causation_id_idx'"
        ),
        ["CREATE INDEX events_causation_id_idx ON ONLY public.events USING btree (((metadata ->> 'causation_id'::text))) WHERE ((metadata ->> 'causation_id'::text) IS NOT NULL)"]
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_indexes WHERE tablename = 'events_p1'"
        ),
        indexes_after.len() as i64
    );
    // Every stream at its newest version.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM (SELECT stream_type, stream_id, max(stream_version) AS v
                                       FROM events GROUP BY 1, 2) e
             FULL JOIN streams s USING (stream_type, stream_id) WHERE s.version IS DISTINCT FROM e.v"
        ),
        0
    );
    // The identity continues where it was; a stale version is the same conflict as before.
    let stream = before.iter().max_by_key(|e| e.stream_version).unwrap();
    assert!(stream.stream_version > 1);
    let appended = store::append(
        &mut conn,
        &stream.stream_type,
        &stream.stream_id,
        stream.stream_version - 1,
        &[event(1)],
        &serde_json::json!({}),
    );
    assert!(
        matches!(appended, Err(StoreError::Conflict { .. })),
        "{appended:?}"
    );
    let version = store::stream_version(&mut conn, &stream.stream_type, &stream.stream_id).unwrap();
    let appended = store::append(
        &mut conn,
        &stream.stream_type,
        &stream.stream_id,
        version,
        &[event(1)],
        &serde_json::json!({}),
    )
    .unwrap();
    assert_eq!(appended[0].position, last + 6);
    assert_eq!(appended[0].stream_version, version + 1);
    // Still append-only, through the partitioned table and through a partition.
    for sql in [
        "UPDATE events SET event_type = 'x'",
        "DELETE FROM events",
        "TRUNCATE events",
        "TRUNCATE events_p1",
        "DELETE FROM events_p1",
    ] {
        let err = diesel::sql_query(sql).execute(&mut conn).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// A fresh store with partitions of `size` events (the migration made one of a million).
fn small_partitions(db: &TestDatabase, size: i64) -> PgConnection {
    let mut conn = db.connect();
    diesel::sql_query("ALTER TABLE events DETACH PARTITION events_p1")
        .execute(&mut conn)
        .unwrap();
    for sql in [
        "DROP TABLE events_p1".to_owned(),
        "DELETE FROM events_partitions".to_owned(),
        format!("UPDATE events_partitioning SET partition_size = {size}"),
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    partitions::ensure(&mut conn).unwrap();
    conn
}

fn append_ticks(conn: &mut PgConnection, stream: &str, n: i64) {
    let version = store::stream_version(conn, "tick", stream).unwrap();
    let events: Vec<NewEvent> = (0..n).map(event).collect();
    conn.transaction(|conn| {
        store::append(
            conn,
            "tick",
            stream,
            version,
            &events,
            &serde_json::json!({}),
        )
    })
    .unwrap();
}

fn per_partition(conn: &mut PgConnection) -> Vec<(String, i64)> {
    #[derive(QueryableByName)]
    struct P {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT tableoid::regclass::text AS name, count(*) AS n FROM events GROUP BY 1 ORDER BY min(position)",
    )
    .load::<P>(conn)
    .unwrap()
    .into_iter()
    .map(|p| (p.name, p.n))
    .collect()
}

#[test]
fn appends_beyond_the_partitions_land_in_default_and_move_to_partitions_made_later() {
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    append_ticks(&mut conn, "a", 250);
    assert_eq!(
        per_partition(&mut conn),
        [
            ("events_p1".to_owned(), 100),
            ("events_default".to_owned(), 150)
        ]
    );
    let before = log(&mut conn);
    // Two partitions for what is there, one ahead.
    assert_eq!(partitions::ensure(&mut conn).unwrap(), 3);
    assert_eq!(partitions::in_default(&mut conn).unwrap(), 0);
    assert_eq!(
        per_partition(&mut conn),
        [
            ("events_p1".to_owned(), 100),
            ("events_p2".to_owned(), 100),
            ("events_p3".to_owned(), 50)
        ]
    );
    let after = log(&mut conn);
    assert_eq!(
        after
            .iter()
            .map(|e| (e.position, e.transaction_id, e.stream_version))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|e| (e.position, e.transaction_id, e.stream_version))
            .collect::<Vec<_>>()
    );
    // The triggers came along to the new DEFAULT partition.
    let err = diesel::sql_query("TRUNCATE events_default")
        .execute(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(partitions::ensure(&mut conn).unwrap(), 0);
}

/// What `events_load_stream` runs, as a statement of its own: the same text with the function's
/// variables as parameters, for its plan.
const LOAD: &str = "SELECT * FROM events
    WHERE stream_type = $1 AND stream_id = $2
      AND position >= $3 AND position <= $4
    ORDER BY stream_version";

/// A stream's load reads every one of its events wherever they are (partitions, the DEFAULT
/// partition, partitions made since), and its generic plan, made once and kept, prunes the
/// partitions outside the stream's first position and the head at executor start-up.
#[test]
fn a_load_reads_every_event_of_the_stream_and_its_generic_plan_prunes_at_start_up() {
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    let versions = |conn: &mut PgConnection, stream: &str| {
        store::load_stream(conn, "tick", stream)
            .unwrap()
            .iter()
            .map(|e| e.stream_version)
            .collect::<Vec<_>>()
    };
    append_ticks(&mut conn, "a", 3);
    assert_eq!(versions(&mut conn, "a"), [1, 2, 3]);
    // Past the partitions (p1, [1, 101)): into the DEFAULT partition, then into partitions made
    // for it; the connection's kept plans see both.
    append_ticks(&mut conn, "b", 250);
    append_ticks(&mut conn, "a", 2);
    assert_eq!(versions(&mut conn, "a"), [1, 2, 3, 4, 5]);
    partitions::ensure(&mut conn).unwrap();
    assert_eq!(versions(&mut conn, "a"), [1, 2, 3, 4, 5]);
    append_ticks(&mut conn, "c", 2);
    append_ticks(&mut conn, "b", 50);
    append_ticks(&mut conn, "c", 1);
    assert_eq!(versions(&mut conn, "c"), [1, 2, 3]);
    assert_eq!(versions(&mut conn, "none"), Vec::<i64>::new());
    // A stream written around es::store has no row in `streams`: read from the first partition.
    diesel::sql_query(
        "INSERT INTO events (stream_type, stream_id, stream_version, event_type, payload, metadata)
         VALUES ('tick', 'around', 1, 'Ticked', '{}', '{}')",
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(versions(&mut conn, "around"), [1]);

    // c began in p3, [201, 301); the head (308) is in p4, [301, 401), the newest partition. The
    // plan made for any parameters reads p3 and p4; p1, p2 and DEFAULT (which holds no position
    // of a partition's range) are removed as it starts.
    let (first, head) = (
        count(
            &mut conn,
            "SELECT first_position AS n FROM streams WHERE stream_id = 'c'",
        ),
        count(
            &mut conn,
            "SELECT pg_sequence_last_value('events_position_seq') AS n",
        ),
    );
    assert!((200..=256).contains(&first), "{first}");
    for sql in [
        "SET plan_cache_mode = force_generic_plan".to_owned(),
        format!("PREPARE load_c(text, text, bigint, bigint) AS {LOAD}"),
    ] {
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
    let plan: Vec<String> = diesel::sql_query(format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE load_c('tick', 'c', {first}, {head})"
    ))
    .load::<Plan>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|p| p.line)
    .collect();
    eprintln!("{}", plan.join("\n"));
    assert!(
        plan.iter().any(|l| l.trim() == "Subplans Removed: 3"),
        "{plan:#?}"
    );
    assert_eq!(scanned(&plan), ["events_p3", "events_p4"], "{plan:#?}");
    // The function's own statement is that one: its text is in the function.
    let body = names(
        &mut conn,
        "SELECT prosrc AS name FROM pg_proc WHERE proname = 'events_load_stream'",
    );
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squeeze(&body[0]).contains(&squeeze(
            &LOAD
                .replace("$1", "p_stream_type")
                .replace("$2", "p_stream_id")
                .replace("$3", "v_first")
                .replace("$4", "v_head")
        )),
        "{}",
        body[0]
    );
}

struct Everything;

impl Subscriber for Everything {
    fn name(&self) -> &str {
        "everything"
    }
    fn handles(&self) -> Option<&[&'static str]> {
        None
    }
    fn handle(&self, _: &mut PgConnection, _: &[RecordedEvent]) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// The partitions a plan reads, by name.
fn scanned(plan: &[String]) -> Vec<String> {
    let mut found: Vec<String> = plan
        .iter()
        .filter(|l| !l.contains("never executed"))
        .filter_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "on")
                .nth(1)
                .filter(|t| t.starts_with("events_"))
                .map(str::to_owned)
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn subscribers_and_keyset_pages_read_only_recent_partitions() {
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    for _ in 0..5 {
        append_ticks(&mut conn, "a", 90);
        partitions::ensure(&mut conn).unwrap();
    }
    // Transactions of other tests' databases hold the subscriber back (xmin is the server's):
    // read until it has everything.
    let caught_up_to = |conn: &mut PgConnection, position: i64| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            subscriber::catch_up(conn, &Everything, 100).unwrap();
            let at = subscriber::checkpoint(conn, "everything").unwrap().unwrap();
            if at.position == position {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "stuck at {at:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    caught_up_to(&mut conn, 450);
    append_ticks(&mut conn, "b", 20);
    caught_up_to(&mut conn, 470);
    append_ticks(&mut conn, "b", 20);

    // The subscriber's next read: above its floor (450, the head when it last read), so only
    // the newest partitions.
    let plan = subscriber::explain_next_batch(&mut conn, &Everything, 100).unwrap();
    eprintln!("{}", plan.join("\n"));
    assert_eq!(
        scanned(&plan),
        ["events_default", "events_p5", "events_p6"],
        "{plan:#?}"
    );

    // The log after a position (es::store::read_after, the audit log's newer pages).
    let plan = heyboss_es::db::explain(
        &mut conn,
        events::table
            .filter(events::position.gt(420))
            .order(events::position)
            .limit(50)
            .select(RecordedEvent::as_select()),
    )
    .unwrap();
    eprintln!("{}", plan.join("\n"));
    assert_eq!(
        scanned(&plan),
        ["events_default", "events_p5", "events_p6"],
        "{plan:#?}"
    );

    // The audit log's first page, newest first, has no bound to prune by, and with a DEFAULT
    // partition (which may hold any position) the partitions are merged rather than read in
    // order: running it reads the page from the newest partition and one entry of each other.
    let plan: Vec<String> = diesel::sql_query(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
         SELECT * FROM events ORDER BY position DESC LIMIT 50",
    )
    .load::<Plan>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|p| p.line)
    .collect();
    eprintln!("{}", plan.join("\n"));
    for line in plan.iter().filter(|l| l.contains(" on events_")) {
        let rows = if line.contains(" on events_p5 ") {
            "50"
        } else {
            "1"
        };
        assert!(
            line.contains(&format!("(actual rows={rows} "))
                || (rows == "1" && line.contains("(actual rows=0 ")),
            "{plan:#?}"
        );
    }
    // An older page (position < 150): only the partitions at and below it (and the DEFAULT
    // one, which may hold any position).
    let plan = heyboss_es::db::explain(
        &mut conn,
        events::table
            .filter(events::position.lt(150))
            .order(events::position.desc())
            .limit(50)
            .select(RecordedEvent::as_select()),
    )
    .unwrap();
    assert_eq!(
        scanned(&plan),
        ["events_default", "events_p1", "events_p2"],
        "{plan:#?}"
    );

    // And the subscriber still gets every event.
    caught_up_to(&mut conn, 490);
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[test]
fn an_old_partition_is_detached_to_archive_and_attached_again() {
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    for _ in 0..3 {
        append_ticks(&mut conn, "a", 100);
        partitions::ensure(&mut conn).unwrap();
    }
    let whole = log(&mut conn);
    assert_eq!(whole.len(), 300);

    // Not the partition appends go to, nor one a subscriber has still to read.
    let err = partitions::detach(&mut conn, 4).unwrap_err();
    assert!(
        err.to_string().contains("below the newest position"),
        "{err}"
    );
    let err = partitions::detach(&mut conn, 1).unwrap_err();
    assert!(err.to_string().contains("notifications"), "{err}");
    subscriber::set_checkpoint(
        &mut conn,
        "notifications",
        subscriber::Cursor {
            transaction_id: whole.last().unwrap().transaction_id,
            position: 300,
        },
    )
    .unwrap();

    let detached = partitions::detach(&mut conn, 1).unwrap();
    assert!(detached.detached_at.is_some());
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events"), 200);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events_p1"), 100);
    // The archive stays append-only.
    let err = diesel::sql_query("DELETE FROM events_p1")
        .execute(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    // The stream goes on at its version (its row in `streams`).
    append_ticks(&mut conn, "a", 1);
    assert_eq!(store::stream_version(&mut conn, "tick", "a").unwrap(), 301);
    let err = partitions::detach(&mut conn, 1).unwrap_err();
    assert!(err.to_string().contains("already detached"), "{err}");

    let attached = partitions::attach(&mut conn, 1).unwrap();
    assert!(attached.detached_at.is_none());
    let back = log(&mut conn);
    assert_eq!(back.len(), 301);
    assert_eq!(
        back[..300]
            .iter()
            .map(|e| (e.position, e.transaction_id, &e.payload))
            .collect::<Vec<_>>(),
        whole
            .iter()
            .map(|e| (e.position, e.transaction_id, &e.payload))
            .collect::<Vec<_>>()
    );
    let err = diesel::sql_query("DELETE FROM events_p1")
        .execute(&mut conn)
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");

    // The CLI does the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["events", "detach", "1"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["events", "partitions"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(listing.contains("events_p1"), "{listing}");
    assert!(listing.contains("detached"), "{listing}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["events", "attach", "1"])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events"), 301);
}

/// A gauge up to 10: adding past it is rejected, adding 0 decides nothing.
struct Gauge;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", content = "data")]
enum GaugeEvent {
    Added { n: i64 },
}
impl heyboss::es::DomainEvent for GaugeEvent {}

#[derive(Debug, thiserror::Error)]
#[error("past 10")]
struct PastTen;

impl heyboss::es::Decider for Gauge {
    const STREAM_TYPE: &'static str = "gauge";
    type State = i64;
    type Command = i64;
    type Event = GaugeEvent;
    type Rejection = PastTen;
    fn decide(level: &i64, n: &i64) -> Result<Vec<GaugeEvent>, PastTen> {
        match *n {
            0 => Ok(Vec::new()),
            n if level + n > 10 => Err(PastTen),
            n => Ok(vec![GaugeEvent::Added { n }]),
        }
    }
    fn evolve(level: i64, e: &GaugeEvent) -> i64 {
        match e {
            GaugeEvent::Added { n } => level + n,
        }
    }
}

/// A command on a stream begun in an older partition decides on its whole history: a rejection,
/// an empty decision and an append, each from a store that never met the stream.
#[test]
fn a_command_on_a_stream_begun_in_an_older_partition_decides_on_its_whole_history() {
    use heyboss::es::{Actor, CommandContext, CommandError, EventStore, Metadata, Projections};
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let fresh = || EventStore::new(Projections::new());
    let first = fresh();
    for _ in 0..2 {
        first.execute::<Gauge>(&mut conn, "g", &4, &ctx).unwrap();
    }
    append_ticks(&mut conn, "b", 250);
    partitions::ensure(&mut conn).unwrap();
    // A new stream in the head's partition, to have each store know the partitions.
    let store = fresh();
    store.execute::<Gauge>(&mut conn, "h", &1, &ctx).unwrap();
    match store.execute::<Gauge>(&mut conn, "g", &4, &ctx) {
        Err(CommandError::Rejected(PastTen)) => {}
        other => panic!("{other:?}"),
    }
    let store = fresh();
    store.execute::<Gauge>(&mut conn, "h", &1, &ctx).unwrap();
    let outcome = store.execute::<Gauge>(&mut conn, "g", &0, &ctx).unwrap();
    assert_eq!(outcome.stream_version, 2);
    let store = fresh();
    store.execute::<Gauge>(&mut conn, "h", &1, &ctx).unwrap();
    let outcome = store.execute::<Gauge>(&mut conn, "g", &2, &ctx).unwrap();
    assert_eq!(outcome.stream_version, 3);
    assert_eq!(store::stream_version(&mut conn, "gauge", "g").unwrap(), 3);
}

/// Making a partition locks `events` exclusively. The keeper of `heyboss serve` gives up that
/// lock after a short wait instead of queueing for it behind a long read of the log: a queued
/// request would hold every append and read that came after it until the read ended.
#[test]
fn the_keeper_does_not_hold_appends_behind_a_long_read_of_the_log() {
    use std::time::{Duration, Instant};
    let db = TestDatabase::new();
    let mut conn = small_partitions(&db, 100);
    append_ticks(&mut conn, "a", 150);

    // A long read of the log, still open.
    let mut reader = db.connect();
    diesel::sql_query("BEGIN").execute(&mut reader).unwrap();
    assert_eq!(count(&mut reader, "SELECT count(*) AS n FROM events"), 150);

    let url = db.url.clone();
    let keeper = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        let started = Instant::now();
        let outcome = partitions::ensure_without_queueing(&mut conn, Duration::from_millis(200));
        (outcome, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    // An append meanwhile goes through (it would queue behind the keeper's lock request).
    let mut writer = db.connect();
    diesel::sql_query("SET lock_timeout = '3s'")
        .execute(&mut writer)
        .unwrap();
    append_ticks(&mut writer, "b", 1);
    let (outcome, waited) = keeper.join().unwrap();
    let err = outcome.expect_err("the keeper gives up while the log is read");
    assert!(heyboss_es::db::is_lock_timeout(&err), "{err}");
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");

    // Once the read ends, the keeper makes its partitions.
    diesel::sql_query("COMMIT").execute(&mut reader).unwrap();
    let added = partitions::ensure_without_queueing(&mut conn, Duration::from_millis(200)).unwrap();
    assert!(added >= 1, "added {added}");
    assert_eq!(partitions::in_default(&mut conn).unwrap(), 0);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events"), 151);
}
