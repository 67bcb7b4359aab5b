//! The histogram of visible hits over time above every report (issue 20): bars of 5 or 15
//! minutes, an hour or whole days (in the viewer's time zone) across the report's range, each
//! counting the hits of sessions started in it that the viewer may see.
//!
//! Hour and day bars add up the rollups the reports keep (`threat_report_buckets`, of the
//! viewer's clearance set): any one report's keys split the hits, so the protocol report's
//! buckets summed over its few keys are all the hits of a bucket. A bar is read like a report's
//! range ([`Plan`]): whole days and hours from the rollups, the unaligned ends from the hits, so
//! the first and last bar are exact at the range's ends and the cost follows the number of bars,
//! not the hits. Minute bars (ranges up to 6 hours), a [`HitFilter`], a clearance set nobody
//! holds, or a signature move the rollups have not applied yet read the hits instead.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::sql_types::{Array, Int4, Int8, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::buckets::{bucket_start, Grain, Plan};
use super::filters::Filters;
use super::queries::{maintained_view, Report, ReportsLag, TimeRange};
use super::scope::{AnalystScope, ScopedQuery};

/// The report whose rollups the bars sum: every hit has one protocol, and there are few.
const COUNTED_REPORT: &str = "protocol";

/// A condition on the hits `h` (with its own named parameters), for a histogram of part of them
/// (one key of a report; later the report filters). Filtered histograms read the hits.
pub struct HitFilter {
    condition: &'static str,
    bind: Box<dyn Fn(ScopedQuery) -> ScopedQuery + Send>,
}

/// `:key_match` of a filter's condition: a report row's key, or every hit.
fn bind_key(q: ScopedQuery, key: &Option<(Report, String)>) -> ScopedQuery {
    match key {
        Some((report, key)) => q
            .sql("key_match", report.key_match())
            .text("key", key.clone()),
        None => q.sql("key_match", "TRUE"),
    }
}

impl HitFilter {
    /// `condition` over `threat_hits h`, its parameters bound by `bind`.
    pub fn new(
        condition: &'static str,
        bind: impl Fn(ScopedQuery) -> ScopedQuery + Send + 'static,
    ) -> HitFilter {
        HitFilter {
            condition,
            bind: Box::new(bind),
        }
    }

    /// The hits behind one row of a report.
    pub fn key(report: Report, key: String) -> HitFilter {
        HitFilter::new(report.key_match(), move |q| q.text("key", key.clone()))
    }

    /// The hits of a report's row (if any) that pass the report filters (`?md5=&ip=...`); `None`
    /// when neither narrows anything (the bars then sum the rollups).
    pub fn filtered(key: Option<(Report, String)>, filters: Filters) -> Option<HitFilter> {
        match (key, filters.is_empty()) {
            (None, true) => None,
            (Some((report, key)), true) => Some(HitFilter::key(report, key)),
            (key, false) => Some(HitFilter::new("(:key_match) AND :filters", move |q| {
                filters.hit_filters(bind_key(q, &key))
            })),
        }
    }

    /// [`HitFilter::filtered`] without the hits of the `hidden` hashes (the hash report with
    /// "hide triaged" on): the bars and the total count the hits of the rows shown.
    pub fn shown(
        key: Option<(Report, String)>,
        filters: Filters,
        hidden: Vec<String>,
    ) -> Option<HitFilter> {
        if hidden.is_empty() {
            return HitFilter::filtered(key, filters);
        }
        Some(HitFilter::new(
            "(:key_match) AND :filters AND h.md5 <> ALL(:hidden_md5::text[])",
            move |q| {
                filters
                    .hit_filters(bind_key(q, &key))
                    .texts("hidden_md5", hidden.clone())
            },
        ))
    }

    fn apply(filter: Option<&HitFilter>, q: ScopedQuery) -> ScopedQuery {
        match filter {
            Some(f) => (f.bind)(q.sql("filter", f.condition)),
            None => q.sql("filter", "TRUE"),
        }
    }
}

/// The width of a bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Minutes(i64),
    Hour,
    /// Whole days of the viewer's time zone.
    Days(i64),
}

impl Step {
    /// The bar for a span: minutes up to 6 hours, hours up to 3 days, then days (several a bar
    /// beyond 62 days, so that a phone still shows them).
    pub fn of(span: Duration) -> Step {
        if span <= Duration::hours(2) {
            Step::Minutes(5)
        } else if span <= Duration::hours(6) {
            Step::Minutes(15)
        } else if span <= Duration::hours(72) {
            Step::Hour
        } else {
            let days = (span.num_seconds() + 86_399) / 86_400;
            Step::Days(((days + 61) / 62).max(1))
        }
    }

