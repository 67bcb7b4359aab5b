//! Reads of the threat-reports context. Every query of hits takes the viewer's
//! [`AnalystScope`] and keeps only hits of signatures whose group the viewer holds (admins see
//! all): the join with the small `threat_signatures` table happens at query time, so moving a
//! signature moves its hits. The longer SQL is in `sql/`.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Int4, Int8, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::error::ThreatsError;
use super::filters::Filters;
use super::scope::AnalystScope;
use crate::accounts::{Role, Viewer};
use crate::schema::{
    sensors, threat_clearances, threat_files, threat_sessions, threat_signatures, users,
};
use crate::web::paging::{Column, ListSpec, PageParams, Paging};

/// The admins' pages check the role again where they read.
fn admins_only(viewer: &Viewer) -> Result<(), ThreatsError> {
    viewer
        .require(Role::Admin)
        .map_err(|e| ThreatsError::Forbidden(e.to_string()))
}

/// The report a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Report {
    Hash,
    FileType,
    IpPair,
    Protocol,
}

impl Report {
    pub fn parse(slug: &str) -> Option<Report> {
        Some(match slug {
            "hash" => Report::Hash,
            "file-type" => Report::FileType,
            "ip-pair" => Report::IpPair,
            "protocol" => Report::Protocol,
            _ => return None,
        })
    }
    pub fn slug(self) -> &'static str {
        match self {
            Report::Hash => "hash",
            Report::FileType => "file-type",
            Report::IpPair => "ip-pair",
            Report::Protocol => "protocol",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Report::Hash => "Top threats by file hash",
            Report::FileType => "Top threats by file type",
            Report::IpPair => "Top threats by source/destination IP pair",
            Report::Protocol => "Top threats by protocol",
        }
    }
    /// The grouping expression over `threat_hits h`.
    pub(super) fn key_sql(self) -> &'static str {
        match self {
            Report::Hash => "h.md5",
            Report::FileType => "h.file_type",
            Report::IpPair => "h.source_ip || ' ' || h.destination_ip",
            Report::Protocol => "h.protocol",
        }
    }
    /// Hits of one key (`:key`, a value or a column).
    pub(super) fn key_match(self) -> &'static str {
        match self {
            Report::Hash => "h.md5 = :key",
            Report::FileType => "h.file_type = :key",
            Report::IpPair => {
                "h.source_ip = split_part(:key, ' ', 1) AND h.destination_ip = split_part(:key, ' ', 2)"
            }
            Report::Protocol => "h.protocol = :key",
        }
    }
}

/// A time window on the session's start time (`?window=24h`; all when not given).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Window {
    Hour,
    Day,
    Week,
    Month,
    #[default]
    All,
}

impl TryFrom<String> for Window {
    type Error = String;
    fn try_from(raw: String) -> Result<Window, String> {
        Ok(match raw.as_str() {
            "1h" => Window::Hour,
            "24h" => Window::Day,
            "7d" => Window::Week,
            "30d" => Window::Month,
            "all" | "" => Window::All,
            other => {
                return Err(format!(
                    "window {:?} is not one of 1h, 24h, 7d, 30d, all",
                    other.chars().take(20).collect::<String>()
                ))
            }
        })
    }
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
            Window::All => "all",
        }
    }
    pub fn cutoff(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Window::Hour => Some(now - Duration::hours(1)),
            Window::Day => Some(now - Duration::hours(24)),
            Window::Week => Some(now - Duration::days(7)),
            Window::Month => Some(now - Duration::days(30)),
            Window::All => None,
        }
    }
}

impl Window {
    /// The range of the last hour, day, week or month (open at its end: sessions a sensor dates
    /// ahead count too), or all time.
    pub fn range(self, now: DateTime<Utc>) -> TimeRange {
        TimeRange {
            from: self.cutoff(now),
            to: None,
        }
    }
}

/// A range of the sessions' start time: `from` inclusive, `to` exclusive, `None` an open end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn is_all(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }
    /// The ends, open ones as times beyond any stored one.
    pub fn ends(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            self.from.unwrap_or_else(super::buckets::earliest),
            self.to.unwrap_or_else(super::buckets::latest),
        )
    }
}

#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct ReportRow {
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = Int8)]
    pub hits: i64,
    #[diesel(sql_type = Int4)]
    pub max_score: i32,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub signatures: String,
    /// For the hash report: a filename and the file type of a visible hit.
    #[diesel(sql_type = Text)]
    pub filename: String,
    #[diesel(sql_type = Text)]
    pub file_type: String,
    /// How many rows the whole report has (every page).
    #[diesel(sql_type = Int8)]
    pub total: i64,
}

/// The sortable columns of every report, the ranking first (DESIGN section 4's order).
pub static REPORT_COLUMNS: [Column; 4] = [
    Column {
        key: "hits",
        desc: "hits DESC, max_score DESC, key ASC",
        asc: "hits ASC, max_score ASC, key ASC",
        desc_first: true,
    },
    Column {
        key: "max_score",
        desc: "max_score DESC, hits DESC, key ASC",
        asc: "max_score ASC, hits ASC, key ASC",
        desc_first: true,
    },
    Column {
        key: "last_seen",
        desc: "last_seen DESC, key ASC",
        asc: "last_seen ASC, key ASC",
        desc_first: true,
    },
    Column {
        key: "key",
        desc: "key DESC",
        asc: "key ASC",
        desc_first: false,
    },
];

/// One page of a report and the number of rows in all.
#[derive(Debug, Clone, Serialize)]
pub struct ReportPage {
    pub rows: Vec<ReportRow>,
    pub total: i64,
}

/// One page of a report as the report's page first shows it ([`report_rows`]): its row count
/// when it came with the rows, else `None` and whether rows follow this page (the count comes
/// after, from [`report_page`]).
#[derive(Debug, Clone, Serialize)]
pub struct ReportRows {
    pub rows: Vec<ReportRow>,
    pub total: Option<i64>,
    pub more: bool,
}

/// The top `limit` rows of a report (one more is fetched to tell whether there are more).
/// With `window = all` it sums the pre-aggregated rows; a window reads the hits of sessions
/// started in it (by the start-time index).
pub fn top(
    conn: &mut PgConnection,
    viewer: &Viewer,
    report: Report,
    window: Window,
    limit: i64,
) -> Result<Vec<ReportRow>, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    Ok(top_in_scope(conn, &scope, report, window, limit)?)
}

