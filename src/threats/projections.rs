//! Read models of the threat-reports context, updated inline in the append transaction.
//! Sensor events are applied with set-based statements (`unnest` of arrays), one per table and
//! batch, so a batch of 500 events costs a handful of statements.

// Rows are upserted in a fixed (sorted) order so that concurrent batches touching the same
// aggregate rows queue for them instead of deadlocking.
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Int8, Nullable, Text, Timestamptz};

use super::buckets::{
    apply_bucket_deltas, apply_signature_hours, bucket_rows, bucket_start, key_hours_rows,
    signature_hour_rows, BucketDeltas, Grain, ReportKey, REPORT_KEYS,
};
use super::decider::RESTRICTED_GROUP;
use super::events::{ClearanceEvent, SensorAdminEvent, SensorEvent, SignatureEvent};
use crate::es::projection::{BulkReplay, ProjectionError, ReplayRange};
use crate::es::{Projection, RecordedEvent};
use crate::prepared::prepared;
use crate::schema::{sensors, threat_clearances, threat_signatures};

/// A batch statement runs for tens of milliseconds: compiling it (JIT, which the planner's
/// guess of a range's size can trigger) would cost more than it saves.
pub(super) fn no_jit(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SET LOCAL jit TO off").execute(conn)?;
    Ok(())
}

/// The slugs of the four top-threat reports; a report's index here is its number in [`Deltas`].
pub const REPORTS: [&str; 4] = ["hash", "file-type", "ip-pair", "protocol"];

/// `threat_sessions` and `threat_files`: sessions with their latest score and contributor, files.
pub struct SessionsProjection;

impl Projection for SessionsProjection {
    fn name(&self) -> &'static str {
        "threat_sessions"
    }
    fn handles(&self) -> &'static [&'static str] {
        &["SessionDiscovered", "SessionScored", "FileDiscovered"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["threat_sessions", "threat_files"]
    }
    fn inline_only(&self) -> Option<&'static str> {
        Some("the sensor API validates batches against its sessions and files")
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(conn, &[event])
    }

    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        #[derive(Default)]
        struct Sessions {
            id: Vec<String>,
            start: Vec<DateTime<Utc>>,
            protocol: Vec<String>,
            src: Vec<String>,
            dst: Vec<String>,
            sport: Vec<i32>,
            dport: Vec<i32>,
            score: Vec<Option<i32>>,
            contributor: Vec<Option<String>>,
            files: Vec<i32>,
        }
        #[derive(Default)]
        struct Files {
            id: Vec<String>,
            session: Vec<String>,
            md5: Vec<String>,
            name: Vec<String>,
            ftype: Vec<String>,
            size: Vec<i64>,
        }
        let mut s = Sessions::default();
        let mut f = Files::default();
        // A session is mostly discovered, scored and given its files in one batch: those are
        // inserted in their final state, and only sessions of earlier batches are updated.
        let mut discovered: HashMap<String, usize> = HashMap::new();
        // The last score of each earlier session in this batch wins.
        let mut scores: BTreeMap<String, (i32, String)> = BTreeMap::new();
        let mut files_of_earlier: Vec<String> = Vec::new();
        for e in events {
            match e.decode::<SensorEvent>()? {
                SensorEvent::SessionDiscovered {
                    session_id,
                    start_time,
                    protocol,
                    source_ip,
                    destination_ip,
                    source_port,
                    destination_port,
                } => {
                    discovered.insert(session_id.clone(), s.id.len());
                    s.id.push(session_id);
                    s.score.push(None);
                    s.contributor.push(None);
                    s.files.push(0);
                    s.start.push(start_time);
                    s.protocol.push(protocol);
                    s.src.push(source_ip);
                    s.dst.push(destination_ip);
                    s.sport.push(source_port.into());
                    s.dport.push(destination_port.into());
                }
                SensorEvent::SessionScored {
                    session_id,
                    threat_contributor,
                    score,
                } => match discovered.get(&session_id) {
                    Some(&i) => {
                        s.score[i] = Some(score);
                        s.contributor[i] = Some(threat_contributor);
                    }
                    None => {
                        scores.insert(session_id, (score, threat_contributor));
                    }
                },
                SensorEvent::FileDiscovered {
                    file_id,
                    session_id,
                    md5,
                    filename,
                    file_type,
                    size_bytes,
                } => {
                    match discovered.get(&session_id) {
                        Some(&i) => s.files[i] += 1,
                        None => files_of_earlier.push(session_id.clone()),
                    }
                    f.id.push(file_id);
                    f.session.push(session_id);
                    f.md5.push(md5);
                    f.name.push(filename);
                    f.ftype.push(file_type);
                    f.size.push(size_bytes);
                }
                _ => {}
            }
        }
        if !s.id.is_empty() {
            prepared(
                "INSERT INTO threat_sessions (session_id, start_time, protocol, source_ip, destination_ip, source_port,
                                              destination_port, latest_score, threat_contributor, file_count)
                 SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int4[],
                                      $7::int4[], $8::int4[], $9::text[], $10::int4[])",
            )
            .bind::<Array<Text>, _>(&s.id)
            .bind::<Array<Timestamptz>, _>(&s.start)
            .bind::<Array<Text>, _>(&s.protocol)
            .bind::<Array<Text>, _>(&s.src)
            .bind::<Array<Text>, _>(&s.dst)
            .bind::<Array<Int4>, _>(&s.sport)
            .bind::<Array<Int4>, _>(&s.dport)
            .bind::<Array<Nullable<Int4>>, _>(&s.score)
            .bind::<Array<Nullable<Text>>, _>(&s.contributor)
            .bind::<Array<Int4>, _>(&s.files)
            .execute(conn)?;
        }
        if !scores.is_empty() {
            let (ids, rest): (Vec<String>, Vec<(i32, String)>) = scores.into_iter().unzip();
            let (score, contributor): (Vec<i32>, Vec<String>) = rest.into_iter().unzip();
            prepared(
                "UPDATE threat_sessions s SET latest_score = u.score, threat_contributor = u.contributor
                 FROM unnest($1::text[], $2::int4[], $3::text[]) AS u(id, score, contributor)
                 WHERE s.session_id = u.id",
            )
            .bind::<Array<Text>, _>(&ids)
            .bind::<Array<Int4>, _>(&score)
            .bind::<Array<Text>, _>(&contributor)
            .execute(conn)?;
        }
        if !f.id.is_empty() {
            prepared(
                "INSERT INTO threat_files (file_id, session_id, md5, filename, file_type, size_bytes)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])",
            )
            .bind::<Array<Text>, _>(&f.id)
            .bind::<Array<Text>, _>(&f.session)
            .bind::<Array<Text>, _>(&f.md5)
            .bind::<Array<Text>, _>(&f.name)
            .bind::<Array<Text>, _>(&f.ftype)
            .bind::<Array<Int8>, _>(&f.size)
            .execute(conn)?;
        }
        if !files_of_earlier.is_empty() {
            prepared(
                "UPDATE threat_sessions s SET file_count = s.file_count + u.n
                 FROM (SELECT id, count(*)::int4 AS n FROM unnest($1::text[]) AS id GROUP BY id) AS u
                 WHERE s.session_id = u.id",
            )
            .bind::<Array<Text>, _>(&files_of_earlier)
            .execute(conn)?;
        }
        Ok(())
    }

    fn bulk_replay(&self) -> Option<&dyn BulkReplay> {
        Some(self)
    }
}

impl BulkReplay for SessionsProjection {
    fn defer_indexes(&self) -> bool {
        // It reads and updates its tables by primary key only.
        true
    }

    fn replays_in_database(&self) -> bool {
        true
    }

