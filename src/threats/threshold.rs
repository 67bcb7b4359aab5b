//! The top rows of a many-key report (hashes, IP pairs) over a time range by the threshold
//! algorithm (Fagin's TA) over the clearance set's all-time ranking: a key's hits, max score
//! and last seen in a range are at most its all-time ones, so walking the keys in all-time order
//! and counting each one's hits in the range exactly, the walk can stop once the n-th best range
//! row beats the next key's all-time row: no key after it can enter the top n. Exact by
//! construction; fast when the range's leaders are among the all-time leaders (a range holding
//! most of the hits, or a heavy-tailed distribution whose leaders stay ahead). When the walk
//! would be long (counts spread evenly, so the n-th range count is low against the all-time
//! counts), it gives up early and the caller sums the time buckets instead. A range touching a
//! few days is first walked the same way over those days' leaders (`day_walk`), whose counts
//! bound it more tightly than the all-time ones.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Int8, Text, Timestamptz};

use super::buckets::{Grain, Plan, Span};

use super::queries::{Report, ReportRow, TimeRange};
use super::scope::AnalystScope;

/// What the walk may cost in all, in index entries read (a key's hits, or its bucket rows):
/// about what summing a week of hour and day buckets reads for these reports.
const BUDGET: i64 = 20_000;
/// The most keys the walk may visit past its first step (each is one index probe).
const KEYS_BUDGET: i64 = 2_000;
/// The most hits outside a range that the page's row count reads (the keys with no hit in the
/// range are found among them); beyond, the keys in the range's buckets are counted.
const COMPLEMENT_BUDGET: i64 = 20_000;

#[derive(QueryableByName, Clone)]
struct Ranked {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Int8)]
    hits: i64,
    #[diesel(sql_type = Int4)]
    max_score: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Int8)]
    n: i64,
}

/// A row's place in the ranking without its key, which ties are broken by in SQL (the
/// database's collation, not Rust's byte order).
fn rank(hits: i64, max_score: i32) -> (i64, i32) {
    (hits, max_score)
}