/// [`top`] over any time range.
pub fn top_in_range(
    conn: &mut PgConnection,
    viewer: &Viewer,
    report: Report,
    range: &TimeRange,
    limit: i64,
) -> Result<Vec<ReportRow>, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    Ok(top_behind(conn, &scope, report, range, limit, None)?)
}

pub fn top_in_scope(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    window: Window,
    limit: i64,
) -> QueryResult<Vec<ReportRow>> {
    top_behind(conn, scope, report, &window.range(Utc::now()), limit, None)
}

/// [`top_in_scope`] with the reports delayed `lag` behind the log: while a signature move waits
/// to be applied, the rankings still count the signature in its old group, so the report is
/// computed from the hits (scoped by the signatures' groups now) instead.
pub fn top_behind(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    limit: i64,
    lag: Option<&ReportsLag>,
) -> QueryResult<Vec<ReportRow>> {
    let ranking = ListSpec {
        columns: &REPORT_COLUMNS,
        per_page: limit,
    };
    let page = Slice {
        order: Paging::parse(ranking, &PageParams::default()).order_sql(),
        limit,
        offset: 0,
        count: false,
        hidden: Vec::new(),
    };
    let unfiltered = Filters::default();
    Ok(read_report(
        conn,
        scope,
        report,
        range,
        &unfiltered,
        &page,
        true,
        lag,
        false,
    )?
    .0)
}

/// One page of a report over a range and filters, sorted by a column of
/// [`REPORT_COLUMNS`], with the report's row count; the rows of `hidden` keys (triaged hashes the
/// viewer hides) are left out of both, so that pages and the total are of what is shown.
#[allow(clippy::too_many_arguments)] // the report's own query: what, which range, which page
pub fn report_page(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    filters: &Filters,
    sorted: &Paging,
    hidden: &[String],
    lag: Option<&ReportsLag>,
) -> QueryResult<ReportPage> {
    let page = report_rows(
        conn, scope, report, range, filters, sorted, hidden, lag, true,
    )?;
    Ok(ReportPage {
        rows: page.rows,
        total: page.total.expect("a counted read has its total"),
    })
}

/// [`report_page`], and unless `count_now`, without the row count where counting would cost
/// more than the rows: a many-key report (hashes, IP pairs) read from its ranking (all time) or
/// by the threshold walk (a range) counts its keys apart, and that count grows with the keys
/// (16-20 ms for 22,000-48,000 hashes at 900,000 hits, against 4-9 ms for the rows). Its page
/// shows the rows at once and asks for the count after (`/threats/top/{report}/count`). Where
/// the count comes with the rows (filters, the time buckets' sum, few-key reports), it is given.
#[allow(clippy::too_many_arguments)] // as report_page, and when to count
pub fn report_rows(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    filters: &Filters,
    sorted: &Paging,
    hidden: &[String],
    lag: Option<&ReportsLag>,
    count_now: bool,
) -> QueryResult<ReportRows> {
    let page = Slice::sorted_page(sorted, hidden);
    let ranked = sorted.is_default();
    let (mut rows, total) = read_report(
        conn, scope, report, range, filters, &page, ranked, lag, !count_now,
    )?;
    // A first page without rows is the whole report: nothing to count after.
    let total = total.or((rows.is_empty() && page.offset == 0).then_some(0));
    let more = match total {
        Some(total) => page.offset + (rows.len() as i64) < total,
        None => rows.len() as i64 > page.limit,
    };
    rows.truncate(page.limit as usize);
    Ok(ReportRows { rows, total, more })
}

/// A report's page. Filtered, it is counted from the visible hits that pass the filters (the
/// rankings and buckets are per key, so they cannot answer for a filter); unfiltered from the
/// rankings (all time) or the buckets (a range). With `defer_count`, a read that would count
/// apart (see [`report_rows`]) reads one row more instead and gives no total.
#[allow(clippy::too_many_arguments)] // as report_page
fn read_report(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    filters: &Filters,
    page: &Slice,
    ranked: bool,
    lag: Option<&ReportsLag>,
    defer_count: bool,
) -> QueryResult<(Vec<ReportRow>, Option<i64>)> {
    let views_current = lag.is_none_or(|l| !l.signature_moves_pending);
    let defer = defer_count && !super::projections::keeps_signature_rows(report.slug());
    // Where the count would be apart: one row more (for "Next") and no count.
    let uncounted = defer.then(|| Slice {
        limit: page.limit + 1,
        count: false,
        ..page.clone()
    });
    let apart = uncounted.as_ref().unwrap_or(page);
    let (mut rows, total) = if !views_current || !filters.is_empty() {
        let (rows, total) = counted(page, |p| {
            top_from_hits(conn, scope, report, range, filters, p)
        })?;
        (rows, Some(total))
    } else if range.is_all() {
        let (rows, total) = top_from_views(conn, scope, report, apart, ranked)?;
        (rows, (!defer).then_some(total))
    } else if let Some((rows, total)) = top_by_threshold(conn, scope, report, range, apart, ranked)?
    {
        (rows, (!defer).then_some(total))
    } else {
        let (rows, total) = serial(conn, |conn| {
            counted(page, |p| top_from_buckets(conn, scope, report, range, p))
        })?;
        (rows, Some(total))
    };
    if report == Report::Hash && !rows.is_empty() {
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let names: std::collections::HashMap<String, (String, String)> = scope
            .query(include_str!("sql/hash_names.sql"))
            .texts("keys", keys)
            .load::<KeyName>(conn)?
            .into_iter()
            .map(|k| (k.key, (k.filename, k.file_type)))
            .collect();
        for r in &mut rows {
            if let Some((f, t)) = names.get(&r.key) {
                r.filename = f.clone();
                r.file_type = t.clone();
            }
        }
    }
    Ok((rows, total))
}

/// `work` without parallel workers: a range's read of the buckets sums a few hundred (few-key
/// reports) to a few thousand rows (hashes, IP pairs over a day) and the hits of an hour or two,
/// less work than starting workers (on the 2-core test machine, busy, the planner's parallel
/// plan of such a read took 24-40 ms against 1-2 ms without for file types, and 24-56 ms against
/// 17-24 ms for hashes over `24h`, 6,400 rows).
fn serial<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL max_parallel_workers_per_gather = 0").execute(conn)?;
        work(conn)
    })
}

/// Which rows of a sorted report to read.
#[derive(Clone)]
struct Slice {
    order: &'static str,
    limit: i64,
    offset: i64,
    /// Whether to count the report's rows (a page's total: a count of the view's rows for all
    /// time, of the summed keys for a range), which a top-N read does without (its total is 0).
    count: bool,
    /// Keys left out (of the rows and the total).
    hidden: Vec<String>,
}

