//! Time-bucketed rankings (`threat_report_buckets`): each clearance set's report rows per UTC
//! hour and per UTC day of the sessions' start time, kept by the `threat_hits` projection beside
//! the all-time rankings (same deltas, same views, rebuilt and verified with them). A report over
//! a time range sums the whole days and hours inside it and reads only the hits of its unaligned
//! edges ([`Plan`]): exact at the edges, and its cost follows the buckets in the range.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Text, Timestamptz};

use super::decider::RESTRICTED_GROUP;
use super::projections::{in_view, Delta, ViewDef, ADMIN_VIEW, REPORTS};
use crate::es::projection::ProjectionError;
use crate::prepared::prepared;

/// The length of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
    pub fn micros(self) -> i64 {
        match self {
            Grain::Hour => 3_600_000_000,
            Grain::Day => 86_400_000_000,
        }
    }
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).expect("a bucket of a stored time is a valid time")
}

/// The start of the bucket holding `t` (UTC hours and days; floor, also before 1970).
pub fn bucket_start(t: DateTime<Utc>, grain: Grain) -> DateTime<Utc> {
    let g = grain.micros();
    from_micros(t.timestamp_micros().div_euclid(g) * g)
}

/// The first bucket boundary at or after `t`.
fn bucket_ceil(t: DateTime<Utc>, grain: Grain) -> DateTime<Utc> {
    let floor = bucket_start(t, grain);
    if floor == t {
        t
    } else {
        from_micros(floor.timestamp_micros() + grain.micros())
    }
}

/// Stand-ins for an open end of a range, beyond any time PostgreSQL or a sensor can store.
pub fn earliest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(-4000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}
pub fn latest() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(100_000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("a valid date")
        .and_utc()
}

/// A half-open span `[from, to)`; empty when `from >= to`.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// How a range `[from, to)` is read: the whole days inside it, the whole hours before and after
/// those days, and the unaligned edges (read from the hits). Unused parts are empty spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub days: Span,
    pub hours: [Span; 2],
    pub edges: [Span; 2],
}

impl Plan {
    pub fn of(from: DateTime<Utc>, to: DateTime<Utc>) -> Plan {
        let empty = (to, to);
        let (ha, hb) = (
            bucket_ceil(from, Grain::Hour),
            bucket_start(to, Grain::Hour),
        );
        if ha >= hb {
            return Plan {
                days: empty,
                hours: [empty, empty],
                edges: [(from, to), empty],
            };
        }
        let edges = [(from, ha), (hb, to)];
        let (da, db) = (bucket_ceil(ha, Grain::Day), bucket_start(hb, Grain::Day));
        if da >= db {
            return Plan {
                days: empty,
                hours: [(ha, hb), empty],
                edges,
            };
        }
        Plan {
            days: (da, db),
            hours: [(ha, da), (db, hb)],
            edges,
        }
    }
}

/// A report's key over `threat_hits h`, as the bucket rows are grouped.
pub struct ReportKey {
    pub name: &'static str,
    /// The key, as an expression of `threat_hits h`.
    pub key: &'static str,
    /// The columns of `threat_hits` the key is made of (an index leads with them).
    pub columns: &'static str,
    /// `h` has the key `{k}`, in terms of those columns.
    pub matches: &'static str,
}

/// Every report's key, in the order of [`REPORTS`].
pub const REPORT_KEYS: [ReportKey; 4] = [
    ReportKey {
        name: "hash",
        key: "h.md5",
        columns: "md5",
        matches: "h.md5 = {k}",
    },
    ReportKey {
        name: "file-type",
        key: "h.file_type",
        columns: "file_type",
        matches: "h.file_type = {k}",
    },
    ReportKey {
        name: "ip-pair",
        key: "h.source_ip || ' ' || h.destination_ip",
        columns: "source_ip, destination_ip",
        matches:
            "h.source_ip = split_part({k}, ' ', 1) AND h.destination_ip = split_part({k}, ' ', 2)",
    },
    ReportKey {
        name: "protocol",
        key: "h.protocol",
        columns: "protocol",
        matches: "h.protocol = {k}",
    },
];