/// The first `offset + limit` rows of `report` over `range` for the clearance set `view` in the
/// ranking's order (hits, max score, key), the page `[offset, offset + limit)` of them, and, if
/// `count`, the report's row count, all without the `hidden` keys (triaged hashes the viewer
/// hides: the walk never visits them), by the day walk or else the all-time walk; `None` when
/// both would be long (or a range of two days or less declines the day walk). The count is of the
/// keys last seen in a range open at its end; else of the all-time keys less those whose hits
/// all lie outside the range when those hits are few, else of the keys in the range's buckets.
#[allow(clippy::too_many_arguments)] // which report, range, view and page
pub(super) fn top(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    view: &str,
    range: &TimeRange,
    limit: i64,
    offset: i64,
    count: bool,
    hidden: &[String],
) -> QueryResult<Option<(Vec<ReportRow>, i64)>> {
    let (from, to) = range.ends();
    // A range of a day or two is walked by its days' leaders (the all-time counts bound its
    // counts too loosely), or its buckets are summed. Judged on the part of the range the hits
    // span: a preset is open at its end, so `1h` and `24h` were "longer than two days" and
    // walked (then declined) before summing the buckets. A bounded range that short needs no
    // look at the hits to say so.
    let short = chrono::Duration::hours(48);
    let page = Page {
        limit,
        offset,
        count,
        hidden,
    };
    if to - from <= short {
        return day_walk(conn, scope, report, view, range, (from, to), &page);
    }
    let stored = stored_span(conn, from, to)?;
    // Up to a week or so, the days' leaders bound a range more tightly than the all-time counts;
    // what the day walk declines, the all-time walk tries, unless the range is that short.
    let walked = day_walk(conn, scope, report, view, range, stored, &page)?;
    if walked.is_some() || stored.1 - stored.0 <= short {
        return Ok(walked);
    }
    let n = (limit + offset).max(1) as usize;
    let buckets = BucketRanges::of(stored);
    let mut found: Vec<ReportRow> = Vec::new();
    let mut walked: i64 = 0;
    let mut spent: i64 = 0;
    let mut step = (2 * n as i64).max(20);
    let mut within_budget = false;
    loop {
        // One key more than the step: the next key's all-time row is the bound.
        let ranked: Vec<Ranked> = diesel::sql_query(
            "SELECT v.key, v.hits::int8 AS hits, v.max_score FROM threat_report_views v
             WHERE v.report = $1 AND v.view_id = $2 AND v.hits > 0 AND v.key <> ALL($5)
             ORDER BY v.hits DESC, v.max_score DESC, v.key ASC LIMIT $3 OFFSET $4",
        )
        .bind::<Text, _>(report.slug())
        .bind::<Text, _>(view)
        .bind::<Int8, _>(step + 1)
        .bind::<Int8, _>(walked)
        .bind::<Array<Text>, _>(hidden)
        .load(conn)?;
        let next = ranked.get(step as usize).cloned();
        let (mut light, mut heavy) = (Vec::new(), Vec::new());
        for r in ranked.into_iter().take(step as usize) {
            walked += 1;
            spent += buckets.cost(r.hits);
            if buckets.cost(r.hits) < buckets.count() {
                light.push(r.key);
            } else {
                heavy.push(r.key);
            }
        }
        // Give up before the walk costs about what summing the buckets would.
        if spent > BUDGET {
            return Ok(None);
        }
        found.extend(in_range(conn, scope, report, light, from, to)?);
        found.extend(buckets.in_range(conn, scope, report, view, heavy)?);
        keep_best(&mut found, n);
        let Some(next) = next else { break };
        if found.len() >= n && beats_next(conn, &found, n, &next)? {
            break;
        }
        if !within_budget {
            // The walk ends before the keys whose all-time hits are below the n-th range
            // count (fewer hits than it, so beaten): bound what is left before going on.
            let floor = if found.len() >= n {
                found[n - 1].hits
            } else {
                1
            };
            let (keys, cost) = ahead(conn, report, view, walked, floor, &buckets, hidden)?;
            if keys > KEYS_BUDGET || spent + cost > BUDGET {
                return Ok(None);
            }
            within_budget = true;
        }
        step *= 2;
    }
    finish(conn, scope, report, view, range, found, &page).map(Some)
}

/// What the caller asked of a walk: the page `[offset, offset + limit)` of the rows, whether to
/// count them all, and the keys left out.
struct Page<'a> {
    limit: i64,
    offset: i64,
    count: bool,
    hidden: &'a [String],
}

/// The page of the rows a walk found (the first `offset + limit` and their ties), with the
/// report's row count if asked for.
fn finish(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    view: &str,
    range: &TimeRange,
    found: Vec<ReportRow>,
    page: &Page,
) -> QueryResult<(Vec<ReportRow>, i64)> {
    let (from, to) = range.ends();
    let (limit, offset, hidden) = (page.limit, page.offset, page.hidden);
    // Counted once the walk has its rows (a walk that declines sums the buckets with the count,
    // so counting first would be thrown away): for a range open at its end, the keys last seen
    // in it; else the keys outside the range read from their few hits, else the keys in the
    // range's buckets.
    let total = match (page.count, range.to) {
        (false, _) => None,
        (true, None) => Some(total_since(conn, report, view, from, hidden)?),
        (true, Some(_)) => {
            match total_by_complement(conn, scope, report, view, from, to, hidden)? {
                Some(total) => Some(total),
                None => Some(count_from_buckets(
                    conn, scope, report, view, range, hidden,
                )?),
            }
        }
    };
    let rows = ordered(conn, found, limit, offset, total)?;
    let total = total.unwrap_or(rows.len() as i64);
    Ok((rows, total))
}

/// The deepest a day's leaders are read (keys a touched day); deeper, the day walk declines.
const DAY_DEPTH: usize = 1_024;
/// The most UTC days a range may touch for the day walk.
const DAY_WALK_DAYS: usize = 8;
/// The most keys the day walk counts in the range before it declines.
const DAY_COUNTED: usize = 300;