    /// "5 minutes", "hour", "day", "3 days": what a bar is.
    pub fn name(self) -> String {
        match self {
            Step::Minutes(m) => format!("{m} minutes"),
            Step::Hour => "hour".into(),
            Step::Days(1) => "day".into(),
            Step::Days(d) => format!("{d} days"),
        }
    }
}

/// One bar: the visible hits of sessions started in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub hits: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Histogram {
    pub step: Step,
    pub bars: Vec<Bar>,
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl Histogram {
    pub fn total(&self) -> i64 {
        self.bars.iter().map(|b| b.hits).sum()
    }
}

/// Midnight starting `date` in `zone` (the first moment of the day where a change of clocks
/// skips midnight).
fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight is a time");
    let local = match zone.from_local_datetime(&midnight) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => zone
            .from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest(),
    };
    local.map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// The bars' edges covering `[from, to)`: aligned to the step (minutes and hours in UTC, days at
/// the zone's midnights), the first and last cut at the range's ends.
pub fn edges(from: DateTime<Utc>, to: DateTime<Utc>, step: Step, zone: Tz) -> Vec<DateTime<Utc>> {
    let mut out = vec![from];
    match step {
        Step::Minutes(m) => {
            let us = m * 60_000_000;
            let mut t = from.timestamp_micros().div_euclid(us) * us + us;
            while t < to.timestamp_micros() {
                out.push(DateTime::from_timestamp_micros(t).expect("a time in range"));
                t += us;
            }
        }
        Step::Hour => {
            let mut t = bucket_start(from, Grain::Hour) + Duration::hours(1);
            while t < to {
                out.push(t);
                t += Duration::hours(1);
            }
        }
        Step::Days(k) => {
            let mut day = from.with_timezone(&zone).date_naive();
            while local_midnight(day, zone) > from {
                day = day.pred_opt().expect("a day in range");
            }
            loop {
                day += Duration::days(k);
                let t = local_midnight(day, zone);
                if t >= to {
                    break;
                }
                out.push(t);
            }
        }
    }
    out.push(to);
    out
}

/// The first and last time of what a query spans (`NULL` when it is empty).
#[derive(QueryableByName)]
pub(super) struct Extent {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(super) first: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub(super) last: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Int8)]
    hits: i64,
}

#[derive(QueryableByName)]
struct Slot {
    #[diesel(sql_type = Int4)]
    slot: i32,
    #[diesel(sql_type = Int8)]
    hits: i64,
}

/// The histogram of the hits `scope` sees in `range` (and `filter` keeps): `None` when there is
/// nothing to draw (no visible hits at all). An open start begins at the first visible hit's
/// hour; an open end stops at the end of the last one's hour, or for a range that has a start
/// (the presets) now, or just past a session a sensor dated later.
pub fn histogram(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    range: &TimeRange,
    zone: Tz,
    now: DateTime<Utc>,
    lag: Option<&ReportsLag>,
    filter: Option<&HitFilter>,
) -> QueryResult<Option<Histogram>> {
    if !scope.sees_all() && scope.groups().is_empty() {
        return Ok(None);
    }
    let current = lag.is_none_or(|l| !l.signature_moves_pending);
    let view = match (current, filter) {
        (true, None) => maintained_view(conn, scope)?,
        _ => None,
    };
    // The visible hits' first and last hour: where an open range begins and ends, and beyond
    // which no bucket needs reading.
    let known = match (range.from, range.to, &view) {
        (Some(from), Some(to), None) => Some((from, to)),
        _ => extent(conn, scope, view.as_deref(), range, filter)?,
    };
    let Some((first, last)) = known else {
        return Ok(None);
    };
    let from = range.from.unwrap_or(first);
    let to = match (range.from, range.to) {
        (_, Some(to)) => to,
        // A preset: to now, or past the latest session a sensor dated ahead.
        (Some(_), None) => ahead(conn, scope, now, filter)?.map_or(now, |t| t.max(now)),
        (None, None) => last,
    };
    if from >= to {
        return Ok(None);
    }
    let step = Step::of(to - from);
    let edges = edges(from, to, step, zone);
    let counts = match (&view, step) {
        (Some(view), Step::Hour | Step::Days(_)) => {
            from_rollups(conn, scope, view, &edges, (first, last))?
        }
        _ => from_hits(conn, scope, &edges, filter)?,
    };
    Ok(Some(Histogram {
        step,
        bars: bars_of(&edges, |i| counts[i]),
    }))
}