impl Slice {
    /// A page in the ranking's order with its row count, without the `hidden` keys.
    fn ranked_page(limit: i64, offset: i64, hidden: &[String]) -> Slice {
        Slice {
            order: REPORT_COLUMNS[0].desc,
            limit,
            offset,
            count: true,
            hidden: hidden.to_vec(),
        }
    }

    /// A table's page as sorted, with its row count, without the `hidden` keys.
    fn sorted_page(sorted: &Paging, hidden: &[String]) -> Slice {
        Slice {
            order: sorted.order_sql(),
            limit: sorted.limit(),
            offset: sorted.offset(),
            count: true,
            hidden: hidden.to_vec(),
        }
    }
}

/// The rows `read` gives for a page, with the total they carry (`count(*) OVER ()`); for a page
/// past the last row, which carries none, the total of the first row.
fn counted(
    page: &Slice,
    mut read: impl FnMut(&Slice) -> QueryResult<Vec<ReportRow>>,
) -> QueryResult<(Vec<ReportRow>, i64)> {
    let rows = read(page)?;
    if !rows.is_empty() || page.offset == 0 || !page.count {
        return Ok(with_total(rows));
    }
    let first = Slice {
        order: page.order,
        limit: 1,
        offset: 0,
        count: true,
        hidden: page.hidden.clone(),
    };
    Ok((rows, with_total(read(&first)?).1))
}

/// Rows that carry the total (`count(*) OVER ()`), with it.
fn with_total(rows: Vec<ReportRow>) -> (Vec<ReportRow>, i64) {
    let total = rows.first().map_or(0, |r| r.total);
    (rows, total)
}

/// How far the report tables are behind the log when they are delayed (`threat_hits` run as a
/// catch-up subscriber).
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct ReportsLag {
    /// Events of the types the reports read, committed and not applied yet (at most
    /// [`LAG_COUNTED`]).
    #[diesel(sql_type = Int8)]
    pub events: i64,
    /// Age of the oldest of them.
    #[diesel(sql_type = Int8)]
    pub seconds: i64,
    /// A signature was moved to another group and the rankings do not know it yet.
    #[diesel(sql_type = Bool)]
    pub signature_moves_pending: bool,
}

/// The most events [`reports_lag`] counts (beyond, the page says "more than").
pub const LAG_COUNTED: i64 = 100_000;

impl ReportsLag {
    /// "3 s / 12,000 events", as the report pages say it.
    pub fn text(&self) -> String {
        let mut digits = self.events.to_string();
        let mut grouped = String::new();
        while digits.len() > 3 {
            let tail = digits.split_off(digits.len() - 3);
            grouped = format!(",{tail}{grouped}");
        }
        let more = if self.events >= LAG_COUNTED {
            "more than "
        } else {
            ""
        };
        format!("{} s / {more}{digits}{grouped} events", self.seconds)
    }
}

/// How far the reports are behind, or `None` when they are current (applied inline, or caught
/// up). Reads the catch-up checkpoint of `threat_hits` and the committed events after it.
pub fn reports_lag(
    conn: &mut PgConnection,
    projections: &crate::es::Projections,
) -> QueryResult<Option<ReportsLag>> {
    use crate::es::Projection;
    let hits = super::projections::HitsProjection;
    if !projections.is_catch_up(hits.name()) {
        return Ok(None);
    }
    let types: Vec<&str> = hits.handles().to_vec();
    let lag: ReportsLag = diesel::sql_query(include_str!("sql/reports_lag.sql"))
        .bind::<Text, _>(hits.name())
        .bind::<Array<Text>, _>(&types)
        .bind::<Int8, _>(LAG_COUNTED)
        .get_result(conn)?;
    Ok((lag.events > 0).then_some(lag))
}

#[derive(QueryableByName)]
struct KeySignatures {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    signatures: String,
}

/// The top `limit` keys of a report over the viewer's groups: the first rows of the ranking of
/// the viewer's clearance set, which is maintained for every set an analyst holds and for admins
/// (one index range, whatever the number of keys or hits).
fn top_from_views(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    page: &Slice,
    ranked: bool,
) -> QueryResult<(Vec<ReportRow>, i64)> {
    if !scope.sees_all() && scope.groups().is_empty() {
        return Ok((Vec::new(), 0));
    }
    let Some(view) = maintained_view(conn, scope)? else {
        // A set nobody holds (which only code can ask for): computed from the hits.
        return counted(page, |p| {
            let all = TimeRange::default();
            top_from_hits(conn, scope, report, &all, &Filters::default(), p)
        });
    };
    // The ranking reads the first entries of its index; another order sorts the view's rows.
    let order = if ranked {
        "v.hits DESC, v.max_score DESC, v.key ASC"
    } else {
        page.order
    };
    let mut rows: Vec<ReportRow> =
        diesel::sql_query(include_str!("sql/top_from_views.sql").replace("{order}", order))
            .bind::<Text, _>(report.slug())
            .bind::<Text, _>(&view)
            .bind::<Int8, _>(page.limit)
            .bind::<Int8, _>(page.offset)
            .bind::<Array<Text>, _>(&page.hidden)
            .load(conn)?;
    let total: i64 = if page.count {
        use crate::schema::threat_report_views as v;
        v::table
            .filter(v::report.eq(report.slug()))
            .filter(v::view_id.eq(&view))
            .filter(v::hits.gt(0))
            .filter(diesel::dsl::not(v::key.eq_any(&page.hidden)))
            .count()
            .get_result(conn)?
    } else {
        rows.len() as i64
    };
    fill_signatures(conn, scope, report, &mut rows)?;
    Ok((rows, total))
}

/// The view (clearance set) whose rankings answer for a scope, if one is maintained.
pub(super) fn maintained_view(
    conn: &mut PgConnection,
    scope: &AnalystScope,
) -> QueryResult<Option<String>> {
    if !scope.sees_all() && scope.groups().is_empty() {
        return Ok(None);
    }
    let view = if scope.sees_all() {
        super::projections::ADMIN_VIEW.to_owned()
    } else {
        super::projections::view_id(scope.groups())
    };
    let held = diesel::select(diesel::dsl::exists(
        crate::schema::threat_views::table.filter(crate::schema::threat_views::view_id.eq(&view)),
    ))
    .get_result::<bool>(conn)?;
    Ok(held.then_some(view))
}