/// The top rows of a range touching up to [`DAY_WALK_DAYS`] UTC days by the threshold algorithm
/// over those days: a key's hits in the range are at most the sum of its hits on the days the
/// range touches (the day buckets), so reading each day's leaders
/// (`threat_report_buckets_day_leaders`) to some depth bounds every key not read by the sum of
/// the days' last values read, and a key read on some days by its hits there plus that bound on
/// the others. Keys are counted exactly (from their buckets and the edges' hits) in the order of
/// their bounds until the n-th best count beats every bound left. Exact by construction; fast
/// when a few keys lead the range's days (heavy-tailed hashes), where summing every key's
/// buckets of the range grows with the keys. `(a, b)` is the part of the range the hits span;
/// `None` when the walk would be long (hits spread evenly over keys and days) or the range
/// covers too little of its days for their counts to bound it.
fn day_walk(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    view: &str,
    range: &TimeRange,
    (a, b): Span,
    page: &Page,
) -> QueryResult<Option<(Vec<ReportRow>, i64)>> {
    if a >= b {
        return Ok(None);
    }
    let day = chrono::Duration::microseconds(Grain::Day.micros());
    let first = super::buckets::bucket_start(a, Grain::Day);
    let last = super::buckets::bucket_start(b - chrono::Duration::microseconds(1), Grain::Day);
    if (last - first).num_days() as usize >= DAY_WALK_DAYS {
        return Ok(None);
    }
    let days: Vec<DateTime<Utc>> = std::iter::successors(Some(first), |d| Some(*d + day))
        .take_while(|d| *d <= last)
        .collect();
    // The share of its days' time the range covers: a key's count in it is about that share of
    // its days' sum when its hits are spread over time. Below a quarter (an hour), the days'
    // leaders bound the range too loosely to stop early.
    let covered = (b - a).num_microseconds().unwrap_or(i64::MAX) as f64
        / (days.len() as i64 * Grain::Day.micros()) as f64;
    if covered < 0.25 {
        return Ok(None);
    }
    let n = (page.limit + page.offset).max(1) as usize;
    if n > DAY_COUNTED / 2 {
        return Ok(None);
    }
    let buckets = BucketRanges::of(range.ends());
    let mut counted: HashSet<String> = HashSet::new();
    let mut found: Vec<ReportRow> = Vec::new();
    let mut depth = 64;
    loop {
        let leaders = day_leaders(conn, report, view, &days, depth, page.hidden)?;
        // A day read to its end bounds the keys not read on it by 0.
        let bounds: Vec<i64> = leaders
            .iter()
            .map(|rows| match rows.len() < depth {
                true => 0,
                false => rows.last().map_or(0, |r| r.1),
            })
            .collect();
        let unread: i64 = bounds.iter().sum();
        // Each key read: the bound of a key not read at all, with each day it was read on
        // taking its hits there in place of that day's bound.
        let mut bound_of: HashMap<&str, i64> = HashMap::new();
        for (rows, day_bound) in leaders.iter().zip(&bounds) {
            for (key, hits) in rows {
                *bound_of.entry(key.as_str()).or_insert(unread) += hits - day_bound;
            }
        }
        let mut candidates: Vec<(&str, i64)> = bound_of.into_iter().collect();
        candidates.sort_by_key(|(_, bound)| std::cmp::Reverse(*bound));
        // The n-th count is about the range's share of the n-th key's bound: every key bound
        // above that is likely counted. When that is too many (hits spread evenly over keys and
        // days), summing the buckets is cheaper: decline before counting any.
        let nth_bound = candidates.get(n - 1).map_or(0, |c| c.1);
        let likely = covered * nth_bound as f64;
        if candidates
            .iter()
            .take_while(|c| c.1 as f64 >= likely)
            .count()
            > DAY_COUNTED
        {
            return Ok(None);
        }
        // Worth counting once the n-th key's bound is well above what a key not read may have;
        // else read deeper, or decline.
        if unread > 0 && unread as f64 >= likely {
            if depth >= DAY_DEPTH {
                return Ok(None);
            }
            depth *= 4;
            continue;
        }
        let pending: Vec<(&str, i64)> = candidates
            .into_iter()
            .filter(|(key, _)| !counted.contains(*key))
            .collect();
        let mut next = 0;
        let mut batches = 0;
        loop {
            let nth = (found.len() >= n).then(|| found[n - 1].hits);
            let beaten = |bound: i64| nth.is_some_and(|h| h > bound);
            // The keys not counted yet are beaten when their bounds are below the n-th count
            // (or none is left).
            let rest_beaten = pending.get(next).is_none_or(|(_, bound)| beaten(*bound));
            if rest_beaten && (unread == 0 || beaten(unread)) {
                return finish(conn, scope, report, view, range, found, page).map(Some);
            }
            if rest_beaten {
                break;
            }
            // With n rows found, the keys still to count are at most those bound at or above
            // the n-th count (`pending` is in order of bound): past the budget, decline now
            // rather than after counting up to it (an IP pair's `custom` range spent 20 ms on
            // fifteen batches of twenty before summing its buckets in 7-10).
            if let Some(h) = nth {
                let left = pending[next..].iter().take_while(|c| c.1 >= h).count();
                if counted.len() + left > DAY_COUNTED {
                    return Ok(None);
                }
            }
            // Batches double, so that a long count is a few statements.
            let batch: Vec<String> = pending[next..]
                .iter()
                .take((2 * n).max(16) << batches.min(4))
                .map(|(key, _)| (*key).to_owned())
                .collect();
            batches += 1;
            next += batch.len();
            if counted.len() + batch.len() > DAY_COUNTED {
                return Ok(None);
            }
            counted.extend(batch.iter().cloned());
            found.extend(buckets.in_range(conn, scope, report, view, batch)?);
            keep_best(&mut found, n);
        }
        // Every key read is counted or beaten, but a key not read may still have more.
        if depth >= DAY_DEPTH {
            return Ok(None);
        }
        depth *= 4;
    }
}

