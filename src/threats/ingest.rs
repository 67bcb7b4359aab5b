//! The sensor API's batch ingest: parse, drop duplicates, validate the whole batch in memory
//! against a few set-based reads, then append every event of the batch with multi-row INSERTs and
//! project them, all in one transaction (all or nothing).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::commands::{parse_score, parse_signature_name};
use super::events::{SensorEvent, SignatureEvent, SESSION_STREAM};
use crate::es::projection::ProjectionFailed;
use crate::es::store::StreamAppend;
use crate::es::{Actor, CommandError, DomainEvent, EventStore, Metadata, NewEvent, Projection};
use crate::prepared::prepared;
use crate::schema::{threat_files, threat_sessions, threat_signatures};

/// Most events accepted in one batch.
pub const MAX_BATCH: usize = 5000;

/// One entry of a 422 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemError {
    pub index: usize,
    pub id: String,
    pub message: String,
}

/// One posted event, parsed.
#[derive(Debug, Clone)]
pub struct Item {
    pub index: usize,
    pub id: Uuid,
    pub event: SensorEvent,
}

/// A parsed batch: the events that parsed, and the errors of those that did not.
pub type Parsed = (Vec<Item>, Vec<ItemError>);

/// Parse a request body. `Err` is a 400 (not JSON, or not `{"events":[...]}`); item errors
/// become 422s, reported together with the validation errors of the rest.
pub fn parse_body(body: &[u8]) -> Result<Parsed, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let list = value
        .as_object()
        .and_then(|o| o.get("events"))
        .and_then(Value::as_array)
        .ok_or("the body must be an object with an \"events\" array")?;
    if list.len() > MAX_BATCH {
        return Err(format!("at most {MAX_BATCH} events per batch"));
    }
    let mut items = Vec::with_capacity(list.len());
    let mut errors = Vec::new();
    for (index, raw) in list.iter().enumerate() {
        let id_text = raw
            .get("id")
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default();
        match parse_item(raw) {
            Ok((id, event)) => items.push(Item { index, id, event }),
            Err(message) => errors.push(ItemError {
                index,
                id: id_text.chars().take(100).collect(),
                message,
            }),
        }
    }
    Ok((items, errors))
}

fn parse_item(raw: &Value) -> Result<(Uuid, SensorEvent), String> {
    let obj = raw.as_object().ok_or("each event must be an object")?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .and_then(event_id)
        .ok_or("id must be a UUID in its hyphenated form (8-4-4-4-12 hexadecimal digits)")?;
    let event_type = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or("type must be a string")?;
    if !SensorEvent::TYPES.contains(&event_type) {
        return Err(format!(
            "unknown type {:?}: expected one of {}",
            event_type.chars().take(50).collect::<String>(),
            SensorEvent::TYPES.join(", ")
        ));
    }
    let data = match obj.get("data") {
        Some(data @ Value::Object(_)) => data,
        _ => return Err("data must be an object".into()),
    };
    if let ("SessionDiscovered", Some(Value::String(t))) = (event_type, data.get("start_time")) {
        start_time_form(t)?;
    }
    // The API takes the current shape; a field a version added is optional for sensors, but
    // when given it is a string (an explicit null is refused, as the OpenAPI document says).
    if event_type == "FileScored" && data.get("engine_version") == Some(&Value::Null) {
        return Err("invalid FileScored data: engine_version must be a string when given".into());
    }
    // Read in the current shape straight from the body's value, borrowed (no copy of the data,
    // and no buffering of it by serde, as a map with `data` before `type` made it do).
    let event: SensorEvent = crate::es::event::decode_current(event_type, data)
        .map_err(|e| format!("invalid {event_type} data: {e}"))?;
    Ok((id, normalize(event)?))
}

/// An event id as DESIGN shows it: `8-4-4-4-12` hexadecimal digits, either case. The other
/// spellings `Uuid::parse_str` reads (no dashes, braces, `urn:uuid:`) are refused.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

fn event_id(s: &str) -> Option<Uuid> {
    let hyphenated = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    hyphenated.then(|| Uuid::parse_str(s).ok()).flatten()
}

pub const MD5_PATTERN: &str = "^[0-9a-fA-F]{32}$";

/// What `text` accepts, as the OpenAPI document states it (with a `maxLength`): no control
/// character (Unicode category Cc, `char::is_control`) anywhere, and neither end a whitespace
/// character (Unicode White_Space, `char::is_whitespace`; those that are not also controls are
/// listed). Spelled in the subset of regular expressions that ECMA-262, Python and Rust read alike.
pub const TEXT_PATTERN: &str = concat!(
    r"^[^\u0000-\u001F\u007F-\u009F \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]",
    r"(?:[^\u0000-\u001F\u007F-\u009F]*",
    r"[^\u0000-\u001F\u007F-\u009F \u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?$"
);

/// The fields a score and a rescore share, checked in the order they are reported.
struct Hit {
    file_id: String,
    session_id: String,
    integration: String,
    score: i32,
    signature: String,
}

impl Hit {
    fn check(
        file_id: &str,
        session_id: &str,
        integration: &str,
        raw_score: i32,
        signature: &str,
    ) -> Result<Hit, String> {
        Ok(Hit {
            file_id: text("file_id", file_id, 200)?,
            session_id: text("session_id", session_id, 200)?,
            integration: text("integration", integration, 100)?,
            score: score(raw_score)?,
            signature: parse_signature_name(&text("signature", signature, 100)?)
                .map_err(|e| e.to_string())?,
        })
    }
}

/// A text field as sent, never trimmed (see `TEXT_PATTERN`), of 1 to `max` characters.
fn text(field: &str, value: &str, max: usize) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(format!("{field} must not be empty or blank"));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(format!(
            "{field} has at most {max} characters and no control characters"
        ));
    }
    if value.trim() != value {
        return Err(format!("{field} must not start or end with whitespace"));
    }
    Ok(value.to_owned())
}

fn ip(field: &str, value: &str) -> Result<String, String> {
    value.parse::<IpAddr>().map(|a| a.to_string()).map_err(|_| {
        format!(
            "{field} {:?} is not an IP address (without spaces, brackets or zone)",
            value.chars().take(60).collect::<String>()
        )
    })
}

fn score(value: i32) -> Result<i32, String> {
    parse_score(value.into()).map_err(|e| e.to_string())
}

const START_TIME_RULE: &str = "start_time must be an RFC 3339 time, YYYY-MM-DDTHH:MM:SS[.fraction] then Z or \
    ±HH:MM, with a year from 0001 to 9999 (in the years 0001 and 9999: in UTC, Z, and not a leap second)";