/// The first page of `limit` rows after `offset` of a report over a range in the ranking's
/// order, without the `hidden` keys, with its row count, by the threshold walk alone (`None`
/// when it declines). The two ways a range is read are public so that tests compare each with
/// the definition.
pub fn range_page_by_threshold(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    (limit, offset): (i64, i64),
    hidden: &[String],
) -> QueryResult<Option<ReportPage>> {
    let page = Slice::ranked_page(limit, offset, hidden);
    Ok(top_by_threshold(conn, scope, report, range, &page, true)?
        .map(|(rows, total)| ReportPage { rows, total }))
}

/// As [`range_page_by_threshold`], from the time buckets alone.
pub fn range_page_from_buckets(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    (limit, offset): (i64, i64),
    hidden: &[String],
) -> QueryResult<ReportPage> {
    let page = Slice::ranked_page(limit, offset, hidden);
    let (rows, total) = counted(&page, |p| top_from_buckets(conn, scope, report, range, p))?;
    Ok(ReportPage { rows, total })
}

/// A many-key report (hashes, IP pairs) in the ranking's order over a time range by the
/// threshold walk over the all-time ranking ([`super::threshold`]); `None` when that walk would
/// be long, or for a report with few keys (whose buckets are few).
fn top_by_threshold(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    page: &Slice,
    ranked: bool,
) -> QueryResult<Option<(Vec<ReportRow>, i64)>> {
    if !ranked
        || super::projections::keeps_signature_rows(report.slug())
        || (!scope.sees_all() && scope.groups().is_empty())
    {
        return Ok(None);
    }
    let Some(view) = maintained_view(conn, scope)? else {
        return Ok(None);
    };
    let found = super::threshold::top(
        conn,
        scope,
        report,
        &view,
        range,
        page.limit,
        page.offset,
        page.count,
        &page.hidden,
    )?;
    let Some((mut rows, total)) = found else {
        return Ok(None);
    };
    fill_signatures_in_range(conn, scope, report, range, &mut rows, false)?;
    Ok(Some((rows, total)))
}

/// A report over a time range from the scope's time buckets: the whole days and hours inside
/// the range, and the visible hits of its unaligned edges (`sql/top_from_buckets.sql`).
fn top_from_buckets(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    page: &Slice,
) -> QueryResult<Vec<ReportRow>> {
    if !scope.sees_all() && scope.groups().is_empty() {
        return Ok(Vec::new());
    }
    let Some(view) = maintained_view(conn, scope)? else {
        return top_from_hits(conn, scope, report, range, &Filters::default(), page);
    };
    // A few-key report over a bounded range lists its edges' signatures from this read of the
    // edges (its whole hours' are probed after), instead of reading the edges a second time.
    let edges_signed =
        super::projections::keeps_signature_rows(report.slug()) && range.to.is_some();
    let query = scope
        .query(include_str!("sql/top_from_buckets.sql"))
        .text("report", report.slug())
        .text("view", view)
        .sql("key_column", report.key_sql());
    let (signatures, edge_signature) = if edges_signed {
        (
            "coalesce(string_agg(p.signature, ';' ORDER BY p.signature), '')",
            "h.signature",
        )
    } else {
        ("''", "NULL::text")
    };
    let query = query
        .sql("signatures", signatures)
        .sql("edge_signature", edge_signature);
    let mut rows: Vec<ReportRow> = with_bucket_plan(query, range)
        .sql("order", page.order)
        .int8("limit", page.limit)
        .int8("offset", page.offset)
        .texts("hidden", page.hidden.clone())
        .sql(
            "total",
            if page.count {
                "count(*) OVER ()"
            } else {
                "0::int8"
            },
        )
        .load(conn)?;
    fill_signatures_in_range(conn, scope, report, range, &mut rows, edges_signed)?;
    Ok(rows)
}

/// `query` with the parts of `range` a bucket query reads ([`super::buckets::Plan`]): its whole
/// days (`:d_from`, `:d_to`), the whole hours before and after them (`:h1_*`, `:h2_*`), the
/// unaligned edges (`:e1_*`, `:e2_*`), and all its whole hours, those between the edges, as
/// `threat_report_key_hours` numbers them (`:hours_from`, `:hours_to`; none within an hour).
pub(super) fn with_bucket_plan(
    query: super::scope::ScopedQuery,
    range: &TimeRange,
) -> super::scope::ScopedQuery {
    let (from, to) = range.ends();
    let plan = super::buckets::Plan::of(from, to);
    query
        .time("d_from", Some(plan.days.0))
        .time("d_to", Some(plan.days.1))
        .time("h1_from", Some(plan.hours[0].0))
        .time("h1_to", Some(plan.hours[0].1))
        .time("h2_from", Some(plan.hours[1].0))
        .time("h2_to", Some(plan.hours[1].1))
        .time("e1_from", Some(plan.edges[0].0))
        .time("e1_to", Some(plan.edges[0].1))
        .time("e2_from", Some(plan.edges[1].0))
        .time("e2_to", Some(plan.edges[1].1))
        .int8(
            "hours_from",
            super::buckets::hour_number(plan.edges[0].1).into(),
        )
        .int8(
            "hours_to",
            super::buckets::hour_number(plan.edges[1].0).into(),
        )
}

/// As [`range_page_from_buckets`]'s row count alone, by
/// [`super::threshold::count_from_buckets`] (`None` for a clearance set nobody holds, which has
/// no buckets): public so that tests compare it with the definition.
pub fn range_count_from_buckets(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    hidden: &[String],
) -> QueryResult<Option<i64>> {
    match maintained_view(conn, scope)? {
        Some(view) => {
            super::threshold::count_from_buckets(conn, scope, report, &view, range, hidden)
                .map(Some)
        }
        None => Ok(None),
    }
}