/// Sorts the rows found by hits and max score and keeps the `n` best and every row tied with
/// the n-th (its key decides, in SQL).
fn keep_best(found: &mut Vec<ReportRow>, n: usize) {
    found.sort_by_key(|r| std::cmp::Reverse(rank(r.hits, r.max_score)));
    if found.len() > n {
        let nth = rank(found[n - 1].hits, found[n - 1].max_score);
        let keep = found
            .iter()
            .take_while(|r| rank(r.hits, r.max_score) >= nth)
            .count();
        found.truncate(keep);
    }
}

/// The first `depth` keys of each day (hits in the clearance set `view`, the `hidden` keys left
/// out) in order of their hits: per day, `(key, hits)` from the most.
fn day_leaders(
    conn: &mut PgConnection,
    report: Report,
    view: &str,
    days: &[DateTime<Utc>],
    depth: usize,
    hidden: &[String],
) -> QueryResult<Vec<Vec<(String, i64)>>> {
    #[derive(QueryableByName)]
    struct Leader {
        #[diesel(sql_type = Int4)]
        day: i32,
        #[diesel(sql_type = Text)]
        key: String,
        #[diesel(sql_type = Int8)]
        hits: i64,
    }
    let rows: Vec<Leader> = diesel::sql_query(
        "SELECT d.i::int4 AS day, b.key, b.hits::int8 AS hits
         FROM unnest($3::timestamptz[]) WITH ORDINALITY AS d(bucket, i)
         CROSS JOIN LATERAL (
             SELECT b.key, b.hits FROM threat_report_buckets b
             WHERE b.report = $1 AND b.view_id = $2 AND b.grain = 'day' AND b.bucket = d.bucket
               AND b.key <> ALL($5)
             ORDER BY b.hits DESC LIMIT $4
         ) b",
    )
    .bind::<Text, _>(report.slug())
    .bind::<Text, _>(view)
    .bind::<Array<Timestamptz>, _>(days)
    .bind::<Int8, _>(depth as i64)
    .bind::<Array<Text>, _>(hidden)
    .load(conn)?;
    let mut leaders = vec![Vec::new(); days.len()];
    for r in rows {
        leaders[r.day as usize - 1].push((r.key, r.hits));
    }
    for day in &mut leaders {
        day.sort_by_key(|(_, hits)| std::cmp::Reverse(*hits));
    }
    Ok(leaders)
}