fn bars_of(edges: &[DateTime<Utc>], hits: impl Fn(usize) -> i64) -> Vec<Bar> {
    edges
        .windows(2)
        .enumerate()
        .map(|(i, w)| Bar {
            from: w[0],
            to: w[1],
            hits: hits(i),
        })
        .collect()
}

/// The start of the first visible hit's hour and the end of the last's: from the hour rollups
/// when there are any (two index probes), else from the hits in the range.
fn extent(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    view: Option<&str>,
    range: &TimeRange,
    filter: Option<&HitFilter>,
) -> QueryResult<Option<(DateTime<Utc>, DateTime<Utc>)>> {
    let e: Extent = match view {
        Some(view) => diesel::sql_query(
            "SELECT min(b.bucket) AS first, max(b.bucket) AS last
             FROM threat_report_buckets b
             WHERE b.report = $1 AND b.view_id = $2 AND b.grain = 'hour' AND b.hits > 0",
        )
        .bind::<Text, _>(COUNTED_REPORT)
        .bind::<Text, _>(view)
        .get_result(conn)?,
        None => HitFilter::apply(
            filter,
            scope.query(
                "SELECT min(h.start_time) AS first, max(h.start_time) AS last
                 FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
                 WHERE h.start_time >= :since AND h.start_time < :until AND :filter",
            ),
        )
        .time("since", Some(range.ends().0))
        .time("until", Some(range.ends().1))
        .get_result(conn)?,
    };
    let hour = |t| bucket_start(t, Grain::Hour);
    Ok(e.first
        .zip(e.last)
        .map(|(first, last)| (hour(first), hour(last) + Duration::hours(1))))
}

/// Just past the latest visible hit of a session started after `now` (a sensor's clock ahead),
/// if any: by the start-time index, which holds nothing there as a rule.
fn ahead(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    now: DateTime<Utc>,
    filter: Option<&HitFilter>,
) -> QueryResult<Option<DateTime<Utc>>> {
    let e: Extent = HitFilter::apply(
        filter,
        scope.query(
            "SELECT NULL::timestamptz AS first, max(h.start_time) + interval '1 microsecond' AS last
             FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
             WHERE h.start_time >= :now AND :filter",
        ),
    )
    .time("now", Some(now))
    .get_result(conn)?;
    Ok(e.last)
}

/// Each bar's hits from the visible hits, one scan of the range's hits.
fn from_hits(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    edges: &[DateTime<Utc>],
    filter: Option<&HitFilter>,
) -> QueryResult<Vec<i64>> {
    let (from, to) = (edges[0], edges[edges.len() - 1]);
    let slots: Vec<Slot> = HitFilter::apply(
        filter,
        scope.query(
            "SELECT width_bucket(h.start_time, :edges) AS slot, count(*)::int8 AS hits
             FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
             WHERE h.start_time >= :from AND h.start_time < :to AND :filter
             GROUP BY 1",
        ),
    )
    .times("edges", edges.to_vec())
    .time("from", Some(from))
    .time("to", Some(to))
    .load(conn)?;
    let mut counts = vec![0; edges.len() - 1];
    for s in slots {
        // `width_bucket` numbers [edges[i-1], edges[i]) as i.
        if let Some(c) = (s.slot as usize)
            .checked_sub(1)
            .and_then(|i| counts.get_mut(i))
        {
            *c += s.hits;
        }
    }
    Ok(counts)
}