/// The visible signatures of each row among the hits in the range: for file types and protocols
/// from their per-signature rows' last seen (a range open at its end) or the hours of each key's
/// signatures (`sql/key_signatures_by_hours.sql`); for hashes and IP pairs from each (key,
/// signature)'s first and last seen, and an IP pair's from the signatures of the range's whole
/// days (`sql/hash_signatures_in_range.sql`, `sql/pair_signatures_in_range.sql`). With
/// `edges_signed` a few-key report's rows came with the signatures of the range's unaligned edges
/// (read with their counts), and those of its whole hours are added.
fn fill_signatures_in_range(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    rows: &mut [ReportRow],
    edges_signed: bool,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let (from, to) = range.ends();
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    if super::projections::keeps_signature_rows(report.slug()) && range.to.is_none() {
        // Few keys, each with hits of most signatures, over a range open at its end: the
        // per-signature rows' last seen says which have a hit in it.
        let query = scope
            .query(include_str!("sql/key_signatures_since.sql"))
            .text("report", report.slug())
            .time("from", Some(from));
        return set_signatures(conn, query.texts("keys", keys), rows);
    }
    if super::projections::keeps_signature_rows(report.slug()) {
        // Otherwise the hours each key had a hit of each signature answer per probe, whatever
        // the range's length and the key's hits.
        let plan = super::buckets::Plan::of(from, to);
        let query = if edges_signed {
            // The edges' signatures come in with the rows, to be listed with the hours'.
            let (known_keys, known_names): (Vec<String>, Vec<String>) = rows
                .iter()
                .flat_map(|r| {
                    r.signatures
                        .split(';')
                        .filter(|s| !s.is_empty())
                        .map(|s| (r.key.clone(), s.to_owned()))
                })
                .unzip();
            key_signatures_by_hours(scope, report, &plan, [(to, to), (to, to)])
                .texts("known_keys", known_keys)
                .texts("known_signatures", known_names)
        } else {
            key_signatures_by_hours(scope, report, &plan, plan.edges)
                .texts("known_keys", Vec::new())
                .texts("known_signatures", Vec::new())
        };
        return set_signatures(conn, query.texts("keys", keys), rows);
    }
    // Each (hash or IP pair, signature)'s first and last seen say which overlap the range, and
    // whether a hit is surely in it; a heavy key's hits are not walked. An IP pair's are then
    // looked up in the signatures of the range's whole days (none for a range open at its end:
    // there a row's last seen is inside it).
    let query = match report {
        Report::Hash => scope.query(include_str!("sql/hash_signatures_in_range.sql")),
        _ => {
            let days = match range.to {
                Some(_) => super::buckets::Plan::of(from, to).days,
                None => (to, to),
            };
            scope
                .query(include_str!("sql/pair_signatures_in_range.sql"))
                .time("d_from", Some(days.0))
                .time("d_to", Some(days.1))
        }
    };
    let query = query.time("from", Some(from)).time("to", Some(to));
    set_signatures(conn, query.texts("keys", keys), rows)
}

/// `sql/key_signatures_by_hours.sql` over the whole hours of `plan` and the hits of `edges` (its
/// known pairs of key and signature still to bind).
fn key_signatures_by_hours(
    scope: &AnalystScope,
    report: Report,
    plan: &super::buckets::Plan,
    edges: [super::buckets::Span; 2],
) -> super::scope::ScopedQuery {
    scope
        .query(include_str!("sql/key_signatures_by_hours.sql"))
        .text("report", report.slug())
        .sql("key_column", report.key_sql())
        .time("h_from", Some(plan.edges[0].1))
        .time("h_to", Some(plan.edges[1].0))
        .time("e1_from", Some(edges[0].0))
        .time("e1_to", Some(edges[0].1))
        .time("e2_from", Some(edges[1].0))
        .time("e2_to", Some(edges[1].1))
}

/// Each row's signatures as `query` (of `KeySignatures`) finds them; none when it finds none.
fn set_signatures(
    conn: &mut PgConnection,
    query: super::scope::ScopedQuery,
    rows: &mut [ReportRow],
) -> QueryResult<()> {
    let found: std::collections::HashMap<String, String> = query
        .load::<KeySignatures>(conn)?
        .into_iter()
        .map(|k| (k.key, k.signatures))
        .collect();
    for r in rows {
        r.signatures = found.get(&r.key).cloned().unwrap_or_default();
    }
    Ok(())
}

/// The visible signatures of each row (from the per-signature rows or hits of those keys only).
fn fill_signatures(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    rows: &mut [ReportRow],
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    let query = if super::projections::keeps_signature_rows(report.slug()) {
        scope
            .query(include_str!("sql/key_signatures_by_rows.sql"))
            .text("report", report.slug())
    } else {
        scope
            .query(include_str!("sql/key_signatures_by_probe.sql"))
            .sql("key_match", report.key_match())
            .sql("key", "k.key")
    };
    set_signatures(conn, query.texts("keys", keys), rows)
}

/// [`report_page`] computed on demand from the visible hits of sessions started in the range
/// (the definition, with no rollup, ranking or walk; a bounded range reads the hits by the
/// start-time index), unfiltered: the baseline the benchmark measures the page against.
pub fn report_page_from_hits(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    sorted: &Paging,
    hidden: &[String],
) -> QueryResult<ReportPage> {
    let page = Slice::sorted_page(sorted, hidden);
    let (rows, total) = counted(&page, |p| {
        top_from_hits(conn, scope, report, range, &Filters::default(), p)
    })?;
    Ok(ReportPage { rows, total })
}

fn top_from_hits(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    filters: &Filters,
    page: &Slice,
) -> QueryResult<Vec<ReportRow>> {
    filters
        .hit_filters(scope.query(include_str!("sql/top_from_hits.sql")))
        .sql("key_column", report.key_sql())
        .time("since", range.from)
        .time("until", range.to)
        .sql("order", page.order)
        .int8("limit", page.limit)
        .int8("offset", page.offset)
        .texts("hidden", page.hidden.clone())
        .load(conn)
}

#[derive(QueryableByName)]
struct KeyName {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    filename: String,
    #[diesel(sql_type = Text)]
    file_type: String,
}

/// A hit as drill-downs and detail pages list it.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct HitRow {
    #[diesel(sql_type = Text)]
    pub file_id: String,
    #[diesel(sql_type = Text)]
    pub session_id: String,
    #[diesel(sql_type = Text)]
    pub md5: String,
    #[diesel(sql_type = Text)]
    pub filename: String,
    #[diesel(sql_type = Text)]
    pub signature: String,
    #[diesel(sql_type = Text)]
    pub integration: String,
    #[diesel(sql_type = Int4)]
    pub score: i32,
    #[diesel(sql_type = Timestamptz)]
    pub start_time: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub scored_at: DateTime<Utc>,
}

