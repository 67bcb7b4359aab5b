//! `heyboss events export` and `heyboss events import`: the whole log as NDJSON, one event per
//! line with every column but the writing transaction's id (meaningless in another database), in
//! position order, and back into a store with no events.
//!
//! Both stream in constant memory: the export pages through the log by position (keyset, a
//! batch at a time) inside one snapshot; the import reads a line at a time and inserts a batch
//! at a time. The import is one transaction: the events keep their positions, stream versions,
//! metadata and recorded_at, the position sequence continues after the last one, every
//! projection is replayed from the imported log (in place, in the same transaction), and every
//! catch-up subscriber whose effects the log or the projections already hold starts after it.
//! Either all of it commits or nothing does.

use std::io::{BufRead, Write};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Text, Timestamptz};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::es::projection;
use crate::es::store;
use crate::es::subscriber::{self, Cursor};
use crate::es::{EventStore, RecordedEvent};

/// Events read or inserted per statement: memory holds one batch, whatever the log's length.
pub const BATCH: usize = 1_000;

pub type LogError = Box<dyn std::error::Error + Send + Sync>;

/// One line of an export.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    pub position: i64,
    pub stream_type: String,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<RecordedEvent> for ExportedEvent {
    fn from(e: RecordedEvent) -> Self {
        ExportedEvent {
            position: e.position,
            stream_type: e.stream_type,
            stream_id: e.stream_id,
            stream_version: e.stream_version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

/// Write every event after `after` to `out`, one JSON object a line, in position order; the
/// number written.
///
/// Positions are taken when a row is inserted, not when it commits, so a snapshot taken while an
/// append is in flight could hold position 9 and not yet 7, and an export `--after 9` would then
/// never carry 7. So the snapshot is taken while `lock` holds the events table in SHARE mode
/// (which waits for every append in flight to end and holds new ones back); the lock is released
/// as soon as the snapshot exists, and writers wait only that long.
pub fn export(
    lock: &mut PgConnection,
    conn: &mut PgConnection,
    after: i64,
    out: &mut impl Write,
) -> Result<u64, LogError> {
    diesel::sql_query("BEGIN").execute(lock)?;
    diesel::sql_query("LOCK TABLE events IN SHARE MODE").execute(lock)?;
    let mut lock_held = Some(lock);
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
            let mut position = after;
            let mut written = 0u64;
            loop {
                let batch = store::read_after(conn, position, None, BATCH as i64)?;
                // The first read took the snapshot: appends may go on.
                if let Some(lock) = lock_held.take() {
                    diesel::sql_query("COMMIT").execute(lock)?;
                }
                let Some(last) = batch.last() else { break };
                position = last.position;
                for event in batch {
                    serde_json::to_writer(&mut *out, &ExportedEvent::from(event))?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
            }
            out.flush()?;
            Ok(written)
        })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub events: u64,
    pub last_position: i64,
    pub projections: usize,
}

/// Load an export into a store with no events, project it and place the checkpoints, in one
/// transaction. A line that is not an exported event, positions out of order or a stream version
/// repeated fail the whole import with the line's number, and nothing is written.
/// `subscribers_at_end` names the catch-up subscribers that start after the imported log (their
/// effects are in it, or are not worth repeating: notifications about history).
pub fn import(
    conn: &mut PgConnection,
    store: &EventStore,
    input: impl BufRead,
    subscribers_at_end: &[String],
) -> Result<Imported, LogError> {
    conn.transaction(|conn| {
        // Two imports at once would both find the store empty; the lock makes the second wait
        // and then find the first's events.
        diesel::sql_query("LOCK TABLE events IN EXCLUSIVE MODE").execute(conn)?;
        let present = store::head_position(conn)?;
        if present > 0 {
            return Err(format!(
                "the database already holds events (up to position {present}): import only into \
                 an empty store (a new database, after `heyboss migrate`); nothing was imported"
            )
            .into());
        }
        let (events, last_position) = insert_lines(conn, input)?;
        if last_position > 0 {
            // Appends after the import continue after the last imported position.
            diesel::sql_query("SELECT setval(pg_get_serial_sequence('events', 'position'), $1)")
                .bind::<BigInt, _>(last_position)
                .execute(conn)?;
            // Partitions for what landed in the DEFAULT one, and one ahead.
            crate::es::partitions::ensure(conn)?;
        }
        let projections = project(conn, store)?;
        let end = Cursor {
            transaction_id: current_transaction_id(conn)?,
            position: last_position,
        };
        let catch_up: Vec<String> = store
            .projections()
            .catch_up()
            .map(|p| p.name().to_owned())
            .collect();
        if last_position > 0 {
            for name in catch_up.iter().chain(subscribers_at_end) {
                subscriber::set_checkpoint(conn, name, end)?;
            }
        }
        Ok(Imported {
            events,
            last_position,
            projections,
        })
    })
}

/// Read the lines and insert them a batch at a time; the count and the last position.
fn insert_lines(conn: &mut PgConnection, mut input: impl BufRead) -> Result<(u64, i64), LogError> {
    let mut batch: Vec<ExportedEvent> = Vec::with_capacity(BATCH);
    let mut first_line_of_batch = 1;
    let mut line = String::new();
    let mut number = 0u64;
    let mut count = 0u64;
    let mut last_position = 0i64;
    // Each stream's version so far: a repeated version fails the import (the log has no unique
    // key on versions; `streams` keeps them), and the streams' rows at the end.
    let mut versions: std::collections::HashMap<(String, String), (i64, i64)> =
        std::collections::HashMap::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let event: ExportedEvent = serde_json::from_str(&line)
            .map_err(|e| format!("line {number}: not an exported event: {e}"))?;
        if event.position <= last_position {
            return Err(format!(
                "line {number}: position {} does not follow {last_position}: an export lists \
                 events in increasing position order",
                event.position
            )
            .into());
        }
        if event.stream_version < 1 {
            return Err(format!(
                "line {number}: stream version {} (versions start at 1)",
                event.stream_version
            )
            .into());
        }
        let (seen, _) = versions
            .entry((event.stream_type.clone(), event.stream_id.clone()))
            .or_insert((0, event.position));
        if event.stream_version <= *seen {
            return Err(format!(
                "line {number}: {} {} version {} repeats or goes back (version {} came before)",
                event.stream_type, event.stream_id, event.stream_version, *seen
            )
            .into());
        }
        *seen = event.stream_version;
        last_position = event.position;
        if batch.is_empty() {
            first_line_of_batch = number;
        }
        batch.push(event);
        if batch.len() == BATCH {
            insert_batch(conn, &batch, first_line_of_batch, number)?;
            count += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        insert_batch(conn, &batch, first_line_of_batch, number)?;
        count += batch.len() as u64;
    }
    let streams: Vec<(String, String, i64, i64)> = versions
        .into_iter()
        .map(|((t, i), (v, first))| (t, i, v, first))
        .collect();
    for chunk in streams.chunks(BATCH) {
        let types: Vec<&str> = chunk.iter().map(|s| s.0.as_str()).collect();
        let ids: Vec<&str> = chunk.iter().map(|s| s.1.as_str()).collect();
        let versions: Vec<i64> = chunk.iter().map(|s| s.2).collect();
        let firsts: Vec<i64> = chunk.iter().map(|s| s.3).collect();
        diesel::sql_query(
            "INSERT INTO streams (stream_type, stream_id, version, first_position)
             SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[])",
        )
        .bind::<Array<Text>, _>(&types)
        .bind::<Array<Text>, _>(&ids)
        .bind::<Array<BigInt>, _>(&versions)
        .bind::<Array<BigInt>, _>(&firsts)
        .execute(conn)?;
    }
    Ok((count, last_position))
}

fn insert_batch(
    conn: &mut PgConnection,
    batch: &[ExportedEvent],
    first_line: u64,
    last_line: u64,
) -> Result<(), LogError> {
    let positions: Vec<i64> = batch.iter().map(|e| e.position).collect();
    let stream_types: Vec<&str> = batch.iter().map(|e| e.stream_type.as_str()).collect();
    let stream_ids: Vec<&str> = batch.iter().map(|e| e.stream_id.as_str()).collect();
    let versions: Vec<i64> = batch.iter().map(|e| e.stream_version).collect();
    let event_types: Vec<&str> = batch.iter().map(|e| e.event_type.as_str()).collect();
    let schema_versions: Vec<i32> = batch.iter().map(|e| e.schema_version).collect();
    let payloads: Vec<&Value> = batch.iter().map(|e| &e.payload).collect();
    let metadata: Vec<&Value> = batch.iter().map(|e| &e.metadata).collect();
    let recorded_at: Vec<DateTime<Utc>> = batch.iter().map(|e| e.recorded_at).collect();
    // The positions are the export's (OVERRIDING SYSTEM VALUE); the transaction id is this one's.
    diesel::sql_query(
        "INSERT INTO events (position, stream_type, stream_id, stream_version, event_type,
                             schema_version, payload, metadata, recorded_at)
         OVERRIDING SYSTEM VALUE
         SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[],
                              $6::int4[], $7::jsonb[], $8::jsonb[], $9::timestamptz[])",
    )
    .bind::<Array<BigInt>, _>(&positions)
    .bind::<Array<Text>, _>(&stream_types)
    .bind::<Array<Text>, _>(&stream_ids)
    .bind::<Array<BigInt>, _>(&versions)
    .bind::<Array<Text>, _>(&event_types)
    .bind::<Array<Integer>, _>(&schema_versions)
    .bind::<Array<Jsonb>, _>(&payloads)
    .bind::<Array<Jsonb>, _>(&metadata)
    .bind::<Array<Timestamptz>, _>(&recorded_at)
    .execute(conn)
    .map_err(|e| match &e {
        diesel::result::Error::DatabaseError(_, info) => format!(
            "lines {first_line} to {last_line}: {}{}",
            info.message(),
            info.details()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        _ => format!("lines {first_line} to {last_line}: {e}"),
    })?;
    Ok(())
}