/// Whether the n-th best of the rows found (sorted by hits and max score, ties kept) comes
/// before the next key's all-time row in the ranking's order. On a tie of hits and max score
/// the keys decide, compared by the database (its collation orders the ranking).
fn beats_next(
    conn: &mut PgConnection,
    found: &[ReportRow],
    n: usize,
    next: &Ranked,
) -> QueryResult<bool> {
    let (nth, bound) = (
        rank(found[n - 1].hits, found[n - 1].max_score),
        rank(next.hits, next.max_score),
    );
    if nth != bound {
        return Ok(nth > bound);
    }
    #[derive(QueryableByName)]
    struct Before {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        before: bool,
    }
    let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
    let hits: Vec<i64> = found.iter().map(|r| r.hits).collect();
    let max: Vec<i32> = found.iter().map(|r| r.max_score).collect();
    let b: Before = diesel::sql_query(
        "SELECT (SELECT key FROM unnest($1::text[], $2::int8[], $3::int4[]) AS r(key, hits, max_score)
                 ORDER BY hits DESC, max_score DESC, key ASC OFFSET $4 LIMIT 1) < $5 AS before",
    )
    .bind::<Array<Text>, _>(&keys)
    .bind::<Array<Int8>, _>(&hits)
    .bind::<Array<Int4>, _>(&max)
    .bind::<Int8, _>(n as i64 - 1)
    .bind::<Text, _>(&next.key)
    .get_result(conn)?;
    Ok(b.before)
}

/// Some keys' hits, max score and last seen in `[from, to)` (keys without a hit left out).
fn in_range(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    keys: Vec<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Vec<ReportRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    scope
        .query(include_str!("sql/keys_in_range.sql"))
        .sql("key_match", report.key_match())
        .sql("key", "k.key")
        .texts("keys", keys)
        .time("from", Some(from))
        .time("to", Some(to))
        .load(conn)
}

/// How many keys follow the first `walked` of the ranking with at least `floor` hits, and what
/// counting them in the range costs (each capped just past its budget).
fn ahead(
    conn: &mut PgConnection,
    report: Report,
    view: &str,
    walked: i64,
    floor: i64,
    buckets: &BucketRanges,
    hidden: &[String],
) -> QueryResult<(i64, i64)> {
    #[derive(QueryableByName)]
    struct Ahead {
        #[diesel(sql_type = Int8)]
        keys: i64,
        #[diesel(sql_type = Int8)]
        cost: i64,
    }
    let a: Ahead = diesel::sql_query(
        "SELECT count(*)::int8 AS keys, coalesce(sum(least(2 * hits, $6)), 0)::int8 AS cost FROM (
             SELECT v.hits FROM threat_report_views v
             WHERE v.report = $1 AND v.view_id = $2 AND v.hits >= $3 AND v.key <> ALL($7)
             ORDER BY v.hits DESC, v.max_score DESC, v.key ASC LIMIT $4 OFFSET $5) a",
    )
    .bind::<Text, _>(report.slug())
    .bind::<Text, _>(view)
    .bind::<Int4, _>(floor.clamp(1, i32::MAX as i64) as i32)
    .bind::<Int8, _>(KEYS_BUDGET + 1)
    .bind::<Int8, _>(walked)
    .bind::<Int8, _>(buckets.count())
    .bind::<Array<Text>, _>(hidden)
    .get_result(conn)?;
    Ok((a.keys, a.cost))
}