/// `t`'s bucket in SQL, in UTC whatever the session's time zone.
fn sql_bucket(t: &str, grain: Grain) -> String {
    format!(
        "date_trunc('{}', {t} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        grain.as_str()
    )
}

/// The bucket rows (report, view_id, grain, bucket, key, hits, max_score, last_seen) summed from
/// the hits `h` where `filter(report)` holds, for the views `w` where `views` holds. Binds `$1`
/// to the restricted group.
pub(super) fn bucket_rows(views: &str, filter: impl Fn(&ReportKey) -> String) -> String {
    REPORT_KEYS
        .iter()
        .map(|r| {
            format!(
                "SELECT '{name}', w.view_id, g.grain, g.bucket, {key}, count(*)::int4, max(h.score), max(h.start_time)
                 FROM threat_hits h {join}
                 CROSS JOIN LATERAL (VALUES ('hour', {hour}), ('day', {day})) AS g(grain, bucket)
                 WHERE {views} AND {filter}
                 GROUP BY 1, 2, 3, 4, 5",
                name = r.name,
                key = r.key,
                join = in_view("h.signature"),
                hour = sql_bucket("h.start_time", Grain::Hour),
                day = sql_bucket("h.start_time", Grain::Day),
                filter = filter(r),
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Bucket deltas of a batch keyed by (report index in [`REPORTS`], key, signature, hour).
pub(super) type BucketDeltas = BTreeMap<(usize, String, String, DateTime<Utc>), Delta>;

/// A bucket row's key: report, view, grain, bucket start, report key.
type BucketKey = (&'static str, String, Grain, DateTime<Utc>, String);

/// Roll a batch's per-signature hour deltas up into the bucket rows of every view holding the
/// signature's group, hours and days; add them (in key order, so that concurrent batches queue
/// instead of deadlocking); then correct the maxima a lowering rescore may have lowered.
pub(super) fn apply_bucket_deltas(
    conn: &mut PgConnection,
    deltas: BucketDeltas,
    group_of: &HashMap<String, String>,
    views: &[ViewDef],
) -> Result<(), ProjectionError> {
    if deltas.is_empty() {
        return Ok(());
    }
    let mut rows: BTreeMap<BucketKey, Delta> = BTreeMap::new();
    for ((r, key, sig, hour), d) in &deltas {
        let group = group_of.get(sig).map_or(RESTRICTED_GROUP, String::as_str);
        for v in views
            .iter()
            .filter(|v| v.view_id == ADMIN_VIEW || v.groups.iter().any(|g| g == group))
        {
            for (grain, bucket) in [
                (Grain::Hour, *hour),
                (Grain::Day, bucket_start(*hour, Grain::Day)),
            ] {
                rows.entry((REPORTS[*r], v.view_id.clone(), grain, bucket, key.clone()))
                    .or_default()
                    .add(d);
            }
        }
    }
    let mut c = BucketColumns::default();
    for (k, d) in &rows {
        c.push(k);
        c.hits.push(d.hits);
        c.max.push(d.max_score);
        c.seen.push(d.last_seen.unwrap_or(k.3));
    }
    prepared(
        "INSERT INTO threat_report_buckets AS t (report, view_id, grain, bucket, key, hits, max_score, last_seen)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int4[],
                              $7::int4[], $8::timestamptz[])
         ON CONFLICT (report, view_id, grain, bucket, key) DO UPDATE SET
             hits = t.hits + excluded.hits,
             max_score = GREATEST(t.max_score, excluded.max_score),
             last_seen = GREATEST(t.last_seen, excluded.last_seen)",
    )
    .bind::<Array<Text>, _>(&c.report)
    .bind::<Array<Text>, _>(&c.view)
    .bind::<Array<Text>, _>(&c.grain)
    .bind::<Array<Timestamptz>, _>(&c.bucket)
    .bind::<Array<Text>, _>(&c.key)
    .bind::<Array<Int4>, _>(&c.hits)
    .bind::<Array<Int4>, _>(&c.max)
    .bind::<Array<Timestamptz>, _>(&c.seen)
    .execute(conn)?;
    apply_key_hours(conn, &rows)?;

    // A lowered maximum: hours from their hits (by the key's index or the start-time index);
    // then days, from the hits of a key with few (hashes, IP pairs) or from the day's 24 hour
    // rows of a key with many (file types, protocols). One statement a grain, each report's
    // probe picked by a `CASE` (only the branch taken runs): the hours first, in a statement
    // of their own, so that the days' statement reads the corrected hour rows (a statement
    // does not see its own writes). Eight statements a batch before, one per report and grain.
    for grain in [Grain::Hour, Grain::Day] {
        let mut lowered = BucketColumns::default();
        for (k, _) in rows.iter().filter(|(k, d)| d.lowered && k.2 == grain) {
            lowered.push(k);
        }
        if lowered.report.is_empty() {
            continue;
        }
        let end = format!("v.bucket + interval '{}'", grain_interval(grain));
        let probes: String = REPORT_KEYS
            .iter()
            .map(|r| format!(" WHEN '{}' THEN ({})", r.name, lowered_max(r, grain, &end)))
            .collect();
        prepared(format!(
            "INSERT INTO threat_report_buckets AS b (report, view_id, grain, bucket, key, hits, max_score, last_seen)
             SELECT v.report, v.view_id, v.grain, v.bucket, v.key, 0, CASE v.report{probes} END, v.bucket
             FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[])
                  AS v(report, view_id, grain, bucket, key)
             ON CONFLICT (report, view_id, grain, bucket, key) DO UPDATE SET max_score = excluded.max_score"
        ))
        .bind::<Text, _>(RESTRICTED_GROUP)
        .bind::<Array<Text>, _>(&lowered.report)
        .bind::<Array<Text>, _>(&lowered.view)
        .bind::<Array<Text>, _>(&lowered.grain)
        .bind::<Array<Timestamptz>, _>(&lowered.bucket)
        .bind::<Array<Text>, _>(&lowered.key)
        .execute(conn)?;
    }
    Ok(())
}

/// The hour of `t` as `threat_report_key_hours` numbers them: whole hours since 1970-01-01 00:00
/// UTC (floor, also before 1970).
pub fn hour_number(t: DateTime<Utc>) -> i32 {
    t.timestamp().div_euclid(3_600) as i32
}

/// The most hours a key's hour string spans (as `threat_hours_of` and `threat_hours_union` in
/// the migration `report_key_hours`): a wider key (sensors' times reach from year 1 to 9999)
/// keeps an empty string, and its hours are read from its buckets.
const KEY_HOURS_SPAN: i32 = 65_536;

/// Set the bits of the hours of a batch's new hits in their keys' hour strings
/// (`threat_report_key_hours`, per report, clearance set and key), in key order as the buckets;
/// a string that has them already is left as it is (locked, not written).
fn apply_key_hours(
    conn: &mut PgConnection,
    rows: &BTreeMap<BucketKey, Delta>,
) -> Result<(), ProjectionError> {
    let mut keys: BTreeMap<(&str, &str, &str), Vec<i32>> = BTreeMap::new();
    for (k, d) in rows {
        if k.2 == Grain::Hour && d.hits > 0 {
            keys.entry((k.0, &k.1, &k.4))
                .or_default()
                .push(hour_number(k.3));
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let (mut report, mut view, mut key) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut bits) = (Vec::new(), Vec::new());
    for ((r, v, k), hours) in keys {
        let (Some(&f), Some(&l)) = (hours.iter().min(), hours.iter().max()) else {
            continue;
        };
        let mut b = Vec::new();
        if l - f < KEY_HOURS_SPAN {
            b = vec![b'0'; (l - f + 1) as usize];
            for h in hours {
                b[(h - f) as usize] = b'1';
            }
        }
        report.push(r);
        view.push(v);
        key.push(k);
        first.push(f);
        bits.push(String::from_utf8(b).expect("ASCII digits"));
    }
    prepared(
        "INSERT INTO threat_report_key_hours AS t (report, view_id, key, first_hour, hours)
         SELECT r, v, k, f, b::varbit
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::text[]) AS x(r, v, k, f, b)
         ON CONFLICT (report, view_id, key) DO UPDATE SET
             first_hour = least(t.first_hour, excluded.first_hour),
             hours = threat_hours_union(t.first_hour, t.hours, excluded.first_hour, excluded.hours)
         WHERE threat_hours_union(t.first_hour, t.hours, excluded.first_hour, excluded.hours) <> t.hours
            OR excluded.first_hour < t.first_hour",
    )
    .bind::<Array<Text>, _>(&report)
    .bind::<Array<Text>, _>(&view)
    .bind::<Array<Text>, _>(&key)
    .bind::<Array<Int4>, _>(&first)
    .bind::<Array<Text>, _>(&bits)
    .execute(conn)?;
    Ok(())
}

/// The rows of `threat_report_key_hours` from the hour rows of `threat_report_buckets b` where
/// `filter` holds: each key's hours gathered by hashing, then written by `threat_hours_of`.
pub(super) fn key_hours_rows(filter: &str) -> String {
    format!(
        "SELECT k.report, k.view_id, k.key, min(k.h), threat_hours_of(array_agg(k.h))
         FROM (SELECT b.report, b.view_id, b.key, (date_part('epoch', b.bucket) / 3600)::int4 AS h
               FROM threat_report_buckets b WHERE b.grain = 'hour' AND {filter}) k
         GROUP BY 1, 2, 3"
    )
}

/// The maximum score of the bucket row `v` (report `r`, grain `grain`, ending at `end`) read
/// again after a rescore lowered a score in it; binds `$1` to the restricted group.
fn lowered_max(r: &ReportKey, grain: Grain, end: &str) -> String {
    if grain == Grain::Day && super::projections::keeps_signature_rows(r.name) {
        format!(
            "SELECT max(b.max_score) FROM threat_report_buckets b
             WHERE b.report = v.report AND b.view_id = v.view_id AND b.grain = 'hour'
               AND b.bucket >= v.bucket AND b.bucket < {end} AND b.key = v.key"
        )
    } else if super::projections::keeps_signature_rows(r.name) {
        // A few keys, each with a large share of the hits: the hour's hits by the
        // start-time index, the key tested on each. (Written as `column = key`, the
        // planner intersected both indexes and read every hit of the file type or
        // protocol for each lowered hour: 2 ms a probe at 75,000 hits, 0.3 ms this way.)
        format!(
            "SELECT max(h.score) FROM threat_hits h {join}
             WHERE ({column} || '') = v.key AND w.view_id = v.view_id
               AND h.start_time >= v.bucket AND h.start_time < {end}",
            join = in_view("h.signature"),
            column = r.key,
        )
    } else {
        // Many keys (hashes, IP pairs), each with a few hits: the key's hits by its
        // index, the bucket tested on each (the same hits as the range: `v.bucket` is
        // a bucket's start). Written as a range, the planner also read the start-time
        // index for it and intersected the two: every hit of the hour or day, for
        // each lowered key, a cost that grew with the table (a day's probe 0.3 ms at
        // 75,000 hits, 0.05 ms by the key alone; at 1,000,000 events the catch-up
        // spent most of its time there).
        format!(
            "SELECT max(h.score) FROM threat_hits h {join}
             WHERE {matches} AND w.view_id = v.view_id AND {bucket} = v.bucket",
            join = in_view("h.signature"),
            matches = r.matches.replace("{k}", "v.key"),
            bucket = sql_bucket("h.start_time", grain),
        )
    }
}

/// The rows of `threat_report_signature_hours` from the hits `h` where `filter` holds: each hour
/// in which a key of a few-key report had a hit of a signature (whatever its groups: the readers
/// keep the signatures their viewer may see).
pub(super) fn signature_hour_rows(filter: &str) -> String {
    REPORT_KEYS
        .iter()
        .filter(|r| super::projections::keeps_signature_rows(r.name))
        .map(|r| {
            format!(
                "SELECT DISTINCT '{name}', {key}, h.signature, {hour} FROM threat_hits h WHERE {filter}",
                name = r.name,
                key = r.key,
                hour = sql_bucket("h.start_time", Grain::Hour),
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Record the hours in which a batch's new hits of the few-key reports fall, per key and
/// signature (`threat_report_signature_hours`): rows only ever inserted, in key order; a row
/// already there (most of a busy hour's) is left alone, without a lock or a write.
pub(super) fn apply_signature_hours(
    conn: &mut PgConnection,
    deltas: &BucketDeltas,
) -> Result<(), ProjectionError> {
    let (mut report, mut key, mut sig, mut hour) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((r, k, s, h), d) in deltas {
        if d.hits > 0 && super::projections::keeps_signature_rows(REPORTS[*r]) {
            report.push(REPORTS[*r]);
            key.push(k.as_str());
            sig.push(s.as_str());
            hour.push(*h);
        }
    }
    if report.is_empty() {
        return Ok(());
    }
    prepared(
        "INSERT INTO threat_report_signature_hours (report, key, signature, bucket)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
         ON CONFLICT DO NOTHING",
    )
    .bind::<Array<Text>, _>(&report)
    .bind::<Array<Text>, _>(&key)
    .bind::<Array<Text>, _>(&sig)
    .bind::<Array<Timestamptz>, _>(&hour)
    .execute(conn)?;
    Ok(())
}

/// A bucket's length as a PostgreSQL interval (a day is 24 hours: UTC has no daylight saving,
/// and `interval '1 day'` would follow the session's time zone).
pub fn grain_interval(grain: Grain) -> &'static str {
    match grain {
        Grain::Hour => "1 hour",
        Grain::Day => "24 hours",
    }
}

#[derive(Default)]
struct BucketColumns<'a> {
    report: Vec<&'static str>,
    view: Vec<&'a str>,
    grain: Vec<&'static str>,
    bucket: Vec<DateTime<Utc>>,
    key: Vec<&'a str>,
    hits: Vec<i32>,
    max: Vec<i32>,
    seen: Vec<DateTime<Utc>>,
}

impl<'a> BucketColumns<'a> {
    fn push(&mut self, k: &'a BucketKey) {
        self.report.push(k.0);
        self.view.push(&k.1);
        self.grain.push(k.2.as_str());
        self.bucket.push(k.3);
        self.key.push(&k.4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_floor_in_utc_also_before_1970() {
        assert_eq!(
            bucket_start(t("2026-12-05T19:59:59.5Z"), Grain::Hour),
            t("2026-12-05T19:00:00Z")
        );
        assert_eq!(
            bucket_start(t("1969-12-31T23:30:00Z"), Grain::Day),
            t("1969-12-31T00:00:00Z")
        );
        assert_eq!(
            bucket_start(t("2026-12-05T00:00:00Z"), Grain::Day),
            t("2026-12-05T00:00:00Z")
        );
    }

    #[test]
    fn a_range_is_whole_days_whole_hours_and_two_edges() {
        let p = Plan::of(t("2026-12-01T10:15:00Z"), t("2026-12-04T03:30:00Z"));
        assert_eq!(
            p.edges[0],
            (t("2026-12-01T10:15:00Z"), t("2026-12-01T11:00:00Z"))
        );
        assert_eq!(
            p.hours[0],
            (t("2026-12-01T11:00:00Z"), t("2026-12-02T00:00:00Z"))
        );
        assert_eq!(
            p.days,
            (t("2026-12-02T00:00:00Z"), t("2026-12-04T00:00:00Z"))
        );
        assert_eq!(
            p.hours[1],
            (t("2026-12-04T00:00:00Z"), t("2026-12-04T03:00:00Z"))
        );
        assert_eq!(
            p.edges[1],
            (t("2026-12-04T03:00:00Z"), t("2026-12-04T03:30:00Z"))
        );
        // Within one hour: all edge.
        let p = Plan::of(t("2026-12-01T10:15:00Z"), t("2026-12-01T10:45:00Z"));
        assert_eq!(
            p.edges[0],
            (t("2026-12-01T10:15:00Z"), t("2026-12-01T10:45:00Z"))
        );
        assert!(p.days.0 >= p.days.1 && p.hours.iter().all(|h| h.0 >= h.1));
        // Aligned ends: no edges; less than a day: hours only.
        let p = Plan::of(t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"));
        assert!(p.edges.iter().all(|e| e.0 >= e.1));
        assert_eq!(
            p.hours[0],
            (t("2026-12-01T10:00:00Z"), t("2026-12-01T12:00:00Z"))
        );
        assert!(p.days.0 >= p.days.1);
    }
}