/// Each bar's hits as a report's range reads them: its whole days and hours from the rollups of
/// the scope's clearance set (`view`), its unaligned ends from the visible hits. Buckets outside
/// `[first, last)` (the visible hits' hours) hold nothing and are not asked for, so a range of
/// centuries costs what its hits' days cost.
fn from_rollups(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    view: &str,
    edges: &[DateTime<Utc>],
    (first, last): (DateTime<Utc>, DateTime<Utc>),
) -> QueryResult<Vec<i64>> {
    let plans: Vec<Plan> = edges.windows(2).map(|w| Plan::of(w[0], w[1])).collect();
    let (mut days, mut hours, mut ends) = (Vec::new(), Vec::new(), (Vec::new(), Vec::new()));
    let each = |(a, b): (DateTime<Utc>, DateTime<Utc>), grain: Grain, into: &mut Vec<_>| {
        let mut t = a.max(bucket_start(first, grain));
        while t < b && t < last {
            into.push(t);
            t += Duration::microseconds(grain.micros());
        }
    };
    for p in &plans {
        each(p.days, Grain::Day, &mut days);
        for h in p.hours {
            each(h, Grain::Hour, &mut hours);
        }
        for (a, b) in p.edges.into_iter().filter(|(a, b)| a < b) {
            ends.0.push(a);
            ends.1.push(b);
        }
    }
    let buckets: Vec<Count> = diesel::sql_query(
        "SELECT b.bucket AS at, sum(b.hits)::int8 AS hits FROM threat_report_buckets b
         WHERE b.report = $1 AND b.view_id = $2 AND b.grain = 'day' AND b.bucket = ANY($3)
         GROUP BY b.bucket
         UNION ALL
         SELECT b.bucket, sum(b.hits)::int8 FROM threat_report_buckets b
         WHERE b.report = $1 AND b.view_id = $2 AND b.grain = 'hour' AND b.bucket = ANY($4)
         GROUP BY b.bucket",
    )
    .bind::<Text, _>(COUNTED_REPORT)
    .bind::<Text, _>(view)
    .bind::<Array<Timestamptz>, _>(&days)
    .bind::<Array<Timestamptz>, _>(&hours)
    .load(conn)?;
    let edge_hits: Vec<Count> = if ends.0.is_empty() {
        Vec::new()
    } else {
        scope
            .query(
                "SELECT e.f AS at, count(*)::int8 AS hits
                 FROM unnest(:e_from::timestamptz[], :e_to::timestamptz[]) AS e(f, t)
                 JOIN threat_hits h ON h.start_time >= e.f AND h.start_time < e.t
                 JOIN threat_signatures s ON s.name = h.signature AND :visible
                 GROUP BY e.f",
            )
            .times("e_from", ends.0)
            .times("e_to", ends.1)
            .load(conn)?
    };
    // Every bucket and edge lies in exactly one bar: find it by its start.
    let mut counts = vec![0; plans.len()];
    for c in buckets.iter().chain(&edge_hits) {
        let i = edges.partition_point(|e| *e <= c.at).saturating_sub(1);
        if let Some(n) = counts.get_mut(i) {
            *n += c.hits;
        }
    }
    Ok(counts)
}

/// The chart's drawing units (a `viewBox`; the SVG scales to the page's width).
const WIDTH: i64 = 480;
const HEIGHT: i64 = 200;
const LEFT: i64 = 8;
const RIGHT: i64 = 8;
const TOP: i64 = 26;
const BOTTOM: i64 = 30;

/// A bar as drawn: its column (the whole column is the link, so a narrow bar can be tapped),
/// the bar itself, the range it zooms into, and its interval and count in words.
#[derive(Debug, Serialize)]
pub struct DrawnBar {
    pub x: i64,
    /// The column's width; the bar's is a unit less where that leaves a gap.
    pub column: i64,
    pub width: i64,
    pub y: i64,
    pub height: i64,
    pub hits: i64,
    pub href: String,
    pub label: String,
    /// `from` and `to` as links and tests read them (RFC 3339, UTC).
    pub from: String,
    pub to: String,
}

/// A time on the axis.
#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: i64,
    pub label: String,
}

/// The histogram as the partial `threats/_histogram.html` draws it.
#[derive(Debug, Serialize)]
pub struct Chart {
    pub step: String,
    pub total: i64,
    pub max: i64,
    pub bars: Vec<DrawnBar>,
    pub ticks: Vec<Tick>,
    /// The chart in a sentence (its accessible name).
    pub summary: String,
    pub width: i64,
    pub height: i64,
    pub base_y: i64,
    pub top_y: i64,
    pub label_y: i64,
}

/// RFC 3339 in UTC, to the second or as precise as `t` is (a preset's start), so a zoom is exact.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A bar's interval in the viewer's zone: "5 Dec 2026, 14:00–15:00" or "5 Dec–7 Dec 2026".
fn interval(bar: &Bar, step: Step, zone: Tz) -> String {
    let (a, b) = (bar.from.with_timezone(&zone), bar.to.with_timezone(&zone));
    match step {
        Step::Days(_) => {
            let last = (b - Duration::seconds(1)).format("%-d %b %Y");
            if (b - a) <= Duration::days(1)
                && a.date_naive() == (b - Duration::seconds(1)).date_naive()
            {
                format!("{}", a.format("%-d %b %Y"))
            } else {
                format!("{}–{last}", a.format("%-d %b"))
            }
        }
        _ => format!("{}–{}", a.format("%-d %b %Y, %H:%M"), b.format("%H:%M")),
    }
}