/// The sortable columns of a list of hits, the default (highest score first) first.
pub static HIT_COLUMNS: [Column; 5] = [
    Column {
        key: "score",
        desc: "h.score DESC, h.scored_at DESC, h.file_id, h.integration, h.signature",
        asc: "h.score ASC, h.scored_at ASC, h.file_id, h.integration, h.signature",
        desc_first: true,
    },
    Column {
        key: "start_time",
        desc: "h.start_time DESC, h.file_id, h.integration, h.signature",
        asc: "h.start_time ASC, h.file_id, h.integration, h.signature",
        desc_first: true,
    },
    Column {
        key: "scored_at",
        desc: "h.scored_at DESC, h.file_id, h.integration, h.signature",
        asc: "h.scored_at ASC, h.file_id, h.integration, h.signature",
        desc_first: true,
    },
    Column {
        key: "signature",
        desc: "h.signature DESC, h.file_id, h.integration",
        asc: "h.signature ASC, h.file_id, h.integration",
        desc_first: false,
    },
    Column {
        key: "filename",
        desc: "h.filename DESC, h.file_id, h.integration, h.signature",
        asc: "h.filename ASC, h.file_id, h.integration, h.signature",
        desc_first: false,
    },
];

/// A page of hits and how many there are in all.
#[derive(Debug, Clone, Serialize)]
pub struct HitsPage {
    pub hits: Vec<HitRow>,
    pub total: i64,
}

#[derive(QueryableByName)]
struct HitWithTotal {
    #[diesel(embed)]
    hit: HitRow,
    #[diesel(sql_type = Int8)]
    total: i64,
}

/// One page of the visible hits behind one row of a report that pass the filters, sorted by
/// a column of [`HIT_COLUMNS`].
#[allow(clippy::too_many_arguments)] // which row, which range and filters, which page
pub fn hits_of_key(
    conn: &mut PgConnection,
    viewer: &Viewer,
    report: Report,
    key: &str,
    range: &TimeRange,
    filters: &Filters,
    sorted: &Paging,
) -> Result<HitsPage, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    let rows: Vec<HitWithTotal> = filters
        .hit_filters(scope.query(include_str!("sql/hits_of_key.sql")))
        .sql("key_match", report.key_match())
        .text("key", key)
        .time("since", range.from)
        .time("until", range.to)
        .sql("order", sorted.order_sql())
        .int8("limit", sorted.limit())
        .int8("offset", sorted.offset())
        .load(conn)?;
    let total = rows.first().map_or(0, |r| r.total);
    Ok(HitsPage {
        hits: rows.into_iter().map(|r| r.hit).collect(),
        total,
    })
}

/// Visible hits of a session or a file.
pub fn hits_where(
    conn: &mut PgConnection,
    viewer: &Viewer,
    column: HitsOf,
    id: &str,
) -> Result<Vec<HitRow>, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    // A session's hits by its files' ids: the primary key serves both, and the ingest keeps one
    // index fewer on the hits.
    let hits_of = match column {
        HitsOf::Session => "h.file_id IN (SELECT file_id FROM threat_files WHERE session_id = :id)",
        HitsOf::File => "h.file_id = :id",
    };
    Ok(scope
        .query(include_str!("sql/hits_of.sql"))
        .sql("hits_of", hits_of)
        .text("id", id)
        .load(conn)?)
}

pub enum HitsOf {
    Session,
    File,
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = threat_sessions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    pub(crate) session_id: String,
    pub(crate) start_time: DateTime<Utc>,
    pub(crate) protocol: String,
    pub(crate) source_ip: String,
    pub(crate) destination_ip: String,
    pub(crate) source_port: i32,
    pub(crate) destination_port: i32,
    pub(crate) latest_score: Option<i32>,
    pub(crate) threat_contributor: Option<String>,
    pub(crate) file_count: i32,
}

/// A session as a viewer may see it.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub session_id: String,
    pub start_time: DateTime<Utc>,
    pub protocol: String,
    pub source_ip: String,
    pub destination_ip: String,
    pub source_port: i32,
    pub destination_port: i32,
    pub latest_score: Option<i32>,
    /// `None` when not scored, or when it names a signature outside the viewer's clearances.
    pub threat_contributor: Option<String>,
    /// The contributor names a signature the viewer may not see: shown as "restricted".
    pub contributor_restricted: bool,
    pub file_count: i32,
}

/// What a viewer sees in place of a contributor that names a signature outside their clearances.
pub const RESTRICTED_CONTRIBUTOR: &str = "restricted";

impl Session {
    /// The contributor as the pages and the CSV show it: its name, "restricted", or empty.
    pub fn contributor_label(&self) -> &str {
        if self.contributor_restricted {
            RESTRICTED_CONTRIBUTOR
        } else {
            self.threat_contributor.as_deref().unwrap_or("")
        }
    }
}

#[derive(QueryableByName)]
struct Contributor {
    #[diesel(sql_type = Text)]
    contributor: String,
}

/// Sessions as the viewer may see them: a threat contributor that names a signature (compared
/// without regard to case) outside the viewer's clearances is withheld. Contributors that name
/// no signature (an integration, say) are shown to everyone.
pub(crate) fn scoped_sessions(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    rows: Vec<SessionRow>,
) -> QueryResult<Vec<Session>> {
    let mut named: Vec<String> = rows
        .iter()
        .filter_map(|r| r.threat_contributor.clone())
        .collect();
    named.sort();
    named.dedup();
    let hidden: std::collections::HashSet<String> = if scope.sees_all() || named.is_empty() {
        Default::default()
    } else {
        scope
            .query(include_str!("sql/hidden_contributors.sql"))
            .texts("contributors", named)
            .load::<Contributor>(conn)?
            .into_iter()
            .map(|c| c.contributor)
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|r| {
            let restricted = r
                .threat_contributor
                .as_ref()
                .is_some_and(|c| hidden.contains(c));
            Session {
                session_id: r.session_id,
                start_time: r.start_time,
                protocol: r.protocol,
                source_ip: r.source_ip,
                destination_ip: r.destination_ip,
                source_port: r.source_port,
                destination_port: r.destination_port,
                latest_score: r.latest_score,
                threat_contributor: if restricted {
                    None
                } else {
                    r.threat_contributor
                },
                contributor_restricted: restricted,
                file_count: r.file_count,
            }
        })
        .collect())
}

/// The sessions list's own filter (besides [`Filters`]): a minimum latest score.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
pub struct SessionFilter {
    #[serde(default)]
    pub min_score: String,
}

impl SessionFilter {
    /// The minimum score asked for, if any.
    pub fn min(&self) -> Result<Option<i32>, ThreatsError> {
        match self.min_score.trim() {
            "" => Ok(None),
            m => Ok(Some(
                m.parse::<i32>()
                    .ok()
                    .filter(|m| (0..=100).contains(m))
                    .ok_or_else(|| {
                        ThreatsError::BadFilter(
                            "The minimum score is a number from 0 to 100.".into(),
                        )
                    })?,
            )),
        }
    }
}