    /// One statement per batch, grouped by session: the sessions discovered in it are inserted
    /// with their last score and file count of the batch; older sessions are updated. (The
    /// planner cannot tell how many events a range holds, so the statement has no join whose
    /// plan that guess could make quadratic; the update probes `threat_sessions` by key.)
    fn replay_range(
        &self,
        conn: &mut PgConnection,
        range: &ReplayRange,
    ) -> Result<(), ProjectionError> {
        no_jit(conn)?;
        range
            .query(format!(
                "WITH e AS MATERIALIZED (
                     SELECT event_type, payload AS p, transaction_id, position FROM events
                     WHERE {events} AND event_type IN ('SessionDiscovered', 'SessionScored', 'FileDiscovered')),
                 per_session AS (
                     SELECT p->>'session_id' AS id,
                            (array_agg(p) FILTER (WHERE event_type = 'SessionDiscovered'))[1] AS discovered,
                            (array_agg(p ORDER BY transaction_id DESC, position DESC)
                                FILTER (WHERE event_type = 'SessionScored'))[1] AS scored,
                            (count(*) FILTER (WHERE event_type = 'FileDiscovered'))::int4 AS files
                     FROM e GROUP BY 1),
                 files AS (
                     INSERT INTO threat_files (file_id, session_id, md5, filename, file_type, size_bytes)
                     SELECT p->>'file_id', p->>'session_id', p->>'md5', p->>'filename', p->>'file_type',
                            (p->>'size_bytes')::int8
                     FROM e WHERE event_type = 'FileDiscovered'),
                 sessions AS (
                     INSERT INTO threat_sessions (session_id, start_time, protocol, source_ip, destination_ip,
                                                  source_port, destination_port, latest_score, threat_contributor, file_count)
                     SELECT id, (discovered->>'start_time')::timestamptz, discovered->>'protocol',
                            discovered->>'source_ip', discovered->>'destination_ip', (discovered->>'source_port')::int4,
                            (discovered->>'destination_port')::int4, (scored->>'score')::int4,
                            scored->>'threat_contributor', files
                     FROM per_session WHERE discovered IS NOT NULL)
                 UPDATE threat_sessions t SET
                     latest_score = CASE WHEN u.scored IS NULL THEN t.latest_score ELSE (u.scored->>'score')::int4 END,
                     threat_contributor = CASE WHEN u.scored IS NULL THEN t.threat_contributor
                                               ELSE u.scored->>'threat_contributor' END,
                     file_count = t.file_count + u.files
                 FROM per_session u
                 WHERE t.session_id = u.id AND u.discovered IS NULL",
                events = ReplayRange::EVENTS
            ))
            .execute(conn)?;
        Ok(())
    }
}

#[derive(QueryableByName)]
struct FileKeys {
    #[diesel(sql_type = Text)]
    file_id: String,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Text)]
    md5: String,
    #[diesel(sql_type = Text)]
    filename: String,
    #[diesel(sql_type = Text)]
    file_type: String,
    #[diesel(sql_type = Text)]
    protocol: String,
    #[diesel(sql_type = Text)]
    source_ip: String,
    #[diesel(sql_type = Text)]
    destination_ip: String,
    #[diesel(sql_type = Timestamptz)]
    start_time: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct CurrentScore {
    #[diesel(sql_type = Text)]
    file_id: String,
    #[diesel(sql_type = Text)]
    integration: String,
    #[diesel(sql_type = Text)]
    signature: String,
    #[diesel(sql_type = Int4)]
    score: i32,
}

/// The current score of the given hits that exist, probed by the whole primary key of
/// `threat_hits` (one index probe each). `file_id = ANY(...)` alone, a key prefix, was planned as a
/// scan of the whole table when statistics were stale: a per-batch cost that grew with the table.
pub fn current_scores<'a>(
    conn: &mut PgConnection,
    hits: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
) -> QueryResult<HashMap<(String, String, String), i32>> {
    let mut triples: Vec<(&str, &str, &str)> = hits.into_iter().collect();
    triples.sort_unstable();
    triples.dedup();
    if triples.is_empty() {
        return Ok(HashMap::new());
    }
    let (mut file, mut integration, mut signature) = (Vec::new(), Vec::new(), Vec::new());
    for (f, i, s) in triples {
        file.push(f);
        integration.push(i);
        signature.push(s);
    }
    Ok(prepared(
        "SELECT h.file_id, h.integration, h.signature, h.score
         FROM unnest($1::text[], $2::text[], $3::text[]) AS u(file_id, integration, signature)
         JOIN threat_hits h
           ON h.file_id = u.file_id AND h.integration = u.integration AND h.signature = u.signature",
    )
    .bind::<Array<Text>, _>(&file)
    .bind::<Array<Text>, _>(&integration)
    .bind::<Array<Text>, _>(&signature)
    .load::<CurrentScore>(conn)?
    .into_iter()
    .map(|c| ((c.file_id, c.integration, c.signature), c.score))
    .collect())
}

/// The key of a hit in each report (the ip-pair key is "source destination").
pub fn report_keys(k: &FileKeysView) -> [String; 4] {
    [
        k.md5.to_owned(),
        k.file_type.to_owned(),
        format!("{} {}", k.source_ip, k.destination_ip),
        k.protocol.to_owned(),
    ]
}

pub struct FileKeysView<'a> {
    pub md5: &'a str,
    pub file_type: &'a str,
    pub source_ip: &'a str,
    pub destination_ip: &'a str,
    pub protocol: &'a str,
}

#[derive(Default)]
pub(super) struct Delta {
    pub(super) hits: i32,
    pub(super) max_score: i32,
    pub(super) last_seen: Option<DateTime<Utc>>,
    pub(super) lowered: bool,
}

impl Delta {
    /// Roll another delta into this one (a key of a coarser level).
    pub(super) fn add(&mut self, other: &Delta) {
        self.hits += other.hits;
        self.max_score = self.max_score.max(other.max_score);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.lowered |= other.lowered;
    }
}

/// Events per batch when the reports are delayed (`threat_hits` a catch-up subscriber): each
/// report row a batch touches is written once however many of its events touch it, so larger
/// batches cost less per event (500,000 events through the API with the reports delayed took
/// 42.8, 35.6 and 28.1 s of PostgreSQL CPU in all with batches of 2,000, 5,000 and 20,000 on the
/// 2-core test machine; 50,000 gave 24.7 s, with two and a half times the events in memory).
const CATCH_UP_BATCH: i64 = 20_000;

/// `threat_hits` (current score per file, integration, signature), `threat_score_changes` (every
/// score a hit had) and `threat_report_rows` (the four reports, aggregated per key and signature).
pub struct HitsProjection;

impl Projection for HitsProjection {
    fn name(&self) -> &'static str {
        "threat_hits"
    }
    fn handles(&self) -> &'static [&'static str] {
        // A revision may move a signature to another group: its keys' view rows are rebuilt.
        // A clearance change may need a view for a new set of groups.
        &[
            "FileScored",
            "FileRescored",
            "SignatureRevised",
            "ClearanceGranted",
            "ClearanceRevoked",
        ]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "threat_hits",
            "threat_score_changes",
            "threat_report_rows",
            "threat_views",
            "threat_report_views",
            "threat_report_buckets",
            "threat_report_key_hours",
            "threat_report_signature_hours",
            "threat_hash_names",
            "threat_pair_signature_times",
            "threat_pair_signature_days",
        ]
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_batch(conn, &[event])
    }

    fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let revised: Vec<&str> = events
            .iter()
            .filter(|e| e.event_type == "SignatureRevised")
            .map(|e| e.stream_id.as_str())
            .collect();
        // The sets held change only with clearances; the first batch creates the admins' view.
        let clearances = events
            .iter()
            .any(|e| e.event_type == "ClearanceGranted" || e.event_type == "ClearanceRevoked");
        // Whether the admins' view exists is checked before the lock, so that the first batches
        // of a store take it exclusive at once (upgrading a shared hold, two would deadlock).
        // A signature move rewrites its keys' view rows in no particular order: it runs alone.
        let exclusive = clearances || !revised.is_empty() || !admin_view_exists(conn)?;
        lock_views(conn, exclusive)?;
        let mut views = current_views(conn)?;
        if exclusive || !views.iter().any(|v| v.view_id == ADMIN_VIEW) {
            if !exclusive {
                // Only if the view went between the check and the lock (a rebuild's swap).
                lock_views(conn, true)?;
            }
            ensure_views(conn)?;
            views = current_views(conn)?;
        }
        self.apply_hits(conn, events, Some(&views))?;
        for name in revised {
            regroup_signature(conn, name)?;
        }
        Ok(())
    }

    fn bulk_replay(&self) -> Option<&dyn BulkReplay> {
        Some(self)
    }
}