/// The part of `[from, to)` within the stored hits' start times (empty when none is in it): an
/// open end stands for a time far beyond the hits.
fn stored_span(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> QueryResult<Span> {
    let e: super::histogram::Extent = diesel::sql_query(
        "SELECT min(start_time) AS first, max(start_time) AS last FROM threat_hits",
    )
    .get_result(conn)?;
    Ok(match (e.first, e.last) {
        (Some(first), Some(last)) => {
            let (a, b) = (
                from.max(first),
                to.min(last + chrono::Duration::microseconds(1)),
            );
            (a, b.max(a))
        }
        _ => (to, to),
    })
}

/// The whole days and hours of a range (within the stored hits' times) as bucket ranges (the
/// nonempty ones of its [`Plan`]), and its unaligned edges.
struct BucketRanges {
    ranges: Vec<(Grain, Span)>,
    edges: [Span; 2],
}

impl BucketRanges {
    /// The bucket ranges of `[from, to)`. [`BucketRanges::count`] needs a range within the
    /// stored hits' times ([`stored_span`]); [`BucketRanges::in_range`] takes any range, and the
    /// day walk passes the range as asked so that an open end reads its last day's bucket.
    fn of((from, to): Span) -> BucketRanges {
        let plan = Plan::of(from, to);
        let ranges = [
            (Grain::Day, plan.days),
            (Grain::Hour, plan.hours[0]),
            (Grain::Hour, plan.hours[1]),
        ]
        .into_iter()
        .filter(|(_, (a, b))| a < b)
        .collect();
        BucketRanges {
            ranges,
            edges: plan.edges,
        }
    }

    /// The bucket rows a key's count in the range reads at most (its whole days and hours), and
    /// one for the edges.
    fn count(&self) -> i64 {
        let buckets: i64 = self
            .ranges
            .iter()
            .map(|(grain, (a, b))| {
                (*b - *a).num_microseconds().unwrap_or(i64::MAX) / grain.micros()
            })
            .sum();
        buckets + 1
    }

    /// What counting a key with `hits` visible hits costs: its hits (about twice as many index
    /// entries for an analyst cleared for half the groups), or its bucket rows if fewer.
    fn cost(&self, hits: i64) -> i64 {
        (2 * hits).min(self.count())
    }

    /// Some keys' hits, max score and last seen in the range from their buckets.
    fn in_range(
        &self,
        conn: &mut PgConnection,
        scope: &AnalystScope,
        report: Report,
        view: &str,
        keys: Vec<String>,
    ) -> QueryResult<Vec<ReportRow>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        scope
            .query(include_str!("sql/keys_in_range_by_buckets.sql"))
            .sql("key_column", report.key_sql())
            .texts("keys", keys)
            .text("report", report.slug())
            .text("view", view)
            .texts(
                "grains",
                self.ranges
                    .iter()
                    .map(|(g, _)| g.as_str().to_owned())
                    .collect(),
            )
            .times("los", self.ranges.iter().map(|(_, (a, _))| *a).collect())
            .times("his", self.ranges.iter().map(|(_, (_, b))| *b).collect())
            .time("e1_from", Some(self.edges[0].0))
            .time("e1_to", Some(self.edges[0].1))
            .time("e2_from", Some(self.edges[1].0))
            .time("e2_to", Some(self.edges[1].1))
            .load(conn)
    }
}

/// The page of the walk's rows in the ranking's order, keys compared by the database.
fn ordered(
    conn: &mut PgConnection,
    found: Vec<ReportRow>,
    limit: i64,
    offset: i64,
    total: Option<i64>,
) -> QueryResult<Vec<ReportRow>> {
    if found.is_empty() {
        return Ok(found);
    }
    let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
    let hits: Vec<i64> = found.iter().map(|r| r.hits).collect();
    let max: Vec<i32> = found.iter().map(|r| r.max_score).collect();
    let seen: Vec<DateTime<Utc>> = found.iter().map(|r| r.last_seen).collect();
    diesel::sql_query(
        "SELECT key, hits, max_score, last_seen, '' AS signatures, '' AS filename, '' AS file_type,
                $5::int8 AS total
         FROM unnest($1::text[], $2::int8[], $3::int4[], $4::timestamptz[]) AS r(key, hits, max_score, last_seen)
         ORDER BY hits DESC, max_score DESC, key ASC LIMIT $6 OFFSET $7",
    )
    .bind::<Array<Text>, _>(&keys)
    .bind::<Array<Int8>, _>(&hits)
    .bind::<Array<Int4>, _>(&max)
    .bind::<Array<Timestamptz>, _>(&seen)
    .bind::<Int8, _>(total.unwrap_or(0))
    .bind::<Int8, _>(limit)
    .bind::<Int8, _>(offset)
    .load(conn)
}