/// The sortable columns of the sessions list, newest first by default. (Only names: the list is
/// a Diesel query, ordered in [`sessions`].)
pub static SESSION_COLUMNS: [Column; 6] = [
    Column::desc("start_time"),
    Column::asc("session_id"),
    Column::asc("protocol"),
    Column::desc("latest_score"),
    Column::desc("file_count"),
    Column::asc("source_ip"),
];

/// A page of sessions and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct SessionsPage {
    pub sessions: Vec<Session>,
    pub total: i64,
}

/// Sessions started in the range, filtered, sorted and one page of them. Sessions
/// carry no signature: every analyst sees them; what is scoped is the hits shown on a session's
/// page and a threat contributor naming a signature. Of the [`Filters`], protocol, IP and sensor
/// are the session's own; md5 and file type match its files; a signature matches its visible hits
/// (of files that pass the md5 and file type filters), so a signature outside the viewer's
/// clearances matches no session. The `hidden` sessions (triaged ones the viewer hides) are
/// left out of the page and the total.
#[allow(clippy::too_many_arguments)] // which sessions (filters, range), which page
pub fn sessions(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &SessionFilter,
    filters: &Filters,
    range: &TimeRange,
    sorted: &Paging,
    hidden: &[String],
) -> Result<SessionsPage, ThreatsError> {
    use threat_sessions as t;
    let scope = AnalystScope::of(conn, viewer)?;
    let min = filter.min()?;
    let filtered = || {
        let mut q = t::table.into_boxed();
        for condition in session_filters(&scope, filters) {
            q = q.filter(condition);
        }
        if let Some(min) = min {
            q = q.filter(t::latest_score.ge(min));
        }
        if let Some(from) = range.from {
            q = q.filter(t::start_time.ge(from));
        }
        if let Some(to) = range.to {
            q = q.filter(t::start_time.lt(to));
        }
        if !hidden.is_empty() {
            q = q.filter(diesel::dsl::not(t::session_id.eq_any(hidden)));
        }
        q
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let q = filtered().select(SessionRow::as_select());
    let q = match (sorted.sort, sorted.desc) {
        ("session_id", true) => q.order(t::session_id.desc()),
        ("session_id", false) => q.order(t::session_id.asc()),
        ("protocol", true) => q.order((t::protocol.desc(), t::start_time.desc())),
        ("protocol", false) => q.order((t::protocol.asc(), t::start_time.desc())),
        ("latest_score", true) => {
            q.order((t::latest_score.desc().nulls_last(), t::start_time.desc()))
        }
        ("latest_score", false) => {
            q.order((t::latest_score.asc().nulls_first(), t::start_time.desc()))
        }
        ("file_count", true) => q.order((t::file_count.desc(), t::start_time.desc())),
        ("file_count", false) => q.order((t::file_count.asc(), t::start_time.desc())),
        ("source_ip", true) => q.order((
            t::source_ip.desc(),
            t::destination_ip.desc(),
            t::start_time.desc(),
        )),
        ("source_ip", false) => q.order((
            t::source_ip.asc(),
            t::destination_ip.asc(),
            t::start_time.desc(),
        )),
        (_, false) => q.order((t::start_time.asc(), t::session_id.asc())),
        (_, true) => q.order((t::start_time.desc(), t::session_id.asc())),
    };
    let rows = q
        .then_order_by(t::session_id.asc())
        .limit(sorted.limit())
        .offset(sorted.offset())
        .load(conn)?;
    Ok(SessionsPage {
        sessions: scoped_sessions(conn, &scope, rows)?,
        total,
    })
}

/// The [`Filters`] as conditions on `threat_sessions` (see [`sessions`]).
fn session_filters(
    scope: &AnalystScope,
    filters: &Filters,
) -> Vec<Box<dyn BoxableExpression<threat_sessions::table, diesel::pg::Pg, SqlType = Bool>>> {
    use super::filters::Key;
    use diesel::dsl::sql;
    use threat_sessions as t;
    type Condition =
        Box<dyn BoxableExpression<threat_sessions::table, diesel::pg::Pg, SqlType = Bool>>;
    let mut out: Vec<Condition> = Vec::new();
    let protocols = filters.of(Key::Protocol);
    if !protocols.is_empty() {
        out.push(Box::new(t::protocol.eq_any(protocols)));
    }
    let ips = filters.of(Key::Ip);
    if !ips.is_empty() {
        out.push(Box::new(
            t::source_ip
                .eq_any(ips.clone())
                .or(t::destination_ip.eq_any(ips)),
        ));
    }
    let (md5s, types) = (filters.of(Key::Md5), filters.of(Key::FileType));
    let signatures = filters.of(Key::Signature);
    if !signatures.is_empty() {
        out.push(Box::new(
            sql::<Bool>(
                "EXISTS (SELECT 1 FROM threat_files f
                   JOIN threat_hits h ON h.file_id = f.file_id
                   JOIN threat_signatures s ON s.name = h.signature
                 WHERE f.session_id = threat_sessions.session_id AND h.signature = ANY(",
            )
            .bind::<Array<Text>, _>(signatures)
            .sql(") AND (")
            .bind::<Bool, _>(scope.sees_all())
            .sql(" OR s.group_name = ANY(")
            .bind::<Array<Text>, _>(scope.groups().to_vec())
            .sql(")) AND (cardinality(")
            .bind::<Array<Text>, _>(md5s.clone())
            .sql("::text[]) = 0 OR f.md5 = ANY(")
            .bind::<Array<Text>, _>(md5s)
            .sql(")) AND (cardinality(")
            .bind::<Array<Text>, _>(types.clone())
            .sql("::text[]) = 0 OR f.file_type = ANY(")
            .bind::<Array<Text>, _>(types)
            .sql(")))"),
        ));
    } else if !md5s.is_empty() || !types.is_empty() {
        out.push(Box::new(
            sql::<Bool>(
                "EXISTS (SELECT 1 FROM threat_files f
                 WHERE f.session_id = threat_sessions.session_id AND (cardinality(",
            )
            .bind::<Array<Text>, _>(md5s.clone())
            .sql("::text[]) = 0 OR f.md5 = ANY(")
            .bind::<Array<Text>, _>(md5s)
            .sql(")) AND (cardinality(")
            .bind::<Array<Text>, _>(types.clone())
            .sql("::text[]) = 0 OR f.file_type = ANY(")
            .bind::<Array<Text>, _>(types)
            .sql(")))"),
        ));
    }
    let sensors = filters.of(Key::Sensor);
    if !sensors.is_empty() {
        out.push(Box::new(
            sql::<Bool>(
                "EXISTS (SELECT 1 FROM events e
                 WHERE e.stream_type = 'threat_session' AND e.stream_id = threat_sessions.session_id
                   AND e.stream_version = 1 AND e.metadata->'actor'->>'kind' = 'sensor'
                   AND e.metadata->'actor'->>'id' IN (SELECT se.id::text FROM sensors se WHERE se.name = ANY(",
            )
            .bind::<Array<Text>, _>(sensors)
            .sql(")))"),
        ));
    }
    out
}

#[derive(QueryableByName)]
struct SessionSensor {
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Text)]
    sensor: String,
}

/// The name of the sensor that discovered each of these sessions (the actor of the session
/// stream's first event, by the stream index). Sessions and sensors' names are not scoped data;
/// the scope is taken so that only threat readers call it.
pub fn sensors_of_sessions(
    conn: &mut PgConnection,
    _scope: &AnalystScope,
    ids: Vec<String>,
) -> QueryResult<std::collections::HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(diesel::sql_query(
        "SELECT e.stream_id AS session_id, se.name AS sensor
         FROM events e JOIN sensors se ON se.id::text = e.metadata->'actor'->>'id'
         WHERE e.stream_type = 'threat_session' AND e.stream_id = ANY($1) AND e.stream_version = 1
           AND e.metadata->'actor'->>'kind' = 'sensor'",
    )
    .bind::<Array<Text>, _>(ids)
    .load::<SessionSensor>(conn)?
    .into_iter()
    .map(|s| (s.session_id, s.sensor))
    .collect())
}

pub fn session(
    conn: &mut PgConnection,
    viewer: &Viewer,
    id: &str,
) -> Result<Session, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    let row: SessionRow = threat_sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)?;
    let mut one = scoped_sessions(conn, &scope, vec![row])?;
    Ok(one.remove(0))
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = threat_files, check_for_backend(diesel::pg::Pg))]
pub struct File {
    pub file_id: String,
    pub session_id: String,
    pub md5: String,
    pub filename: String,
    pub file_type: String,
    pub size_bytes: i64,
}