impl BulkReplay for HitsProjection {
    /// Its statements read the fields `FileScored` versions 1 and 2 share (version 2 only
    /// added `engine_version`, which no report shows), so both replay in the database.
    fn can_replay_in_database(
        &self,
        conn: &mut PgConnection,
        range: &ReplayRange,
    ) -> Result<bool, ProjectionError> {
        Ok(range.only_schemas(conn, self.handles(), &[("FileScored", 2)])?)
    }

    /// A replay keeps hits and score history only; the reports are aggregated once at the end
    /// (signature moves need nothing then: the end state groups by the signatures' current
    /// groups; the views of the clearance sets held are kept per batch, as live).
    fn replay_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ProjectionError> {
        // The views exist once any event of this projection was applied, as when applied live.
        ensure_views(conn)?;
        self.apply_hits(conn, events, None)
    }

    /// The reports from the hits, by the definitions (DESIGN section 4): per key and signature,
    /// then per view. Equal to what the incremental path keeps (`verify` checks).
    fn finish_replay(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        // Aggregate in memory rather than in batches spilled to temporary files, and by hashing:
        // with no statistics on the freshly filled tables the planner sorted the rows rolled up
        // for the views, twice as slow (130 ms against 65 ms at 100,000 events).
        diesel::sql_query("SET LOCAL work_mem TO '64MB'").execute(conn)?;
        diesel::sql_query("SET LOCAL enable_sort TO off").execute(conn)?;
        no_jit(conn)?;
        prepared(
            "INSERT INTO threat_report_rows (report, key, signature, hits, max_score, last_seen)
             SELECT 'file-type', file_type, signature, count(*)::int4, max(score), max(start_time)
               FROM threat_hits GROUP BY file_type, signature
             UNION ALL
             SELECT 'protocol', protocol, signature, count(*)::int4, max(score), max(start_time)
               FROM threat_hits GROUP BY protocol, signature",
        )
        .execute(conn)?;
        prepared(format!(
            "INSERT INTO threat_report_views (report, view_id, key, hits, max_score, last_seen) {}",
            view_rows("true", |_| "true".into())
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .execute(conn)?;
        // In key order: a range reads one (report, view, grain) run of buckets, which then lies
        // on a few pages instead of one page per row (8,621 hour rows of the heavy-keyed bench's
        // hash `24h`: 247 buffers against 8,772).
        prepared(format!(
            "INSERT INTO threat_report_buckets (report, view_id, grain, bucket, key, hits, max_score, last_seen) {} ORDER BY 1, 2, 3, 4, 5",
            bucket_rows("true", |_| "true".into())
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .execute(conn)?;
        prepared(format!(
            "INSERT INTO threat_report_key_hours (report, view_id, key, first_hour, hours) {} ORDER BY 1, 2, 3",
            key_hours_rows("true")
        ))
        .execute(conn)?;
        prepared(format!(
            "INSERT INTO threat_report_signature_hours (report, key, signature, bucket) {}",
            signature_hour_rows("true")
        ))
        .execute(conn)?;
        prepared(
            "INSERT INTO threat_hash_names (md5, signature, filename, file_type, first_seen, last_seen)
             SELECT DISTINCT ON (md5, signature) md5, signature, filename, file_type,
                    min(start_time) OVER w, max(start_time) OVER w
               FROM threat_hits WINDOW w AS (PARTITION BY md5, signature)
              ORDER BY md5, signature, filename, file_type",
        )
        .execute(conn)?;
        prepared(
            "INSERT INTO threat_pair_signature_times (source_ip, destination_ip, signature, first_seen, last_seen)
             SELECT source_ip, destination_ip, signature, min(start_time), max(start_time)
               FROM threat_hits GROUP BY source_ip, destination_ip, signature",
        )
        .execute(conn)?;
        prepared(
            "INSERT INTO threat_pair_signature_days (source_ip, destination_ip, day, signature)
             SELECT DISTINCT source_ip, destination_ip,
                    date_trunc('day', start_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', signature
               FROM threat_hits",
        )
        .execute(conn)?;
        Ok(())
    }

    fn defer_indexes(&self) -> bool {
        // Its apply code reads its own tables by primary key only, except the maxima that a
        // lowering rescore corrects, which a replay leaves to `finish_replay`.
        true
    }

    fn filled_at_finish(&self) -> &'static [&'static str] {
        &[
            "threat_report_rows",
            "threat_report_views",
            "threat_report_buckets",
            "threat_report_key_hours",
            "threat_report_signature_hours",
            "threat_hash_names",
            "threat_pair_signature_times",
            "threat_pair_signature_days",
        ]
    }

    fn catch_up_batch_size(&self) -> Option<i64> {
        Some(CATCH_UP_BATCH)
    }

    fn replays_in_database(&self) -> bool {
        true
    }

    /// [`HitsProjection::replay_batch`] as one statement: the batch's scores with their file's
    /// report keys and the stored score of their hit, then the score history (the old score is
    /// the one before in the batch, else the stored one) and each hit's last score.
    ///
    /// The file, session and stored hit are looked up by key, one probe per event (`LATERAL
    /// ... LIMIT 1` keeps the planner from joining whole tables instead). The planner cannot tell
    /// how many events a `(transaction_id, position)` range holds: it guessed ten times too many,
    /// and hashed all of `threat_files`, `threat_sessions` and the growing shadow of
    /// `threat_hits` for every batch, a cost that grew with the log.
    fn replay_range(
        &self,
        conn: &mut PgConnection,
        range: &ReplayRange,
    ) -> Result<(), ProjectionError> {
        no_jit(conn)?;
        ensure_views(conn)?;
        range
            .query(format!(
                "WITH k AS MATERIALIZED (
                     SELECT e.transaction_id, e.position, e.recorded_at, e.file_id, e.integration, e.signature,
                            e.score, f.session_id, f.md5, f.filename, f.file_type, s.protocol, s.source_ip,
                            s.destination_ip, s.start_time, h.score AS stored_score
                     FROM (SELECT transaction_id, position, recorded_at, payload->>'file_id' AS file_id,
                                  payload->>'integration' AS integration, payload->>'signature' AS signature,
                                  (CASE event_type WHEN 'FileScored' THEN payload->>'score'
                                                   ELSE payload->>'new_score' END)::int4 AS score
                           FROM events
                           WHERE {events} AND event_type IN ('FileScored', 'FileRescored')) e
                     CROSS JOIN LATERAL (SELECT * FROM threat_files f WHERE f.file_id = e.file_id LIMIT 1) f
                     CROSS JOIN LATERAL (SELECT * FROM threat_sessions s WHERE s.session_id = f.session_id LIMIT 1) s
                     LEFT JOIN LATERAL (
                         SELECT h.score FROM threat_hits h
                         WHERE h.file_id = e.file_id AND h.integration = e.integration AND h.signature = e.signature
                         LIMIT 1) h ON true),
                 changes AS (
                     INSERT INTO threat_score_changes (position, file_id, integration, signature, old_score, new_score, recorded_at)
                     SELECT position, file_id, integration, signature,
                            coalesce(lag(score) OVER (PARTITION BY file_id, integration, signature
                                                      ORDER BY transaction_id, position), stored_score),
                            score, recorded_at
                     FROM k)
                 INSERT INTO threat_hits (file_id, integration, signature, score, session_id, md5, filename,
                                          file_type, protocol, source_ip, destination_ip, start_time, scored_at)
                 SELECT DISTINCT ON (file_id, integration, signature) file_id, integration, signature, score,
                        session_id, md5, filename, file_type, protocol, source_ip, destination_ip, start_time, recorded_at
                 FROM k ORDER BY file_id, integration, signature, transaction_id DESC, position DESC
                 ON CONFLICT (file_id, integration, signature)
                 DO UPDATE SET score = excluded.score, scored_at = excluded.scored_at",
                events = ReplayRange::EVENTS
            ))
            .execute(conn)?;
        Ok(())
    }
}

/// Rebuild the view rows of every key a signature has hits under, from the per-signature rows
/// or hits and the signatures' current groups (after an admin moved the signature). The cold
/// reports' keys come from a read of the signature's hits (no index leads with the signature:
/// a rare admin action).
fn regroup_signature(conn: &mut PgConnection, name: &str) -> Result<(), ProjectionError> {
    let mut keys =
        vec!["SELECT report, key FROM threat_report_rows WHERE signature = $1".to_owned()];
    for c in &COLD_REPORTS {
        keys.push(format!(
            "SELECT '{}', {} FROM threat_hits h WHERE h.signature = $1",
            c.name, c.key
        ));
    }
    prepared(format!(
        "DELETE FROM threat_report_views v WHERE (v.report, v.key) IN ({})",
        keys.join(" UNION ")
    ))
    .bind::<Text, _>(name)
    .execute(conn)?;
    // The time buckets of every key the signature has hits under, from those keys' hits.
    let of_signature = |r: &ReportKey| {
        format!(
            "({cols}) IN (SELECT {cols} FROM threat_hits WHERE signature = $2)",
            cols = r.columns
        )
    };
    let keys_of_signature = REPORT_KEYS
        .iter()
        .map(|r| {
            format!(
                "SELECT '{}', {} FROM threat_hits h WHERE h.signature = $1",
                r.name, r.key
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ");
    for table in ["threat_report_buckets", "threat_report_key_hours"] {
        prepared(format!(
            "DELETE FROM {table} b WHERE (b.report, b.key) IN ({keys_of_signature})"
        ))
        .bind::<Text, _>(name)
        .execute(conn)?;
    }
    prepared(format!(
        "INSERT INTO threat_report_buckets (report, view_id, grain, bucket, key, hits, max_score, last_seen) {}",
        bucket_rows("true", of_signature)
    ))
    .bind::<Text, _>(RESTRICTED_GROUP)
    .bind::<Text, _>(name)
    .execute(conn)?;
    // Their hour strings from the buckets just written.
    prepared(format!(
        "INSERT INTO threat_report_key_hours (report, view_id, key, first_hour, hours) {}",
        key_hours_rows(&format!("(b.report, b.key) IN ({keys_of_signature})"))
    ))
    .bind::<Text, _>(name)
    .execute(conn)?;
    prepared(format!(
        "INSERT INTO threat_report_views (report, view_id, key, hits, max_score, last_seen) {}",
        view_rows(
            "(r.report, r.key) IN (SELECT report, key FROM threat_report_rows WHERE signature = $2)",
            // By the key's own columns, so that the report's hits index serves the match.
            |c| {
                format!(
                    "({cols}) IN (SELECT {cols} FROM threat_hits WHERE signature = $2)",
                    cols = c.columns
                )
            },
        )
    ))
    .bind::<Text, _>(RESTRICTED_GROUP)
    .bind::<Text, _>(name)
    .execute(conn)?;
    Ok(())
}

/// The view of admins (every group).
pub const ADMIN_VIEW: &str = "*";

/// The id of the view of a set of groups.
pub fn view_id(groups: &[String]) -> String {
    let mut g = groups.to_vec();
    g.sort();
    g.dedup();
    g.join(",")
}

#[derive(QueryableByName)]
pub(super) struct ViewDef {
    #[diesel(sql_type = Text)]
    pub(super) view_id: String,
    #[diesel(sql_type = Array<Text>)]
    pub(super) groups: Vec<String>,
}

/// The set of views must not change between a batch's read of it and the batch's commit: a view
/// created meanwhile is summed from a snapshot without the batch's hits, and the batch would not
/// add them to it. Batches hold this lock shared, so they do not wait for each other; a change to
/// the views holds it exclusive, so it waits for the batches in flight to commit (its sums then
/// read their hits) and the next batches wait for its commit (they then see its views). A
/// signature move holds it exclusive too: it rewrites its keys' view rows in no fixed order.
fn lock_views(conn: &mut PgConnection, exclusive: bool) -> QueryResult<()> {
    prepared(if exclusive {
        "SELECT pg_advisory_xact_lock(hashtext('threat-views'))"
    } else {
        "SELECT pg_advisory_xact_lock_shared(hashtext('threat-views'))"
    })
    .execute(conn)?;
    Ok(())
}

fn admin_view_exists(conn: &mut PgConnection) -> QueryResult<bool> {
    use crate::schema::threat_views::dsl::{threat_views, view_id};
    diesel::select(diesel::dsl::exists(
        threat_views.filter(view_id.eq(ADMIN_VIEW)),
    ))
    .get_result(conn)
}

fn current_views(conn: &mut PgConnection) -> QueryResult<Vec<ViewDef>> {
    prepared("SELECT view_id, groups FROM threat_views").load(conn)
}

/// Keep one view per clearance set held now (and the admins' `*`): build new ones from the
/// per-signature rows, drop those nobody holds any more. Two small reads when nothing changed.
/// The sets are folded from the clearance streams, not read from `threat_clearances`: that
/// table belongs to another projection, which may run as a catch-up subscriber and lag behind
/// the clearance event this projection is applying (its view would then never be built).
fn ensure_views(conn: &mut PgConnection) -> Result<(), ProjectionError> {
    let held: Vec<ViewDef> = prepared(
        "SELECT DISTINCT array_to_string(groups, ',') AS view_id, groups FROM (
             SELECT array_agg(group_name ORDER BY group_name COLLATE \"C\") AS groups
             FROM (SELECT DISTINCT ON (stream_id, payload->>'group')
                          stream_id, payload->>'group' AS group_name, event_type
                   FROM events WHERE stream_type = 'clearance'
                   ORDER BY stream_id, payload->>'group', stream_version DESC) AS latest
             WHERE event_type = 'ClearanceGranted' GROUP BY stream_id) AS sets
         UNION SELECT '*', '{}'::text[]",
    )
    .load(conn)?;
    let existing = current_views(conn)?;
    for v in &held {
        if existing.iter().any(|e| e.view_id == v.view_id) {
            continue;
        }
        prepared("INSERT INTO threat_views (view_id, groups) VALUES ($1, $2)")
            .bind::<Text, _>(&v.view_id)
            .bind::<Array<Text>, _>(&v.groups)
            .execute(conn)?;
        // The cold reports are summed from the hits in the set's groups, once, when the first
        // analyst holds the set.
        no_jit(conn)?;
        prepared(format!(
            "INSERT INTO threat_report_views (report, view_id, key, hits, max_score, last_seen) {}",
            view_rows("w.view_id = $2", |_| "w.view_id = $2".into())
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .bind::<Text, _>(&v.view_id)
        .execute(conn)?;
        // In key order, as `finish_replay` writes them.
        prepared(format!(
            "INSERT INTO threat_report_buckets (report, view_id, grain, bucket, key, hits, max_score, last_seen) {} ORDER BY 1, 2, 3, 4, 5",
            bucket_rows("w.view_id = $2", |_| "true".into())
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .bind::<Text, _>(&v.view_id)
        .execute(conn)?;
        prepared(format!(
            "INSERT INTO threat_report_key_hours (report, view_id, key, first_hour, hours) {} ORDER BY 1, 2, 3",
            key_hours_rows("b.view_id = $1")
        ))
        .bind::<Text, _>(&v.view_id)
        .execute(conn)?;
    }
    for e in &existing {
        if held.iter().any(|v| v.view_id == e.view_id) {
            continue;
        }
        prepared("DELETE FROM threat_report_views WHERE view_id = $1")
            .bind::<Text, _>(&e.view_id)
            .execute(conn)?;
        for table in ["threat_report_buckets", "threat_report_key_hours"] {
            prepared(format!(
                "DELETE FROM {table} WHERE report = ANY($2) AND view_id = $1"
            ))
            .bind::<Text, _>(&e.view_id)
            .bind::<Array<Text>, _>(REPORTS.to_vec())
            .execute(conn)?;
        }
        prepared("DELETE FROM threat_views WHERE view_id = $1")
            .bind::<Text, _>(&e.view_id)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct SignatureGroup {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    group_name: String,
}

impl HitsProjection {
    fn apply_hits(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
        // The views to roll the reports up into; none in a replay (see `finish_replay`).
        reports: Option<&[ViewDef]>,
    ) -> Result<(), ProjectionError> {
        let decoded: Vec<(&RecordedEvent, SensorEvent)> = events
            .iter()
            .filter(|e| e.event_type == "FileScored" || e.event_type == "FileRescored")
            .map(|e| Ok((*e, e.decode::<SensorEvent>()?)))
            .collect::<Result<_, ProjectionError>>()?;
        let mut file_ids: Vec<String> = decoded
            .iter()
            .filter_map(|(_, e)| match e {
                SensorEvent::FileScored { file_id, .. }
                | SensorEvent::FileRescored { file_id, .. } => Some(file_id.clone()),
                _ => None,
            })
            .collect();
        file_ids.sort();
        file_ids.dedup();
        if file_ids.is_empty() {
            return Ok(());
        }
        // The report keys come from the file and its session; they never change.
        let keys: HashMap<String, FileKeys> = prepared(
            "SELECT f.file_id, f.session_id, f.md5, f.filename, f.file_type, s.protocol, s.source_ip, s.destination_ip, s.start_time
             FROM threat_files f JOIN threat_sessions s ON s.session_id = f.session_id
             WHERE f.file_id = ANY($1)",
        )
        .bind::<Array<Text>, _>(&file_ids)
        .load::<FileKeys>(conn)?
        .into_iter()
        .map(|k| (k.file_id.clone(), k))
        .collect();
        // A hit's stored score is read only when the batch first rescores it: `FileScored`
        // creates a hit (the sensor API refuses a second one of the same triple), so a hit the
        // batch first scores is not stored yet.
        let mut first_touch = std::collections::HashSet::new();
        let rescored_first = decoded.iter().filter_map(|(_, e)| {
            let key = e.hit_key()?;
            let rescore = matches!(e, SensorEvent::FileRescored { .. });
            (first_touch.insert(key) && rescore).then_some(key)
        });
        let mut current = current_scores(conn, rescored_first)?;

        // Changes in log order; the final state of each touched hit; report deltas.
        let mut ch_pos = Vec::new();
        let mut ch_file = Vec::new();
        let mut ch_integ = Vec::new();
        let mut ch_sig = Vec::new();
        let mut ch_old: Vec<Option<i32>> = Vec::new();
        let mut ch_new = Vec::new();
        let mut ch_at = Vec::new();
        // Each touched hit: when it was last scored, and whether it was stored before the batch
        // (it had a score at its first touch).
        let mut touched: BTreeMap<(String, String, String), (DateTime<Utc>, bool)> =
            BTreeMap::new();
        let mut deltas: BTreeMap<(usize, String, String), Delta> = BTreeMap::new();
        let mut buckets = BucketDeltas::new();
        for (rec, event) in &decoded {
            let (file_id, integration, signature, score, rescore) = match event {
                SensorEvent::FileScored {
                    file_id,
                    integration,
                    signature,
                    score,
                    ..
                } => (file_id, integration, signature, *score, false),
                SensorEvent::FileRescored {
                    file_id,
                    integration,
                    signature,
                    new_score,
                    ..
                } => (file_id, integration, signature, *new_score, true),
                _ => continue,
            };
            let Some(k) = keys.get(file_id) else {
                // Validation guarantees the file; a hand-edited log must not break a rebuild.
                continue;
            };
            let triple = (file_id.clone(), integration.clone(), signature.clone());
            let old = current.insert(triple.clone(), score);
            touched
                .entry(triple)
                .and_modify(|t| t.0 = rec.recorded_at)
                .or_insert((rec.recorded_at, old.is_some()));
            ch_pos.push(rec.position);
            ch_file.push(file_id.clone());
            ch_integ.push(integration.clone());
            ch_sig.push(signature.clone());
            ch_old.push(old);
            ch_new.push(score);
            ch_at.push(rec.recorded_at);
            if reports.is_none() {
                continue;
            }
            let view = FileKeysView {
                md5: &k.md5,
                file_type: &k.file_type,
                source_ip: &k.source_ip,
                destination_ip: &k.destination_ip,
                protocol: &k.protocol,
            };
            let bump = |d: &mut Delta| {
                if !rescore || old.is_none() {
                    d.hits += 1;
                }
                d.max_score = d.max_score.max(score);
                d.last_seen = d.last_seen.max(Some(k.start_time));
                if rescore && old.is_some_and(|o| score < o) {
                    d.lowered = true;
                }
            };
            let hour = bucket_start(k.start_time, Grain::Hour);
            for (r, key) in report_keys(&view).into_iter().enumerate() {
                bump(
                    buckets
                        .entry((r, key.clone(), signature.clone(), hour))
                        .or_default(),
                );
                bump(deltas.entry((r, key, signature.clone())).or_default());
            }
        }

        // 1. Hits: their final score. New hits are inserted and stored ones updated, each by
        //    the plain statement: the batch knows which is which from `current_scores`, and an
        //    upsert would first probe for a conflict, then lock the row, each logged. (A hit
        //    inserted meanwhile by a concurrent batch is a key collision: the batch is retried.)
        let (mut new, mut rescored) = (HitRows::default(), RescoredHits::default());
        for (triple, (at, stored)) in touched {
            let score = current[&triple];
            if stored {
                rescored.file.push(triple.0);
                rescored.integ.push(triple.1);
                rescored.sig.push(triple.2);
                rescored.score.push(score);
                rescored.at.push(at);
                continue;
            }
            let k = &keys[&triple.0];
            new.score.push(score);
            new.session.push(k.session_id.clone());
            new.md5.push(k.md5.clone());
            new.filename.push(k.filename.clone());
            new.file_type.push(k.file_type.clone());
            new.protocol.push(k.protocol.clone());
            new.src.push(k.source_ip.clone());
            new.dst.push(k.destination_ip.clone());
            new.start.push(k.start_time);
            new.at.push(at);
            new.file.push(triple.0);
            new.integ.push(triple.1);
            new.sig.push(triple.2);
        }
        if !new.file.is_empty() {
            prepared(
                "INSERT INTO threat_hits (file_id, integration, signature, score, session_id, md5, filename, file_type, protocol, source_ip, destination_ip, start_time, scored_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $13::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[])",
            )
            .bind::<Array<Text>, _>(&new.file)
            .bind::<Array<Text>, _>(&new.integ)
            .bind::<Array<Text>, _>(&new.sig)
            .bind::<Array<Int4>, _>(&new.score)
            .bind::<Array<Text>, _>(&new.md5)
            .bind::<Array<Text>, _>(&new.filename)
            .bind::<Array<Text>, _>(&new.file_type)
            .bind::<Array<Text>, _>(&new.protocol)
            .bind::<Array<Text>, _>(&new.src)
            .bind::<Array<Text>, _>(&new.dst)
            .bind::<Array<Timestamptz>, _>(&new.start)
            .bind::<Array<Timestamptz>, _>(&new.at)
            .bind::<Array<Text>, _>(&new.session)
            .execute(conn)?;
        }
        if !rescored.file.is_empty() {
            prepared(
                "UPDATE threat_hits h SET score = u.score, scored_at = u.at
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::timestamptz[])
                      AS u(file_id, integration, signature, score, at)
                 WHERE h.file_id = u.file_id AND h.integration = u.integration AND h.signature = u.signature",
            )
            .bind::<Array<Text>, _>(&rescored.file)
            .bind::<Array<Text>, _>(&rescored.integ)
            .bind::<Array<Text>, _>(&rescored.sig)
            .bind::<Array<Int4>, _>(&rescored.score)
            .bind::<Array<Timestamptz>, _>(&rescored.at)
            .execute(conn)?;
        }

        // 2. Score history.
        prepared(
            "INSERT INTO threat_score_changes (position, file_id, integration, signature, old_score, new_score, recorded_at)
             SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[], $7::timestamptz[])",
        )
        .bind::<Array<Int8>, _>(&ch_pos)
        .bind::<Array<Text>, _>(&ch_file)
        .bind::<Array<Text>, _>(&ch_integ)
        .bind::<Array<Text>, _>(&ch_sig)
        .bind::<Array<Nullable<Int4>>, _>(&ch_old)
        .bind::<Array<Int4>, _>(&ch_new)
        .bind::<Array<Timestamptz>, _>(&ch_at)
        .execute(conn)?;
        let Some(views) = reports else {
            return Ok(());
        };

        // 3.-6. The reports. Rows of the few keys that every batch touches (file types,
        // protocols) are written last: each stays locked until commit, and concurrent batches
        // queue for it, so the shorter it is held, the more batches go through. Within each
        // part rows are written in sorted order, so that batches queue instead of deadlocking.
        let mut names: Vec<&str> = deltas.keys().map(|(_, _, s)| s.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let group_of: HashMap<String, String> =
            prepared("SELECT name, group_name FROM threat_signatures WHERE name = ANY($1)")
                .bind::<Array<Text>, _>(&names)
                .load::<SignatureGroup>(conn)?
                .into_iter()
                .map(|g| (g.name, g.group_name))
                .collect();
        let (hot, cold): (Deltas, Deltas) = deltas
            .into_iter()
            .partition(|((r, _, _), _)| keeps_signature_rows(REPORTS[*r]));
        let (hot_buckets, cold_buckets): (BucketDeltas, BucketDeltas) = buckets
            .into_iter()
            .partition(|((r, _, _, _), _)| keeps_signature_rows(REPORTS[*r]));
        apply_hash_names(conn, &new)?;
        apply_pair_times(conn, &new)?;
        apply_pair_days(conn, &new)?;
        apply_bucket_deltas(conn, cold_buckets, &group_of, views)?;
        apply_report_deltas(conn, cold, &group_of, views, false)?;
        apply_report_deltas(conn, hot, &group_of, views, true)?;
        // Late: a signature hour this batch inserts is locked until commit, and a
        // concurrent batch with a hit in the same hour waits for it.
        apply_signature_hours(conn, &hot_buckets)?;
        apply_bucket_deltas(conn, hot_buckets, &group_of, views)?;
        Ok(())
    }
}

/// Record the least (filename, file type) and the first and last session start of each (hash,
/// signature) among a batch's new hits (`threat_hash_names`, which a hash report's names and a
/// range's signatures are read from): a row already as small and as wide is left alone without a
/// lock or a write (the common case for a name; for the times, a batch of sessions older than the
/// row's last), a new one is inserted, and otherwise the name lowered and the times widened, in
/// (hash, signature) order. The comparisons are the database's, so that the name is the one
/// `ORDER BY filename` gives.
fn apply_hash_names(conn: &mut PgConnection, new: &HitRows) -> Result<(), ProjectionError> {
    if new.md5.is_empty() {
        return Ok(());
    }
    prepared(
        "INSERT INTO threat_hash_names AS n (md5, signature, filename, file_type, first_seen, last_seen)
         SELECT b.md5, b.signature, b.filename, b.file_type, b.first_seen, b.last_seen
           FROM (SELECT DISTINCT ON (u.md5, u.signature) u.md5, u.signature, u.filename, u.file_type,
                        min(u.start) OVER w AS first_seen, max(u.start) OVER w AS last_seen
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                        AS u(md5, signature, filename, file_type, start)
                 WINDOW w AS (PARTITION BY u.md5, u.signature)
                  ORDER BY u.md5, u.signature, u.filename, u.file_type) b
          WHERE NOT EXISTS (SELECT 1 FROM threat_hash_names o
                             WHERE o.md5 = b.md5 AND o.signature = b.signature
                               AND (o.filename, o.file_type) <= (b.filename, b.file_type)
                               AND o.first_seen <= b.first_seen AND o.last_seen >= b.last_seen)
          ORDER BY b.md5, b.signature
         ON CONFLICT (md5, signature) DO UPDATE SET
            filename = CASE WHEN (excluded.filename, excluded.file_type) < (n.filename, n.file_type)
                            THEN excluded.filename ELSE n.filename END,
            file_type = CASE WHEN (excluded.filename, excluded.file_type) < (n.filename, n.file_type)
                             THEN excluded.file_type ELSE n.file_type END,
            first_seen = least(n.first_seen, excluded.first_seen),
            last_seen = greatest(n.last_seen, excluded.last_seen)
          WHERE (excluded.filename, excluded.file_type) < (n.filename, n.file_type)
             OR excluded.first_seen < n.first_seen OR excluded.last_seen > n.last_seen",
    )
    .bind::<Array<Text>, _>(&new.md5)
    .bind::<Array<Text>, _>(&new.sig)
    .bind::<Array<Text>, _>(&new.filename)
    .bind::<Array<Text>, _>(&new.file_type)
    .bind::<Array<Timestamptz>, _>(&new.start)
    .execute(conn)?;
    Ok(())
}

/// Record the first and last session start of each (IP pair, signature) among a batch's new hits
/// (`threat_pair_signature_times`, which an IP-pair report's signatures over a range are read
/// from), as [`apply_hash_names`] does for hashes: a row already as wide is left alone without a
/// lock or a write (a batch of sessions no newer than the pair's last), a new one is inserted and
/// otherwise the times widened, in (source, destination, signature) order.
fn apply_pair_times(conn: &mut PgConnection, new: &HitRows) -> Result<(), ProjectionError> {
    if new.src.is_empty() {
        return Ok(());
    }
    prepared(
        "INSERT INTO threat_pair_signature_times AS n (source_ip, destination_ip, signature, first_seen, last_seen)
         SELECT b.source_ip, b.destination_ip, b.signature, b.first_seen, b.last_seen
           FROM (SELECT u.source_ip, u.destination_ip, u.signature,
                        min(u.start) AS first_seen, max(u.start) AS last_seen
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                        AS u(source_ip, destination_ip, signature, start)
                  GROUP BY u.source_ip, u.destination_ip, u.signature) b
          WHERE NOT EXISTS (SELECT 1 FROM threat_pair_signature_times o
                             WHERE o.source_ip = b.source_ip AND o.destination_ip = b.destination_ip
                               AND o.signature = b.signature
                               AND o.first_seen <= b.first_seen AND o.last_seen >= b.last_seen)
          ORDER BY b.source_ip, b.destination_ip, b.signature
         ON CONFLICT (source_ip, destination_ip, signature) DO UPDATE SET
            first_seen = least(n.first_seen, excluded.first_seen),
            last_seen = greatest(n.last_seen, excluded.last_seen)
          WHERE excluded.first_seen < n.first_seen OR excluded.last_seen > n.last_seen",
    )
    .bind::<Array<Text>, _>(&new.src)
    .bind::<Array<Text>, _>(&new.dst)
    .bind::<Array<Text>, _>(&new.sig)
    .bind::<Array<Timestamptz>, _>(&new.start)
    .execute(conn)?;
    Ok(())
}

/// Record the UTC days of a batch's new hits per (IP pair, signature)
/// (`threat_pair_signature_days`): rows only ever inserted, in key order; a row already there is
/// left alone, without a lock or a write.
fn apply_pair_days(conn: &mut PgConnection, new: &HitRows) -> Result<(), ProjectionError> {
    if new.src.is_empty() {
        return Ok(());
    }
    prepared(
        "INSERT INTO threat_pair_signature_days (source_ip, destination_ip, day, signature)
         SELECT DISTINCT u.source_ip, u.destination_ip,
                date_trunc('day', u.start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', u.signature
           FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                AS u(source_ip, destination_ip, signature, start)
          ORDER BY 1, 2, 3, 4
         ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&new.src)
    .bind::<Array<Text>, _>(&new.dst)
    .bind::<Array<Text>, _>(&new.sig)
    .bind::<Array<Timestamptz>, _>(&new.start)
    .execute(conn)?;
    Ok(())
}

/// Report deltas keyed by (report index in [`REPORTS`], key, signature).
type Deltas = BTreeMap<(usize, String, String), Delta>;

/// The reports with few keys (file types, protocols). Every batch touches them, and they keep
/// per-signature rows (`threat_report_rows`): their views' maxima and a key's signatures are
/// read from those.
const HOT_REPORTS: [&str; 2] = ["file-type", "protocol"];

/// Whether a report (by its slug) keeps per-signature rows; the others are read from the hits.
pub fn keeps_signature_rows(report: &str) -> bool {
    HOT_REPORTS.contains(&report)
}

/// A report with many keys (hashes, IP pairs): its per-signature rows would be about one per
/// hit, so it reads `threat_hits` by that report's (key, signature, score) index instead, and the
/// ingest writes only its views.
struct ColdReport {
    name: &'static str,
    /// The key, as an expression of `threat_hits h`.
    key: &'static str,
    /// The columns of `threat_hits` the key is made of (its index leads with them).
    columns: &'static str,
    /// `h` has the key `{k}`, in terms of those columns.
    matches: &'static str,
}

const COLD_REPORTS: [ColdReport; 2] = [
    ColdReport {
        name: "hash",
        key: "h.md5",
        columns: "md5",
        matches: "h.md5 = {k}",
    },
    ColdReport {
        name: "ip-pair",
        key: "h.source_ip || ' ' || h.destination_ip",
        columns: "source_ip, destination_ip",
        matches:
            "h.source_ip = split_part({k}, ' ', 1) AND h.destination_ip = split_part({k}, ' ', 2)",
    },
];

/// Joins `col`, a signature name, to each view `w` whose clearance set holds that signature's
/// group (`$1`: the restricted group, which a signature not registered yet counts in; that cannot
/// happen after validation).
pub(super) fn in_view(col: &str) -> String {
    format!(
        "LEFT JOIN threat_signatures s ON s.name = {col}
         JOIN threat_views w ON w.view_id = '*' OR coalesce(s.group_name, $1) = ANY(w.groups)"
    )
}

/// The view rows (report, view_id, key, hits, max_score, last_seen) of every report, summed from
/// what each is read from: the per-signature rows `r` of the hot reports where `rows_filter`
/// holds, the hits `h` of the cold ones where `hits_filter(report)` holds. Binds `$1` to the
/// restricted group.
fn view_rows(rows_filter: &str, hits_filter: impl Fn(&ColdReport) -> String) -> String {
    let mut parts = vec![format!(
        "SELECT r.report, w.view_id, r.key, sum(r.hits)::int4, max(r.max_score), max(r.last_seen)
         FROM threat_report_rows r {join}
         WHERE {rows_filter}
         GROUP BY 1, 2, 3",
        join = in_view("r.signature")
    )];
    for report in &COLD_REPORTS {
        parts.push(format!(
            "SELECT '{name}', w.view_id, {key}, count(*)::int4, max(h.score), max(h.start_time)
             FROM threat_hits h {join}
             WHERE {filter}
             GROUP BY 1, 2, 3",
            name = report.name,
            key = report.key,
            join = in_view("h.signature"),
            filter = hits_filter(report)
        ));
    }
    parts.join(" UNION ALL ")
}

/// Add deltas to the per-signature rows (`hot` reports only), then roll them up per view.
fn apply_report_deltas(
    conn: &mut PgConnection,
    deltas: Deltas,
    group_of: &HashMap<String, String>,
    views: &[ViewDef],
    hot: bool,
) -> Result<(), ProjectionError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let rows: Keyed = deltas
        .into_iter()
        .map(|((r, key, sig), d)| ((REPORTS[r].to_owned(), key, sig), d))
        .collect();
    if hot {
        // 3. Report rows: add counts, raise maxima.
        add_deltas(conn, "threat_report_rows", "report, key, signature", &rows)?;

        // 4. A rescore that lowered a score: the max of that (key, signature) is recomputed
        //    from the hits (one index probe each).
        for report in HOT_REPORTS {
            let (k, s): (Vec<&str>, Vec<&str>) = rows
                .iter()
                .filter(|((r, _, _), d)| r == report && d.lowered)
                .map(|((_, key, sig), _)| (key.as_str(), sig.as_str()))
                .unzip();
            if k.is_empty() {
                continue;
            }
            let matches = match report {
                "file-type" => "h.file_type = r.key",
                _ => "h.protocol = r.key",
            };
            prepared(format!(
                "INSERT INTO threat_report_rows AS r (report, key, signature, hits, max_score, last_seen)
                 SELECT $3, r.key, r.signature, 0, (
                     SELECT h.score FROM threat_hits h WHERE {matches} AND h.signature = r.signature
                     ORDER BY h.score DESC LIMIT 1), now()
                 FROM unnest($1::text[], $2::text[]) AS r(key, signature)
                 ON CONFLICT (report, key, signature) DO UPDATE SET max_score = excluded.max_score"
            ))
            .bind::<Array<Text>, _>(&k)
            .bind::<Array<Text>, _>(&s)
            .bind::<Text, _>(report)
            .execute(conn)?;
        }
    }

    // 5. The same deltas rolled up per view (clearance set) holding each signature's group.
    let mut by_view = Keyed::new();
    for ((report, key, sig), d) in &rows {
        // A signature not registered yet cannot happen after validation; count it restricted.
        let group = group_of.get(sig).map_or(RESTRICTED_GROUP, String::as_str);
        for v in views
            .iter()
            .filter(|v| v.view_id == ADMIN_VIEW || v.groups.iter().any(|g| g == group))
        {
            by_view
                .entry((report.clone(), v.view_id.clone(), key.clone()))
                .or_default()
                .add(d);
        }
    }
    add_deltas(
        conn,
        "threat_report_views",
        "report, view_id, key",
        &by_view,
    )?;

    // 6. A lowered maximum of a view row: the largest visible one of its key, from the key's
    //    per-signature rows after step 4 (one primary-key range), or from its hits (one range of
    //    the report's hits index).
    let (report, view, key) = lowered(&by_view);
    let sources: Vec<(Option<&str>, String)> = if hot {
        vec![(
            None,
            format!(
                "SELECT max(r.max_score) FROM threat_report_rows r {join}
                 WHERE r.report = v.report AND r.key = v.key AND w.view_id = v.view_id",
                join = in_view("r.signature")
            ),
        )]
    } else {
        COLD_REPORTS
            .iter()
            .map(|c| {
                (
                    Some(c.name),
                    format!(
                        "SELECT max(h.score) FROM threat_hits h {join}
                         WHERE {matches} AND w.view_id = v.view_id",
                        join = in_view("h.signature"),
                        matches = c.matches.replace("{k}", "v.key")
                    ),
                )
            })
            .collect()
    };
    for (only, max) in sources {
        let picked: Vec<usize> = (0..report.len())
            .filter(|&i| only.is_none_or(|r| report[i] == r))
            .collect();
        if picked.is_empty() {
            continue;
        }
        fn column<'a>(c: &[&'a str], picked: &[usize]) -> Vec<&'a str> {
            picked.iter().map(|&i| c[i]).collect()
        }
        prepared(format!(
            "INSERT INTO threat_report_views AS v (report, view_id, key, hits, max_score, last_seen)
             SELECT v.report, v.view_id, v.key, 0, ({max}), now()
             FROM unnest($2::text[], $3::text[], $4::text[]) AS v(report, view_id, key)
             ON CONFLICT (report, view_id, key) DO UPDATE SET max_score = excluded.max_score"
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .bind::<Array<Text>, _>(column(&report, &picked))
        .bind::<Array<Text>, _>(column(&view, &picked))
        .bind::<Array<Text>, _>(column(&key, &picked))
        .execute(conn)?;
    }
    Ok(())
}

/// Deltas of one report table by its three key columns, in the table's column order.
type Keyed = BTreeMap<(String, String, String), Delta>;

/// Add deltas to a report table: counts add up, maxima and last-seen times rise. The rows are
/// written in key order, so that concurrent batches queue for shared rows instead of deadlocking.
fn add_deltas(
    conn: &mut PgConnection,
    table: &str,
    key_columns: &str,
    deltas: &Keyed,
) -> QueryResult<()> {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hits, mut max, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for ((x, y, z), d) in deltas {
        a.push(x.as_str());
        b.push(y.as_str());
        c.push(z.as_str());
        hits.push(d.hits);
        max.push(d.max_score);
        seen.push(d.last_seen.unwrap_or_else(Utc::now));
    }
    prepared(format!(
        "INSERT INTO {table} AS t ({key_columns}, hits, max_score, last_seen)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[], $6::timestamptz[])
         ON CONFLICT ({key_columns}) DO UPDATE SET
             hits = t.hits + excluded.hits,
             max_score = GREATEST(t.max_score, excluded.max_score),
             last_seen = GREATEST(t.last_seen, excluded.last_seen)"
    ))
    .bind::<Array<Text>, _>(&a)
    .bind::<Array<Text>, _>(&b)
    .bind::<Array<Text>, _>(&c)
    .bind::<Array<Int4>, _>(&hits)
    .bind::<Array<Int4>, _>(&max)
    .bind::<Array<Timestamptz>, _>(&seen)
    .execute(conn)?;
    Ok(())
}

/// The keys whose delta came from a rescore that lowered a score, as three columns.
fn lowered(deltas: &Keyed) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for ((x, y, z), _) in deltas.iter().filter(|(_, d)| d.lowered) {
        columns.0.push(x.as_str());
        columns.1.push(y.as_str());
        columns.2.push(z.as_str());
    }
    columns
}

/// What the update of a rescored hit writes, by its key.
#[derive(Default)]
struct RescoredHits {
    file: Vec<String>,
    integ: Vec<String>,
    sig: Vec<String>,
    score: Vec<i32>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct HitRows {
    file: Vec<String>,
    integ: Vec<String>,
    sig: Vec<String>,
    score: Vec<i32>,
    session: Vec<String>,
    md5: Vec<String>,
    filename: Vec<String>,
    file_type: Vec<String>,
    protocol: Vec<String>,
    src: Vec<String>,
    dst: Vec<String>,
    start: Vec<DateTime<Utc>>,
    at: Vec<DateTime<Utc>>,
}

/// `threat_signatures`: each signature's current name, rule, group and default score.
pub struct SignaturesProjection;

impl Projection for SignaturesProjection {
    fn name(&self) -> &'static str {
        "threat_signatures"
    }
    fn handles(&self) -> &'static [&'static str] {
        SignatureEvent::TYPES
    }
    fn tables(&self) -> &'static [&'static str] {
        &["threat_signatures"]
    }
    fn inline_only(&self) -> Option<&'static str> {
        Some("every report reads who may see a signature's hits from it")
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        use threat_signatures as t;
        let name = event.stream_id.as_str();
        let (v, at) = (event.stream_version, event.recorded_at);
        match event.decode::<SignatureEvent>()? {
            SignatureEvent::SignatureCreated {
                rule_text,
                group,
                default_score,
                ..
            } => {
                diesel::insert_into(t::table)
                    .values((
                        t::name.eq(name),
                        t::rule_text.eq(rule_text),
                        t::restricted.eq(group == RESTRICTED_GROUP),
                        t::group_name.eq(group),
                        t::default_score.eq(default_score),
                        t::version.eq(v),
                        t::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            SignatureEvent::SignatureRegisteredRestricted { .. } => {
                diesel::insert_into(t::table)
                    .values((
                        t::name.eq(name),
                        t::rule_text.eq(""),
                        t::group_name.eq(RESTRICTED_GROUP),
                        t::restricted.eq(true),
                        t::default_score.eq(super::decider::DEFAULT_SCORE),
                        t::version.eq(v),
                        t::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            SignatureEvent::SignatureRevised {
                rule_text,
                group,
                default_score,
            } => {
                diesel::update(t::table.find(name))
                    .set((
                        t::rule_text.eq(rule_text),
                        t::restricted.eq(group == RESTRICTED_GROUP),
                        t::group_name.eq(group),
                        t::default_score.eq(default_score),
                        t::version.eq(v),
                        t::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            SignatureEvent::SignatureRetired {} => {
                diesel::update(t::table.find(name))
                    .set((t::retired.eq(true), t::version.eq(v), t::updated_at.eq(at)))
                    .execute(conn)?;
            }
        }
        Ok(())
    }
}

/// `threat_clearances`: the groups each analyst holds now.
pub struct ClearancesProjection;

impl Projection for ClearancesProjection {
    fn name(&self) -> &'static str {
        "threat_clearances"
    }
    fn handles(&self) -> &'static [&'static str] {
        ClearanceEvent::TYPES
    }
    fn tables(&self) -> &'static [&'static str] {
        &["threat_clearances"]
    }
    fn inline_only(&self) -> Option<&'static str> {
        Some("a revoked clearance must count on the next request")
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        use threat_clearances as t;
        let user = event.stream_uuid()?;
        match event.decode::<ClearanceEvent>()? {
            ClearanceEvent::ClearanceGranted { group } => {
                diesel::insert_into(t::table)
                    .values((
                        t::user_id.eq(user),
                        t::group_name.eq(group),
                        t::granted_at.eq(event.recorded_at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
            }
            ClearanceEvent::ClearanceRevoked { group } => {
                diesel::delete(t::table.find((user, group))).execute(conn)?;
            }
        }
        Ok(())
    }
}

/// `sensors`: each sensor's name and whether it may still post.
pub struct SensorsProjection;

impl Projection for SensorsProjection {
    fn name(&self) -> &'static str {
        "sensors"
    }
    fn handles(&self) -> &'static [&'static str] {
        SensorAdminEvent::TYPES
    }
    fn tables(&self) -> &'static [&'static str] {
        &["sensors"]
    }
    fn inline_only(&self) -> Option<&'static str> {
        Some("the sensor API authenticates against it: a revoked sensor must stop at once")
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let id = event.stream_uuid()?;
        match event.decode::<SensorAdminEvent>()? {
            SensorAdminEvent::SensorRegistered { name } => {
                diesel::insert_into(sensors::table)
                    .values((
                        sensors::id.eq(id),
                        sensors::name.eq(name),
                        sensors::active.eq(true),
                        sensors::created_at.eq(event.recorded_at),
                    ))
                    .execute(conn)?;
            }
            SensorAdminEvent::SensorRevoked {} => {
                diesel::update(sensors::table.find(id))
                    .set((
                        sensors::active.eq(false),
                        sensors::revoked_at.eq(Some(event.recorded_at)),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(())
    }
}