/// The report's row count over a range open at its end, `[from, ..)`: the keys of the all-time
/// ranking (less the `hidden` ones) whose last seen is in it, one range of its last-seen index
/// (`threat_report_views_last_seen`); the hidden keys are probed, as few as the viewer hides.
fn total_since(
    conn: &mut PgConnection,
    report: Report,
    view: &str,
    from: DateTime<Utc>,
    hidden: &[String],
) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT (SELECT count(*) FROM threat_report_views
                  WHERE report = $1 AND view_id = $2 AND last_seen >= $3 AND hits > 0)
              - (SELECT count(*) FROM threat_report_views
                  WHERE report = $1 AND view_id = $2 AND key = ANY($4) AND last_seen >= $3 AND hits > 0)
              AS n",
    )
    .bind::<Text, _>(report.slug())
    .bind::<Text, _>(view)
    .bind::<Timestamptz, _>(from)
    .bind::<Array<Text>, _>(hidden)
    .get_result::<Count>(conn)
    .map(|c| c.n)
}

/// The report's row count over `[from, to)`: the keys of the all-time ranking (less the
/// `hidden` ones) less those whose visible hits all lie outside the range, when few hits do
/// (`None` otherwise).
fn total_by_complement(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    view: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hidden: &[String],
) -> QueryResult<Option<i64>> {
    let outside: Count = diesel::sql_query(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM threat_hits WHERE start_time < $1 LIMIT $3) a)
              + (SELECT count(*) FROM (SELECT 1 FROM threat_hits WHERE start_time >= $2 LIMIT $3) b) AS n",
    )
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Int8, _>(COMPLEMENT_BUDGET + 1)
    .get_result(conn)?;
    if outside.n > COMPLEMENT_BUDGET {
        return Ok(None);
    }
    let all: Count = diesel::sql_query(
        "SELECT count(*)::int8 AS n FROM threat_report_views
         WHERE report = $1 AND view_id = $2 AND hits > 0 AND key <> ALL($3)",
    )
    .bind::<Text, _>(report.slug())
    .bind::<Text, _>(view)
    .bind::<Array<Text>, _>(hidden)
    .get_result(conn)?;
    let absent: Count = scope
        .query(include_str!("sql/keys_absent_from_range.sql"))
        .sql("key_column", report.key_sql())
        .text("report", report.slug())
        .text("view", view)
        .time("from", Some(from))
        .time("to", Some(to))
        .texts("hidden", hidden.to_vec())
        .get_result(conn)?;
    Ok(Some(all.n - absent.n))
}

/// How many keys of `report` have a visible hit in `range` for the clearance set `view`, less the
/// `hidden` ones, from its keys' hour strings and the hits of its unaligned edges
/// (`sql/keys_in_range_count.sql`): the row count of `top_from_buckets` without its sums.
pub(super) fn count_from_buckets(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    view: &str,
    range: &TimeRange,
    hidden: &[String],
) -> QueryResult<i64> {
    let query = scope
        .query(include_str!("sql/keys_in_range_count.sql"))
        .text("report", report.slug())
        .text("view", view)
        .sql("key_column", report.key_sql());
    super::queries::with_bucket_plan(query, range)
        .texts("hidden", hidden.to_vec())
        .get_result::<Count>(conn)
        .map(|c| c.n)
}