pub fn files_of_session(
    conn: &mut PgConnection,
    viewer: &Viewer,
    session_id: &str,
) -> Result<Vec<File>, ThreatsError> {
    AnalystScope::of(conn, viewer)?;
    Ok(threat_files::table
        .filter(threat_files::session_id.eq(session_id))
        .order(threat_files::file_id.asc())
        .select(File::as_select())
        .load(conn)?)
}

pub fn file(conn: &mut PgConnection, viewer: &Viewer, id: &str) -> Result<File, ThreatsError> {
    AnalystScope::of(conn, viewer)?;
    Ok(threat_files::table
        .find(id)
        .select(File::as_select())
        .first(conn)?)
}

#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct ScoreChange {
    #[diesel(sql_type = Int8)]
    pub position: i64,
    #[diesel(sql_type = Text)]
    pub integration: String,
    #[diesel(sql_type = Text)]
    pub signature: String,
    #[diesel(sql_type = Nullable<Int4>)]
    pub old_score: Option<i32>,
    #[diesel(sql_type = Int4)]
    pub new_score: i32,
    #[diesel(sql_type = Timestamptz)]
    pub recorded_at: DateTime<Utc>,
}

/// A file's visible score history, oldest first; rescans have an old score.
pub fn score_history(
    conn: &mut PgConnection,
    viewer: &Viewer,
    file_id: &str,
) -> Result<Vec<ScoreChange>, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    Ok(scope
        .query(include_str!("sql/score_history.sql"))
        .text("file_id", file_id)
        .load(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = threat_signatures, check_for_backend(diesel::pg::Pg))]
pub struct SignatureRow {
    pub name: String,
    pub rule_text: String,
    pub group_name: String,
    pub default_score: i32,
    pub retired: bool,
    pub restricted: bool,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// One signature, if the viewer may see it (its group among their clearances, or an admin).
pub fn signature(
    conn: &mut PgConnection,
    viewer: &Viewer,
    name: &str,
) -> Result<SignatureRow, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    let sig: SignatureRow = threat_signatures::table
        .find(name)
        .select(SignatureRow::as_select())
        .first(conn)?;
    if scope.sees_group(&sig.group_name) {
        Ok(sig)
    } else {
        Err(ThreatsError::NotFound)
    }
}

/// Every signature, restricted ones first, for the admins' page.
pub fn all_signatures(
    conn: &mut PgConnection,
    viewer: &Viewer,
) -> Result<Vec<SignatureRow>, ThreatsError> {
    admins_only(viewer)?;
    Ok(threat_signatures::table
        .order((
            threat_signatures::restricted.desc(),
            threat_signatures::name.asc(),
        ))
        .select(SignatureRow::as_select())
        .load(conn)?)
}

#[derive(Debug, Clone, Serialize)]
pub struct AnalystClearances {
    pub username: String,
    pub display_name: String,
    pub groups: Vec<String>,
}

pub fn analyst_clearances(
    conn: &mut PgConnection,
    viewer: &Viewer,
) -> Result<Vec<AnalystClearances>, ThreatsError> {
    admins_only(viewer)?;
    let analysts: Vec<(uuid::Uuid, String, String)> = users::table
        .filter(users::role.eq("analyst"))
        .order(users::username.asc())
        .select((users::id, users::username, users::display_name))
        .load(conn)?;
    let held: Vec<(uuid::Uuid, String)> = threat_clearances::table
        .order(threat_clearances::group_name.asc())
        .select((threat_clearances::user_id, threat_clearances::group_name))
        .load(conn)?;
    Ok(analysts
        .into_iter()
        .map(|(id, username, display_name)| AnalystClearances {
            username,
            display_name,
            groups: held
                .iter()
                .filter(|(u, _)| *u == id)
                .map(|(_, g)| g.clone())
                .collect(),
        })
        .collect())
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sensors, check_for_backend(diesel::pg::Pg))]
pub struct SensorRow {
    pub id: uuid::Uuid,
    pub name: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub fn all_sensors(
    conn: &mut PgConnection,
    viewer: &Viewer,
) -> Result<Vec<SensorRow>, ThreatsError> {
    admins_only(viewer)?;
    Ok(sensors::table
        .order((sensors::active.desc(), sensors::name.asc()))
        .select(SensorRow::as_select())
        .load(conn)?)
}