/// Replay the imported log into every projection, inline and catch-up alike, in this
/// transaction (a replay in shadow tables reads only committed events).
fn project(conn: &mut PgConnection, store: &EventStore) -> Result<usize, LogError> {
    let mut count = 0;
    for p in store.projections().iter() {
        projection::rebuild(conn, p.as_ref(), 5_000, |_| {})?;
        count += 1;
    }
    Ok(count)
}

fn current_transaction_id(conn: &mut PgConnection) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    diesel::sql_query("SELECT pg_current_xact_id()::text::bigint AS id")
        .get_result::<Id>(conn)
        .map(|i| i.id)
}

fn print_partitions(partitions: &[heyboss_es::partitions::Partition]) {
    println!(
        "{:>6}  {:<14} {:>14} {:>14} {:>12}  state",
        "number", "table", "from", "to", "rows (est.)"
    );
    for p in partitions {
        println!(
            "{:>6}  {:<14} {:>14} {:>14} {:>12}  {}",
            p.number,
            p.table,
            p.from_position,
            p.to_position - 1,
            p.rows,
            match p.detached_at {
                Some(at) => format!("detached {}", at.format("%Y-%m-%d %H:%M UTC")),
                None => "attached".to_owned(),
            }
        );
    }
}

/// `heyboss events export|import|partitions|detach|attach`.
pub fn run(
    database: &crate::db::Database,
    command: crate::cli::EventsCommand,
) -> Result<(), LogError> {
    use crate::cli::EventsCommand;
    let pool = crate::db::pool(&database.url, 2)?;
    let mut conn = pool.get()?;
    crate::db::migrate(&mut conn)?;
    match command {
        EventsCommand::Export { after } => {
            let mut lock = pool.get()?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
            let written = export(&mut lock, &mut conn, after, &mut out)?;
            eprintln!("exported {written} events");
        }
        EventsCommand::Import { file } => {
            let store = crate::startup::event_store();
            // Notifications about history are not sent again (the feed starts at the log's
            // head, as when it was deployed); reactions between contexts read the imported
            // log from its start, which changes nothing they already did (they act only on
            // what is still pending).
            let at_end = [crate::ops::notifications::SUBSCRIBER.to_owned()];
            let imported = if file == "-" {
                import(&mut conn, &store, std::io::stdin().lock(), &at_end)?
            } else {
                let f =
                    std::fs::File::open(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
                import(&mut conn, &store, std::io::BufReader::new(f), &at_end)?
            };
            println!(
                "imported {} events (last position {}); {} projections replayed",
                imported.events, imported.last_position, imported.projections
            );
        }
        EventsCommand::Partitions => {
            let added = heyboss_es::partitions::ensure(&mut conn)?;
            if added > 0 {
                println!(
                    "made {added} partition{} ahead",
                    if added == 1 { "" } else { "s" }
                );
            }
            print_partitions(&heyboss_es::partitions::list(&mut conn)?);
        }
        EventsCommand::Detach { number } => {
            let p = heyboss_es::partitions::detach(&mut conn, number)?;
            println!(
                "detached partition {} (positions {} to {}): table {} is no longer part of the log; archive it with `pg_dump -t {}`, bring it back with `heyboss events attach {}`",
                p.number, p.from_position, p.to_position - 1, p.table, p.table, p.number
            );
        }
        EventsCommand::Attach { number } => {
            let p = heyboss_es::partitions::attach(&mut conn, number)?;
            println!(
                "attached partition {} (positions {} to {}) again",
                p.number,
                p.from_position,
                p.to_position - 1
            );
        }
    }
    Ok(())
}