/// Draw `h`; `zoom(from, to)` is the link of the same page over a bar's range.
pub fn chart(h: &Histogram, zone: Tz, zoom: impl Fn(&str, &str) -> String) -> Chart {
    let n = h.bars.len().max(1) as i64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = h.bars.iter().map(|b| b.hits).max().unwrap_or(0);
    let base_y = HEIGHT - BOTTOM;
    let bars = h
        .bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let i = i as i64;
            let x = LEFT + i * plot_w / n;
            let width = LEFT + (i + 1) * plot_w / n - x;
            let height = if b.hits == 0 {
                0
            } else {
                (b.hits * plot_h / max.max(1)).max(2)
            };
            let (from, to) = (rfc3339(b.from), rfc3339(b.to));
            DrawnBar {
                x,
                column: width,
                width: if width >= 3 { width - 1 } else { width },
                y: base_y - height,
                height,
                hits: b.hits,
                href: zoom(&from, &to),
                label: interval(b, h.step, zone),
                from,
                to,
            }
        })
        .collect::<Vec<_>>();
    // Three or four times along the axis, at the start of evenly spaced bars.
    let (count, format) = match h.step {
        Step::Days(_) => (4, "%-d %b"),
        _ => (3, "%-d %b %H:%M"),
    };
    let count = count.min(n);
    let ticks = (0..count)
        .map(|k| {
            let i = (k * n / count) as usize;
            let t = h.bars[i].from.with_timezone(&zone);
            Tick {
                x: bars[i].x,
                label: t.format(format).to_string(),
            }
        })
        .collect();
    let (first, last) = (h.bars.first().map(|b| b.from), h.bars.last().map(|b| b.to));
    let summary = match (first, last) {
        (Some(a), Some(b)) => format!(
            "Visible hits per {} from {} to {}: {} in all, at most {} in a bar",
            h.step.name(),
            a.with_timezone(&zone).format("%-d %b %Y, %H:%M"),
            b.with_timezone(&zone).format("%-d %b %Y, %H:%M %Z"),
            crate::web::format::count(h.total()),
            crate::web::format::count(max),
        ),
        _ => String::new(),
    };
    Chart {
        step: h.step.name(),
        total: h.total(),
        max,
        bars,
        ticks,
        summary,
        width: WIDTH,
        height: HEIGHT,
        base_y,
        top_y: TOP,
        label_y: HEIGHT - 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_bar_follows_the_span() {
        assert_eq!(Step::of(Duration::hours(1)), Step::Minutes(5));
        assert_eq!(Step::of(Duration::hours(5)), Step::Minutes(15));
        assert_eq!(Step::of(Duration::hours(24)), Step::Hour);
        assert_eq!(Step::of(Duration::hours(72)), Step::Hour);
        assert_eq!(Step::of(Duration::days(7)), Step::Days(1));
        assert_eq!(Step::of(Duration::days(62)), Step::Days(1));
        assert_eq!(Step::of(Duration::days(365)), Step::Days(6));
    }

    #[test]
    fn bars_are_cut_at_the_range_ends_and_days_start_at_local_midnight() {
        let e = edges(
            t("2026-12-01T10:15:00Z"),
            t("2026-12-01T13:30:00Z"),
            Step::Hour,
            Tz::UTC,
        );
        assert_eq!(
            e,
            vec![
                t("2026-12-01T10:15:00Z"),
                t("2026-12-01T11:00:00Z"),
                t("2026-12-01T12:00:00Z"),
                t("2026-12-01T13:00:00Z"),
                t("2026-12-01T13:30:00Z"),
            ]
        );
        let e = edges(
            t("2026-12-01T10:15:00Z"),
            t("2026-12-03T06:00:00Z"),
            Step::Days(1),
            chrono_tz::America::New_York,
        );
        assert_eq!(
            e,
            vec![
                t("2026-12-01T10:15:00Z"),
                t("2026-12-02T05:00:00Z"),
                t("2026-12-03T05:00:00Z"),
                t("2026-12-03T06:00:00Z"),
            ]
        );
        // A range ending on a boundary has no empty last bar.
        let e = edges(
            t("2026-12-01T10:00:00Z"),
            t("2026-12-01T10:10:00Z"),
            Step::Minutes(5),
            Tz::UTC,
        );
        assert_eq!(e.len(), 3);
    }
}