/// The written form of a start time, also the OpenAPI document's pattern for it. chrono reads
/// relaxed forms too (a space for the `T`, ...), which this refuses. A year outside 0001 to 9999
/// cannot be stored (RFC 3339 allows 0000, which PostgreSQL does not read); in the first and last
/// year an offset or a leap second could carry the instant out of that range, so those two years
/// are taken in UTC only: a rule a pattern can state, where "the instant, in UTC" is not.
pub const START_TIME_PATTERN: &str = concat!(
    "^(?:(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])",
    "-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.][0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})",
    "|(?:0001|9999)-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](?:[.][0-9]+)?[Zz])$"
);

fn start_time_form(t: &str) -> Result<(), String> {
    static FORM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(START_TIME_PATTERN).expect("a valid pattern")
    });
    if FORM.is_match(t) {
        Ok(())
    } else {
        Err(format!("invalid SessionDiscovered data: {START_TIME_RULE}"))
    }
}

/// A start time is kept to the microsecond, as the database stores it, so that the event says
/// exactly what the read models hold (a replay in the database reads the time from the stored
/// payload). A leap second (23:59:60 in UTC, the only one RFC 3339 allows) is the next second's
/// start, as PostgreSQL reads it. `start_time_form` has already kept the year within 0001 to 9999;
/// the year is checked again here, after the time zone is applied, as a last guard: out of range,
/// "timestamp out of range" would fail the whole batch with a 500.
fn storable_time(
    t: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use chrono::{Datelike, SubsecRound, Timelike};
    let t = match t.nanosecond().checked_sub(1_000_000_000) {
        Some(_) if (t.hour(), t.minute()) != (23, 59) => {
            return Err(format!(
                "invalid SessionDiscovered data: start_time has a leap second at {}: only 23:59:60 in UTC is one",
                t.format("%H:%M")
            ))
        }
        Some(ns) => t.with_nanosecond(ns).unwrap_or(t) + chrono::TimeDelta::seconds(1),
        None => t,
    };
    if (1..=9999).contains(&t.year()) {
        Ok(t.trunc_subsecs(6))
    } else {
        Err(format!("invalid SessionDiscovered data: {START_TIME_RULE}"))
    }
}

/// Check field values and bring them to one form (lowercase md5 and protocol, canonical IPs).
fn normalize(event: SensorEvent) -> Result<SensorEvent, String> {
    use SensorEvent::*;
    Ok(match event {
        SessionDiscovered {
            session_id,
            start_time,
            protocol,
            source_ip,
            destination_ip,
            source_port,
            destination_port,
        } => SessionDiscovered {
            session_id: text("session_id", &session_id, 200)?,
            start_time: storable_time(start_time)?,
            protocol: text("protocol", &protocol, 32)?.to_lowercase(),
            source_ip: ip("source_ip", &source_ip)?,
            destination_ip: ip("destination_ip", &destination_ip)?,
            source_port,
            destination_port,
        },
        SessionScored {
            session_id,
            threat_contributor,
            score: s,
        } => SessionScored {
            session_id: text("session_id", &session_id, 200)?,
            threat_contributor: text("threat_contributor", &threat_contributor, 200)?,
            score: score(s)?,
        },
        FileDiscovered {
            file_id,
            session_id,
            md5,
            filename,
            file_type,
            size_bytes,
        } => {
            let md5 = md5.to_lowercase();
            if md5.len() != 32 || !md5.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err("md5 must be 32 hexadecimal digits".into());
            }
            if size_bytes < 0 {
                return Err("size_bytes must not be negative".into());
            }
            FileDiscovered {
                file_id: text("file_id", &file_id, 200)?,
                session_id: text("session_id", &session_id, 200)?,
                md5,
                filename: text("filename", &filename, 255)?,
                file_type: text("file_type", &file_type, 64)?.to_lowercase(),
                size_bytes,
            }
        }
        FileScored {
            file_id,
            session_id,
            integration,
            score,
            signature,
            engine_version,
        } => {
            let h = Hit::check(&file_id, &session_id, &integration, score, &signature)?;
            FileScored {
                file_id: h.file_id,
                session_id: h.session_id,
                integration: h.integration,
                score: h.score,
                signature: h.signature,
                engine_version: engine_version
                    .map(|v| text("engine_version", &v, 64))
                    .transpose()?,
            }
        }
        FileRescored {
            file_id,
            session_id,
            integration,
            new_score,
            signature,
        } => {
            let h = Hit::check(&file_id, &session_id, &integration, new_score, &signature)?;
            FileRescored {
                file_id: h.file_id,
                session_id: h.session_id,
                integration: h.integration,
                new_score: h.score,
                signature: h.signature,
            }
        }
    })
}

/// What the store already knows about the sessions and files a batch refers to.
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub sessions: HashSet<String>,
    /// file id -> its session id
    pub files: HashMap<String, String>,
    /// (file id, integration, signature) scored before
    pub hits: HashSet<(String, String, String)>,
}

/// Validate a batch in order against what is known (earlier events of the batch count): the pure
/// heart of the ingest. Returns every error, not only the first.
pub fn validate(known: &mut Known, items: &[Item]) -> Result<(), Vec<ItemError>> {
    validate_into(known, items, Vec::new())
}

fn validate_into<'a>(
    known: &mut Known,
    items: impl IntoIterator<Item = &'a Item>,
    mut errors: Vec<ItemError>,
) -> Result<(), Vec<ItemError>> {
    for item in items {
        if let Err(message) = check(known, &item.event) {
            errors.push(ItemError {
                index: item.index,
                id: item.id.to_string(),
                message,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.sort_by_key(|e| e.index);
        Err(errors)
    }
}

fn check(known: &mut Known, event: &SensorEvent) -> Result<(), String> {
    use SensorEvent::*;
    let file_in = |known: &Known, file_id: &str, session_id: &str| -> Result<(), String> {
        match known.files.get(file_id) {
            None => Err(format!("unknown file {file_id}: send FileDiscovered first")),
            Some(s) if s != session_id => Err(format!(
                "file {file_id} belongs to session {s}, not {session_id}"
            )),
            Some(_) => Ok(()),
        }
    };
    match event {
        SessionDiscovered { session_id, .. } => {
            if !known.sessions.insert(session_id.clone()) {
                return Err(format!("session {session_id} was already discovered"));
            }
        }
        SessionScored { session_id, .. } => {
            if !known.sessions.contains(session_id) {
                return Err(format!("unknown session {session_id}"));
            }
        }
        FileDiscovered {
            file_id,
            session_id,
            ..
        } => {
            if !known.sessions.contains(session_id) {
                return Err(format!("unknown session {session_id}"));
            }
            if known.files.contains_key(file_id) {
                return Err(format!("file {file_id} was already discovered"));
            }
            known.files.insert(file_id.clone(), session_id.clone());
        }
        FileScored {
            file_id,
            session_id,
            integration,
            signature,
            ..
        }
        | FileRescored {
            file_id,
            session_id,
            integration,
            signature,
            ..
        } => {
            file_in(known, file_id, session_id)?;
            let key = (file_id.clone(), integration.clone(), signature.clone());
            // A pair is scored once, then only rescored.
            if matches!(event, FileRescored { .. }) {
                if !known.hits.contains(&key) {
                    return Err(format!(
                        "rescoring an unscored pair: file {file_id} was never scored by {integration} for {signature}"
                    ));
                }
            } else if !known.hits.insert(key) {
                return Err(format!(
                    "file {file_id} was already scored by {integration} for {signature}: send FileRescored"
                ));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub accepted: usize,
    pub duplicates: usize,
}

#[derive(Debug)]
pub enum IngestError {
    Invalid(Vec<ItemError>),
    /// Concurrent writers kept colliding; the client may retry.
    Busy,
    Database(diesel::result::Error),
    /// No connection to run the batch on (the pool timed out, the request was cancelled).
    NoConnection(crate::db::NoConnection),
}

impl From<crate::db::NoConnection> for IngestError {
    fn from(e: crate::db::NoConnection) -> Self {
        IngestError::NoConnection(e)
    }
}

impl From<diesel::result::Error> for IngestError {
    fn from(e: diesel::result::Error) -> Self {
        IngestError::Database(e)
    }
}

/// The sensor owning a token, if the token is valid and the sensor not revoked.
pub fn authenticate(conn: &mut PgConnection, token: &str) -> QueryResult<Option<Uuid>> {
    use crate::schema::{sensor_tokens, sensors};
    sensor_tokens::table
        .inner_join(sensors::table.on(sensors::id.eq(sensor_tokens::sensor_id)))
        .filter(sensor_tokens::token_digest.eq(crate::secrets::digest(token)))
        .filter(sensors::active.eq(true))
        .select(sensors::id)
        .first(conn)
        .optional()
}

/// Batches retried after a collision with a concurrent batch, by this process.
static RETRIES: AtomicU64 = AtomicU64::new(0);

/// How many batches this process retried after a collision with a concurrent batch (a deadlock
/// PostgreSQL broke, or a key both inserted): each is work done twice.
pub fn retries() -> u64 {
    RETRIES.load(Ordering::Relaxed)
}

/// Transactions that wrote batches, and the batches they wrote, in this process.
static WRITES: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// How many transactions this process wrote batches in, and how many batches they held: more
/// batches than transactions when batches queued for the same sessions and went together.
pub fn group_writes() -> (u64, u64) {
    (
        WRITES[0].load(Ordering::Relaxed),
        WRITES[1].load(Ordering::Relaxed),
    )
}

/// A batch handed to [`ingest`]: what it writes, and its answer once written.
struct Batch {
    metadata: Metadata,
    parsed: Parsed,
    answer: Mutex<Option<Answer>>,
}

type Answer = Result<Accepted, IngestError>;

impl Batch {
    fn take_answer(&self) -> Answer {
        self.answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| {
                Err(IngestError::Database(
                    diesel::result::Error::QueryBuilderError(
                        "the batch's group stopped before it was written".into(),
                    ),
                ))
            })
    }
}

/// Write a parsed batch: all or nothing, duplicates skipped and counted.
pub fn ingest(
    conn: &mut PgConnection,
    store: &EventStore,
    metadata: &Metadata,
    parsed: &Parsed,
) -> Result<Accepted, IngestError> {
    ingest_on(|| Ok(conn), store, metadata.clone(), parsed.clone())
}

/// [`ingest`] with a connection taken only if this batch writes (the sensor API passes its
/// pool): a batch another batch's group writes waits without one.
///
/// Batches of this process that share sessions take turns in arrival order
/// ([`SessionQueue`]). When a batch's turn comes, the batches queued behind it for the same
/// sessions go along (group commit): one transaction claims their ids, locks their sessions,
/// appends their events and runs the projections once for all of them, so that the rows they
/// share (sessions, report totals) are written and the commit flushed once a group instead of
/// once a batch. Each batch's answer is what it gets alone after the batches before it: each is
/// validated by itself against the store and the batches of the group accepted before it, a
/// refused one changes nothing (its claims are given back), and an id two of them carry is the
/// first accepted one's. When the group's transaction fails, every batch gets that error (the
/// database went away), or, for any other failure, each batch is written alone.
pub fn ingest_on<C: std::ops::DerefMut<Target = PgConnection>>(
    connect: impl FnOnce() -> Result<C, IngestError>,
    store: &EventStore,
    metadata: Metadata,
    parsed: Parsed,
) -> Result<Accepted, IngestError> {
    let batch = Arc::new(Batch {
        metadata,
        parsed,
        answer: Mutex::new(None),
    });
    let group = match SESSION_QUEUE.wait_turn(&batch) {
        Turn::Answered => return batch.take_answer(),
        Turn::Lead(group) => group,
    };
    let batches: Vec<&Batch> = group.batches.iter().map(|b| &**b).collect();
    let answers = match connect() {
        Ok(mut conn) => write_group(&mut conn, store, &batches),
        Err(e) => batches.iter().map(|_| copy_error(&e)).collect(),
    };
    for (b, answer) in group.batches.iter().zip(answers) {
        *b.answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer);
    }
    // Hands the sessions on, and wakes the batches it wrote to their answers.
    drop(group);
    batch.take_answer()
}

/// A failed group's transaction as it ended.
enum GroupError {
    Failed(IngestError),
    /// Every batch was refused or was duplicates only: their answers, and nothing to keep.
    NothingStored(Vec<Answer>),
    /// An id of the group was stored before (or by a batch that committed meanwhile): claimed
    /// as all new, the group must claim each id instead.
    Repeated,
}

impl From<diesel::result::Error> for GroupError {
    fn from(e: diesel::result::Error) -> Self {
        GroupError::Failed(IngestError::Database(e))
    }
}

/// Write a group in one transaction (retried as a whole after a collision): one answer a batch.
fn write_group(conn: &mut PgConnection, store: &EventStore, batches: &[&Batch]) -> Vec<Answer> {
    let mut attempt = 0;
    let mut claim = Claim::AllNew;
    loop {
        match conn.transaction(|conn| write_once(conn, store, batches, claim)) {
            Ok(answers) => {
                WRITES[0].fetch_add(1, Ordering::Relaxed);
                WRITES[1].fetch_add(batches.len() as u64, Ordering::Relaxed);
                return answers;
            }
            Err(GroupError::NothingStored(answers)) => return answers,
            // Only the claim of all ids as new fails so (not counted as a retry: no collision).
            Err(GroupError::Repeated) => claim = Claim::Each,
            // No pause: a unique violation is raised once the other batch has committed, so
            // the retry reads its writes.
            Err(GroupError::Failed(IngestError::Busy)) if attempt < 4 => {
                attempt += 1;
                RETRIES.fetch_add(batches.len() as u64, Ordering::Relaxed);
            }
            Err(GroupError::Failed(e)) if batches.len() == 1 => return vec![Err(e)],
            // Nothing was stored, and the next try would fail the same way.
            Err(GroupError::Failed(e)) if is_unavailable(&e) => {
                return batches.iter().map(|_| copy_error(&e)).collect()
            }
            // A failure one batch may have caused is not the others': each alone.
            Err(GroupError::Failed(e)) => {
                tracing::warn!(batches = batches.len(), error = ?e, "a group of batches failed; writing each alone");
                return batches
                    .iter()
                    .flat_map(|b| write_group(conn, store, &[*b]))
                    .collect();
            }
        }
    }
}

fn is_unavailable(e: &IngestError) -> bool {
    match e {
        IngestError::Database(e) => crate::db::is_unavailable(e),
        IngestError::NoConnection(crate::db::NoConnection::Pool(_)) => true,
        _ => false,
    }
}

/// The same failure for another batch of the group: the same answer (a 503 stays a 503).
fn copy_error(e: &IngestError) -> Answer {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    Err(match e {
        IngestError::Invalid(errors) => IngestError::Invalid(errors.clone()),
        IngestError::Busy => IngestError::Busy,
        IngestError::Database(E::DatabaseError(kind, info)) => {
            IngestError::Database(E::DatabaseError(*kind, Box::new(info.message().to_owned())))
        }
        other if is_unavailable(other) => IngestError::Database(E::DatabaseError(
            K::ClosedConnection,
            Box::new(format!("{other:?}")),
        )),
        other => IngestError::Database(E::QueryBuilderError(format!("{other:?}").into())),
    })
}

/// The batches of this process waiting for, or holding, their sessions.
static SESSION_QUEUE: SessionQueue = SessionQueue {
    queue: Mutex::new(Queue {
        entries: Vec::new(),
        contended: None,
        last_write: Duration::ZERO,
        leaders_waiting: 0,
    }),
    changed: Condvar::new(),
    tickets: AtomicU64::new(0),
};

/// Most batches, and most events, one group writes.
const GROUP_BATCHES: usize = 16;
const GROUP_EVENTS: usize = 2 * MAX_BATCH;

/// Batches of one process that share sessions take turns here, in arrival order, before they
/// open their transaction. Their transactions would queue anyway, on the sessions' row locks
/// ([`lock_sessions`], which still orders batches of different processes), but a transaction
/// waiting there holds its snapshot and transaction id, so that PostgreSQL cannot prune the row
/// versions the running batch leaves behind: with eight posters on shared sessions, each batch's
/// upserts of the report rows every batch touches took 1.7 to 3.7 times as long as with one, and
/// eight posters scored 20% less than one.
///
/// A batch whose turn comes with no other batch queued for its sessions waits a moment for one
/// while batches have lately been queuing for each other ([`follower_wait`]): with two posters on
/// shared sessions one batch is written while the other waits, so that without this pause each
/// batch went alone (1.0 batches a transaction) and two posters scored 0.70x to 1.25x one poster.
struct SessionQueue {
    queue: Mutex<Queue>,
    changed: Condvar,
    tickets: AtomicU64,
}

struct Queue {
    /// In ticket (arrival) order.
    entries: Vec<Entry>,
    /// When a batch last had to wait for an earlier one that shares its sessions.
    contended: Option<Instant>,
    /// How long the last group took from its turn to its answers.
    last_write: Duration,
    /// Leaders waiting for a follower: an arriving batch wakes them.
    leaders_waiting: usize,
}

/// How recent a queued batch must be for a lone leader to expect another.
const CONTENTION_WINDOW: Duration = Duration::from_secs(1);

/// How long a lone leader waits for a follower: a quarter of the last group's write (a second
/// batch in the same transaction costs less than that to write; the follower is the next batch
/// of a poster just answered: its round trip and parse), within bounds.
fn follower_wait(last_write: Duration) -> Duration {
    (last_write / 4).clamp(Duration::from_millis(2), Duration::from_millis(50))
}

struct Entry {
    ticket: u64,
    sessions: HashSet<String>,
    batch: Arc<Batch>,
    /// Not yet written, nor taken along by another batch's group.
    waiting: bool,
}

enum Turn {
    /// Another batch's group wrote this one: its answer is in.
    Answered,
    /// This batch writes: itself and the batches of the group.
    Lead(Group),
}

/// The batches one transaction writes, the leader first, in arrival order. Dropped, it takes
/// them off the queue, which hands their sessions on.
struct Group {
    tickets: Vec<u64>,
    batches: Vec<Arc<Batch>>,
    started: Instant,
}

impl SessionQueue {
    /// Wait until no batch that arrived earlier and shares a session is still waiting or being
    /// written; or until another batch's group has written this one.
    fn wait_turn(&'static self, batch: &Arc<Batch>) -> Turn {
        let sessions: HashSet<String> = batch
            .parsed
            .0
            .iter()
            .map(|i| i.event.session_id().to_owned())
            .collect();
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the lock, so that the entries stay in ticket order.
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        queue.entries.push(Entry {
            ticket,
            sessions,
            batch: batch.clone(),
            waiting: true,
        });
        if queue.leaders_waiting > 0 {
            self.changed.notify_all();
        }
        let mut turn_since: Option<Instant> = None;
        loop {
            let Some(at) = queue.entries.iter().position(|e| e.ticket == ticket) else {
                return Turn::Answered;
            };
            let (earlier, mine) = queue.entries.split_at(at);
            if !mine[0].waiting {
                // Taken along by another batch's group: its answer comes when that is written.
                queue = self.changed.wait(queue).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            if earlier
                .iter()
                .any(|e| !e.sessions.is_disjoint(&mine[0].sessions))
            {
                queue.contended = Some(Instant::now());
                queue = self.changed.wait(queue).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let members = members(&queue.entries, at);
            let expect_follower = members.len() == 1
                && queue
                    .contended
                    .is_some_and(|t| t.elapsed() < CONTENTION_WINDOW);
            if expect_follower {
                let since = *turn_since.get_or_insert_with(Instant::now);
                let left = follower_wait(queue.last_write).saturating_sub(since.elapsed());
                if !left.is_zero() {
                    queue.leaders_waiting += 1;
                    queue = self
                        .changed
                        .wait_timeout(queue, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    queue.leaders_waiting -= 1;
                    continue;
                }
                // None came: the other posters have stopped. No more waiting until batches
                // queue for each other again.
                queue.contended = None;
            }
            return Turn::Lead(take(&mut queue.entries, &members));
        }
    }
}

/// The group of the batch at `at`, whose turn it is: the waiting batches after it that share a
/// session with the group and none with an earlier batch outside it (those go after that one,
/// as alone), within the group's bounds. A batch sharing nothing with it runs by itself, at once.
fn members(entries: &[Entry], at: usize) -> Vec<usize> {
    let mut members = vec![at];
    let mut events = entries[at].batch.parsed.0.len();
    for j in at + 1..entries.len() {
        if members.len() == GROUP_BATCHES {
            break;
        }
        let candidate = &entries[j];
        let size = candidate.batch.parsed.0.len();
        if !candidate.waiting || events + size > GROUP_EVENTS {
            continue;
        }
        let shares = |k: &usize| !entries[*k].sessions.is_disjoint(&candidate.sessions);
        if members.iter().any(shares)
            && !(0..j).filter(|k| !members.contains(k)).any(|k| shares(&k))
        {
            members.push(j);
            events += size;
        }
    }
    members
}

/// The group of `members`, marked as no longer waiting.
fn take(entries: &mut [Entry], members: &[usize]) -> Group {
    for &m in members {
        entries[m].waiting = false;
    }
    Group {
        tickets: members.iter().map(|&m| entries[m].ticket).collect(),
        batches: members.iter().map(|&m| entries[m].batch.clone()).collect(),
        started: Instant::now(),
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let mut queue = SESSION_QUEUE
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        queue.entries.retain(|e| !self.tickets.contains(&e.ticket));
        queue.last_write = self.started.elapsed();
        SESSION_QUEUE.changed.notify_all();
    }
}

/// The unique keys two concurrent batches can both insert. Batches sharing existing sessions
/// queue for them ([`lock_sessions`]), and new signature names are locked too, so what is left
/// is rare: a new session or file discovered by both (its stream's first version, its row), a
/// signature an admin creates while a batch registers it, the clearance-set view both create on
/// first use. (Event ids are claimed with `ON CONFLICT DO NOTHING`, and the other tables the
/// ingest writes are upserted, or keyed by the event's position.)
const COLLIDING_KEYS: [&str; 5] = [
    "streams_pkey",
    "threat_hits_pkey",
    "threat_sessions_pkey",
    "threat_files_pkey",
    "threat_views_pkey",
];

/// A clash with a concurrent batch: the whole batch is retried. Any other unique violation is a
/// defect, reported as one rather than as a busy server.
fn is_collision(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::DatabaseError(K::UniqueViolation, info) => info
            .constraint_name()
            .is_some_and(|c| COLLIDING_KEYS.contains(&c)),
        E::DatabaseError(K::SerializationFailure, _) => true,
        E::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

fn file_of(event: &SensorEvent) -> Option<&str> {
    match event {
        SensorEvent::FileDiscovered { file_id, .. }
        | SensorEvent::FileScored { file_id, .. }
        | SensorEvent::FileRescored { file_id, .. } => Some(file_id),
        _ => None,
    }
}

fn signature_of(event: &SensorEvent) -> Option<&str> {
    match event {
        SensorEvent::FileScored { signature, .. } | SensorEvent::FileRescored { signature, .. } => {
            Some(signature)
        }
        _ => None,
    }
}

/// Sorted, without repeats.
fn distinct<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut keys: Vec<String> = keys.map(str::to_owned).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

impl Known {
    /// What is known about the sessions, files and pairs `items` refer to.
    fn about(&self, items: &[&Item]) -> Known {
        let mut part = Known::default();
        for item in items {
            let session = item.event.session_id();
            if self.sessions.contains(session) {
                part.sessions.insert(session.to_owned());
            }
            if let Some((file, of)) = file_of(&item.event).and_then(|f| self.files.get_key_value(f))
            {
                part.files.insert(file.clone(), of.clone());
            }
            if let Some((f, i, s)) = item.event.hit_key() {
                let key = (f.to_owned(), i.to_owned(), s.to_owned());
                if self.hits.contains(&key) {
                    part.hits.insert(key);
                }
            }
        }
        part
    }

    fn extend(&mut self, other: Known) {
        self.sessions.extend(other.sessions);
        self.files.extend(other.files);
        self.hits.extend(other.hits);
    }
}

/// The unique key of the sensors' event ids.
const SENSOR_ID_KEY: &str = "sensor_event_ids_pkey";

/// How a group claims its event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Every id as new, in one plain INSERT that fails if one is not.
    AllNew,
    /// Each id if it is new (`ON CONFLICT DO NOTHING`), the others counted as duplicates.
    Each,
}

fn write_once(
    conn: &mut PgConnection,
    store: &EventStore,
    batches: &[&Batch],
    claim: Claim,
) -> Result<Vec<Answer>, GroupError> {
    let all = || batches.iter().flat_map(|b| &b.parsed.0);
    // 1. Duplicates: the group claims its ids, and those it gets back are new; an id stored
    //    before, or by a concurrent transaction (this one waits for it to commit), is not
    //    returned. Claimed in sorted order, so that two posts of the same ids in different
    //    orders queue for each other instead of deadlocking.
    //    First as if every id were new (the usual case), with a plain INSERT: one probe of the
    //    index per event, where `ON CONFLICT DO NOTHING` probes it, then inserts with a
    //    speculative token (measured: a quarter less server time for 500 ids). An id stored
    //    before, or by a concurrent transaction that commits (the INSERT waits for it), makes
    //    it fail: the group is then written again, claiming each id with `ON CONFLICT`.
    let mut ids: Vec<Uuid> = all().map(|i| i.id).collect();
    ids.sort_unstable();
    ids.dedup();
    let claimed: HashSet<Uuid> = match claim {
        Claim::AllNew => {
            match prepared("INSERT INTO sensor_event_ids (event_id) SELECT unnest($1::uuid[])")
                .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
                .execute(conn)
            {
                Ok(_) => ids.iter().copied().collect(),
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    info,
                )) if info.constraint_name() == Some(SENSOR_ID_KEY) => {
                    return Err(GroupError::Repeated)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Claim::Each => prepared(
            "INSERT INTO sensor_event_ids (event_id) SELECT unnest($1::uuid[])
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&ids)
        .load::<ClaimedId>(conn)?
        .into_iter()
        .map(|c| c.event_id)
        .collect(),
    };

    // 2. What the claimed events refer to, in a few set-based reads for the whole group.
    let new: Vec<&Item> = all().filter(|i| claimed.contains(&i.id)).collect();
    let mut known = Known::default();
    if !new.is_empty() {
        let session_ids = distinct(new.iter().map(|i| i.event.session_id()));
        let file_ids = distinct(new.iter().filter_map(|i| file_of(&i.event)));
        known = Known {
            sessions: lock_sessions(conn, &session_ids)?,
            files: threat_files::table
                .filter(threat_files::file_id.eq_any(&file_ids))
                .select((threat_files::file_id, threat_files::session_id))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect(),
            hits: scored_pairs(conn, store, &new, &session_ids)?,
        };
    }

    // 3. Each batch in turn, as alone after the ones before it: its events not stored before
    //    nor by an accepted batch of the group (nor earlier in itself), validated against the
    //    store and the accepted batches. A refused batch leaves nothing behind.
    let mut used: HashSet<Uuid> = HashSet::new();
    let mut answers = Vec::with_capacity(batches.len());
    let mut accepted: Vec<(&Batch, Vec<&Item>)> = Vec::new();
    for (n, batch) in batches.iter().enumerate() {
        let (items, parse_errors) = &batch.parsed;
        let mut in_batch = HashSet::new();
        let fresh: Vec<&Item> = items
            .iter()
            .filter(|i| claimed.contains(&i.id) && !used.contains(&i.id) && in_batch.insert(i.id))
            .collect();
        let duplicates = items.len() - fresh.len();
        if fresh.is_empty() && parse_errors.is_empty() {
            answers.push(Ok(Accepted {
                accepted: 0,
                duplicates,
            }));
            continue;
        }
        let last = n + 1 == batches.len();
        let mut mine = if last {
            std::mem::take(&mut known)
        } else {
            known.about(&fresh)
        };
        match validate_into(&mut mine, fresh.iter().copied(), parse_errors.to_vec()) {
            Err(errors) => answers.push(Err(IngestError::Invalid(errors))),
            Ok(()) => {
                if !last {
                    known.extend(mine);
                }
                used.extend(fresh.iter().map(|i| i.id));
                answers.push(Ok(Accepted {
                    accepted: fresh.len(),
                    duplicates,
                }));
                accepted.push((batch, fresh));
            }
        }
    }
    if accepted.is_empty() {
        return Err(GroupError::NothingStored(answers));
    }
    // The ids of refused batches are given back, as their own rollback would.
    let unused: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| claimed.contains(id) && !used.contains(id))
        .collect();
    if !unused.is_empty() {
        prepared("DELETE FROM sensor_event_ids WHERE event_id = ANY($1::uuid[])")
            .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(&unused)
            .execute(conn)?;
    }

    // 4. Unknown signature names are registered as restricted (deny by default), each with
    //    the first batch that names it.
    let names = distinct(
        accepted
            .iter()
            .flat_map(|(_, fresh)| fresh)
            .filter_map(|i| signature_of(&i.event)),
    );
    let mut existing = registered_signatures(conn, &names)?;
    if existing.len() < names.len() {
        // Two batches naming the same new signature register it once: the second waits for
        // the first, then finds it registered.
        let unknown: Vec<&String> = names.iter().filter(|n| !existing.contains(*n)).collect();
        lock_signature_names(conn, &unknown)?;
        existing = registered_signatures(conn, &names)?;
    }
    let registrations: Vec<Vec<(String, Vec<NewEvent>)>> = accepted
        .iter()
        .map(|(_, fresh)| {
            distinct(fresh.iter().filter_map(|i| signature_of(&i.event)))
                .into_iter()
                .filter(|name| existing.insert(name.clone()))
                .map(|name| {
                    let e = SignatureEvent::SignatureRegisteredRestricted { name: name.clone() }
                        .encode();
                    (name, vec![e])
                })
                .collect()
        })
        .collect();

    // 5. One stream per session, appended after its current version: its row in `streams`
    //    (one probe of one table; the log's stream index is one per partition). A stream
    //    several batches of the group append to takes their events in their order.
    let session_ids = distinct(
        accepted
            .iter()
            .flat_map(|(_, fresh)| fresh)
            .map(|i| i.event.session_id()),
    );
    let mut versions: HashMap<String, i64> = prepared(
        "SELECT s.id AS stream_id,
                (SELECT v.version FROM streams v
                 WHERE v.stream_type = $1 AND v.stream_id = s.id) AS version
         FROM unnest($2::text[]) AS s(id)",
    )
    .bind::<diesel::sql_types::Text, _>(SESSION_STREAM)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(&session_ids)
    .load::<StreamVersion>(conn)?
    .into_iter()
    .filter_map(|v| Some((v.stream_id, v.version?)))
    .collect();
    let streams: Vec<_> = accepted
        .iter()
        .map(|(_, fresh)| by_session(fresh.iter().map(|i| &i.event)))
        .collect();
    let mut appends: Vec<(StreamAppend, &Metadata)> = Vec::new();
    for (((batch, _), (order, per_stream)), registered) in
        accepted.iter().zip(&streams).zip(&registrations)
    {
        for (name, events) in registered {
            appends.push((
                StreamAppend {
                    stream_type: "signature",
                    stream_id: name,
                    expected_version: 0,
                    events,
                },
                &batch.metadata,
            ));
        }
        for sid in order {
            let version = versions.entry(sid.clone()).or_insert(0);
            appends.push((
                StreamAppend {
                    stream_type: SESSION_STREAM,
                    stream_id: sid,
                    expected_version: *version,
                    events: &per_stream[sid],
                },
                &batch.metadata,
            ));
            *version += per_stream[sid].len() as i64;
        }
    }
    // In one order for every transaction, the signatures first: two discovering the same new
    // session wait for each other's row in the stream's unique index instead of deadlocking.
    // (The sort is stable: a stream's appends stay in the order of their batches.)
    appends.sort_by(|(a, _), (b, _)| {
        (a.stream_type != "signature", a.stream_id)
            .cmp(&(b.stream_type != "signature", b.stream_id))
    });
    store
        .append_batches_in(conn, &appends)
        .map_err(|e| GroupError::Failed(append_error(e)))?;
    Ok(answers)
}

/// What a failed append means for the batch: a collision with a concurrent batch is retried;
/// a database error stays one (so that a lost connection answers 503, not 500).
fn append_error(e: CommandError<std::convert::Infallible>) -> IngestError {
    use crate::es::projection::ProjectionError;
    match e {
        CommandError::Conflict { .. } => IngestError::Busy,
        CommandError::Database(e)
        | CommandError::Projection(ProjectionFailed {
            source: ProjectionError::Database(e),
            ..
        }) if is_collision(&e) => IngestError::Busy,
        CommandError::Database(e)
        | CommandError::Projection(ProjectionFailed {
            source: ProjectionError::Database(e),
            ..
        }) => IngestError::Database(e),
        other => IngestError::Database(diesel::result::Error::QueryBuilderError(
            other.to_string().into(),
        )),
    }
}

/// Which of the pairs (file, integration, signature) the batch scores or rescores were scored
/// before, probed by the whole key of `threat_hits`.
///
/// With the reports delayed (`threat_hits` a catch-up subscriber), `threat_hits` holds the pairs
/// of the events up to its checkpoint only; the rest are in the log after it. Both are read in
/// one statement, so from one snapshot: the subscriber moves its checkpoint and writes the hits
/// in one transaction, so a snapshot sees a pair in exactly one of the two. (The log is read by
/// the batch's session streams, which its locks keep still.) Without a checkpoint yet (the
/// subscriber's first start is rebuilding), the whole of those streams is read. Each stream is
/// read by its own range of the stream index (`LATERAL ... OFFSET 0`): without statistics on
/// `events` the planner otherwise scanned every `FileScored` event for `stream_id = ANY(...)`, 50
/// ms a batch at 100,000 events and growing.
fn scored_pairs(
    conn: &mut PgConnection,
    store: &EventStore,
    fresh: &[&Item],
    session_ids: &[String],
) -> QueryResult<HashSet<(String, String, String)>> {
    use diesel::sql_types::{Array, Text};
    let hits = super::projections::HitsProjection;
    let mut triples: Vec<(&str, &str, &str)> =
        fresh.iter().filter_map(|i| i.event.hit_key()).collect();
    if triples.is_empty() {
        return Ok(HashSet::new());
    }
    if !store.projections().is_catch_up(hits.name()) {
        return Ok(super::projections::current_scores(conn, triples)?
            .into_keys()
            .collect());
    }
    triples.sort_unstable();
    triples.dedup();
    let (mut file, mut integration, mut signature) = (Vec::new(), Vec::new(), Vec::new());
    for (f, i, s) in triples {
        file.push(f);
        integration.push(i);
        signature.push(s);
    }
    Ok(prepared(
        "SELECT h.file_id, h.integration, h.signature
         FROM unnest($1::text[], $2::text[], $3::text[]) AS u(file_id, integration, signature)
         JOIN threat_hits h
           ON h.file_id = u.file_id AND h.integration = u.integration AND h.signature = u.signature
         UNION
         SELECT e.payload->>'file_id', e.payload->>'integration', e.payload->>'signature'
         FROM (SELECT coalesce(max(last_transaction_id), 0) AS t, coalesce(max(last_position), 0) AS p
               FROM subscriber_checkpoints WHERE name = $6) AS c
         CROSS JOIN unnest($5::text[]) AS s(id)
         CROSS JOIN LATERAL (SELECT event_type, payload, transaction_id, position FROM events e
                             WHERE e.stream_type = $4 AND e.stream_id = s.id OFFSET 0) AS e
         WHERE e.event_type = 'FileScored' AND (e.transaction_id, e.position) > (c.t, c.p)",
    )
    .bind::<Array<Text>, _>(&file)
    .bind::<Array<Text>, _>(&integration)
    .bind::<Array<Text>, _>(&signature)
    .bind::<Text, _>(SESSION_STREAM)
    .bind::<Array<Text>, _>(session_ids)
    .bind::<Text, _>(hits.name())
    .load::<Pair>(conn)?
    .into_iter()
    .map(|p| (p.file_id, p.integration, p.signature))
    .collect())
}

#[derive(diesel::QueryableByName)]
struct Pair {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    integration: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    signature: String,
}

/// The batch's sessions that exist, each locked until the batch commits, in sorted order.
///
/// A batch appends the next versions of its sessions' streams and changes their files' hits,
/// so two batches touching a session must not run at once: the second would collide on the
/// stream's next version (a retry of the whole batch) and, taking the sessions in different
/// orders, the two would deadlock. Locked in one order by every batch, they queue instead: the
/// second goes on when the first commits and reads, from then on, what it wrote (versions,
/// files, scored pairs). Row locks, not advisory locks: a batch may touch 5,000 sessions, and
/// advisory locks take room in the server's shared lock table (64 per connection by default),
/// where a row lock is marked on the row itself.
fn lock_sessions(conn: &mut PgConnection, sorted_ids: &[String]) -> QueryResult<HashSet<String>> {
    Ok(threat_sessions::table
        .filter(threat_sessions::session_id.eq_any(sorted_ids))
        .order(threat_sessions::session_id)
        .select(threat_sessions::session_id)
        .for_no_key_update()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

fn registered_signatures(
    conn: &mut PgConnection,
    names: &[String],
) -> QueryResult<HashSet<String>> {
    Ok(threat_signatures::table
        .filter(threat_signatures::name.eq_any(names))
        .select(threat_signatures::name)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// The first key of the advisory locks on signature names being registered (the second is
/// `hashtext(name)`; `es::subscriber` uses 4242, `es::shadow` 4243).
const SIGNATURE_NAME_LOCK: i32 = 4_244;

/// Transaction-scoped advisory locks on signature names about to be registered, taken in the
/// order of their keys (two names may share a key), so that batches queue rather than deadlock.
fn lock_signature_names(conn: &mut PgConnection, names: &[&String]) -> QueryResult<()> {
    prepared(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(n) AS k FROM unnest($2::text[]) AS n ORDER BY 1 OFFSET 0) AS keys",
    )
    .bind::<diesel::sql_types::Integer, _>(SIGNATURE_NAME_LOCK)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(names)
    .execute(conn)?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct StreamVersion {
    #[diesel(sql_type = diesel::sql_types::Text)]
    stream_id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Int8>)]
    version: Option<i64>,
}

#[derive(diesel::QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
}

/// Sensor events grouped into their sessions' streams: the sessions in order of first appearance,
/// and each one's events encoded, in order.
pub fn by_session<'a>(
    events: impl IntoIterator<Item = &'a SensorEvent>,
) -> (Vec<String>, HashMap<String, Vec<NewEvent>>) {
    let mut order: Vec<String> = Vec::new();
    let mut per_stream: HashMap<String, Vec<NewEvent>> = HashMap::new();
    for event in events {
        let sid = event.session_id().to_owned();
        per_stream
            .entry(sid.clone())
            .or_insert_with(|| {
                order.push(sid);
                Vec::new()
            })
            .push(event.encode());
    }
    (order, per_stream)
}

/// Metadata of a sensor's batch.
pub fn sensor_metadata(sensor_id: Uuid, request_id: Option<String>) -> Metadata {
    let meta = Metadata::new(Actor::Sensor(sensor_id));
    match request_id {
        Some(r) => meta.with_request_id(r),
        None => meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: usize, event: SensorEvent) -> Item {
        Item {
            index,
            id: Uuid::new_v4(),
            event,
        }
    }

    fn session(id: &str) -> SensorEvent {
        SensorEvent::SessionDiscovered {
            session_id: id.into(),
            start_time: chrono::Utc::now(),
            protocol: "tcp".into(),
            source_ip: "10.0.0.1".into(),
            destination_ip: "10.0.0.2".into(),
            source_port: 1,
            destination_port: 2,
        }
    }

    fn file(id: &str, s: &str) -> SensorEvent {
        SensorEvent::FileDiscovered {
            file_id: id.into(),
            session_id: s.into(),
            md5: "0".repeat(32),
            filename: "a.exe".into(),
            file_type: "pe".into(),
            size_bytes: 1,
        }
    }

    fn scored(f: &str, s: &str) -> SensorEvent {
        SensorEvent::FileScored {
            file_id: f.into(),
            session_id: s.into(),
            integration: "av".into(),
            score: 10,
            signature: "sig".into(),
            engine_version: None,
        }
    }

    fn rescored(f: &str, s: &str) -> SensorEvent {
        SensorEvent::FileRescored {
            file_id: f.into(),
            session_id: s.into(),
            integration: "av".into(),
            new_score: 20,
            signature: "sig".into(),
        }
    }

    #[test]
    fn earlier_events_of_a_batch_count() {
        let items = vec![
            item(0, session("s1")),
            item(1, file("f1", "s1")),
            item(2, scored("f1", "s1")),
            item(3, rescored("f1", "s1")),
        ];
        assert!(validate(&mut Known::default(), &items).is_ok());
    }

    #[test]
    fn every_broken_reference_is_reported_with_its_index() {
        let items = vec![
            item(0, file("f1", "nope")),
            item(1, session("s1")),
            item(2, rescored("f2", "s1")),
            item(3, file("f2", "s1")),
            item(4, rescored("f2", "s1")),
            item(5, scored("f2", "s2")),
        ];
        let errors = validate(&mut Known::default(), &items).unwrap_err();
        let indexes: Vec<usize> = errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![0, 2, 4, 5]);
        assert!(errors[0].message.contains("unknown session"));
        assert!(errors[2].message.contains("rescoring an unscored pair"));
        assert!(errors[3].message.contains("belongs to session s1"));
    }

    #[test]
    fn a_start_time_postgresql_cannot_store_is_an_item_error() {
        let body = serde_json::json!({"events": [
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "s", "start_time": "-5000-01-01T00:00:00Z", "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}},
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "t", "start_time": "9999-12-31T23:59:59Z", "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}},
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "u", "start_time": "0000-06-01T00:00:00Z", "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}},
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "v", "start_time": "2026-01-01T00:00:00.123456789Z", "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}},
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "w", "start_time": "2016-12-31T23:59:60.5Z", "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}},
        ]});
        let (items, errors) = parse_body(body.to_string().as_bytes()).unwrap();
        assert_eq!(items.len(), 3, "years 0001 to 9999 are storable");
        let errors: Vec<usize> = errors
            .iter()
            .filter(|e| e.message.contains("year from 0001 to 9999"))
            .map(|e| e.index)
            .collect();
        assert_eq!(errors, vec![0, 2]);
        let times: Vec<String> = items
            .iter()
            .map(|i| match &i.event {
                SensorEvent::SessionDiscovered { start_time, .. } => start_time.to_rfc3339(),
                other => panic!("{other:?}"),
            })
            .collect();
        // Kept to the microsecond, and a leap second as the next second's start, as stored.
        assert_eq!(
            times,
            [
                "9999-12-31T23:59:59+00:00",
                "2026-01-01T00:00:00.123456+00:00",
                "2017-01-01T00:00:00.500+00:00"
            ]
        );
    }

    #[test]
    fn only_keys_concurrent_batches_share_count_as_collisions() {
        let unique = crate::db::tests::violation;
        assert!(is_collision(&unique(Some("streams_pkey"))));
        assert!(is_collision(&unique(Some("threat_files_pkey"))));
        assert!(is_collision(&unique(Some("threat_views_pkey"))));
        assert!(!is_collision(&unique(Some("threat_score_changes_pkey"))));
        assert!(!is_collision(&unique(None)));
        assert!(is_collision(&crate::db::tests::error(
            diesel::result::DatabaseErrorKind::SerializationFailure,
            "could not serialize access due to concurrent update",
        )));
    }

    #[test]
    fn a_lost_connection_at_the_append_stays_a_database_error() {
        let gone = || {
            crate::db::tests::error(
                diesel::result::DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            )
        };
        for e in [
            CommandError::Database(gone()),
            CommandError::Projection(ProjectionFailed {
                name: "threat_hits",
                source: crate::es::projection::ProjectionError::Database(gone()),
            }),
        ] {
            match append_error(e) {
                IngestError::Database(e) => assert!(crate::db::is_unavailable(&e), "{e:?}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            append_error(CommandError::Database(crate::db::tests::violation(Some(
                "streams_pkey"
            )))),
            IngestError::Busy
        ));
    }

    #[test]
    fn the_documented_text_pattern_is_what_text_accepts_for_every_character() {
        let pattern = regex::Regex::new(TEXT_PATTERN).unwrap();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            for value in [format!("a{c}b"), format!("a{c}"), format!("{c}a")] {
                assert_eq!(
                    pattern.is_match(&value),
                    text("f", &value, 10).is_ok(),
                    "{value:?}"
                );
            }
        }
    }

    #[test]
    fn bodies_are_parsed_strictly() {
        assert!(parse_body(b"{").is_err());
        assert!(parse_body(b"[]").is_err());
        let body = serde_json::json!({"events": [
            {"id": "x", "type": "SessionScored", "data": {}},
            {"id": Uuid::new_v4(), "type": "Nope", "data": {}},
            {"id": Uuid::new_v4(), "type": "SessionScored", "data": {"session_id": "s", "threat_contributor": "t", "score": 101}},
            {"id": Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "s", "start_time": "2026-01-01T00:00:00Z", "protocol": "tcp", "source_ip": "999.1.1.1", "destination_ip": "::1", "source_port": 1, "destination_port": 2}},
        ]});
        let errors = parse_body(body.to_string().as_bytes()).unwrap().1;
        assert_eq!(errors.len(), 4);
        assert!(errors[0].message.contains("UUID"));
        assert!(errors[1].message.contains("unknown type"));
        assert!(errors[2].message.contains("out of range"));
        assert!(errors[3].message.contains("not an IP address"));
    }
}
