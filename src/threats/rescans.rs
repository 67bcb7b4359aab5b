//! What rescans changed (issue 20.7, "rescans and history from rescans: what can we see?"):
//! `/threats/rescans` lists, for a range of rescan times, each hit whose score a rescan moved,
//! from what to what and by which integration, in the viewer's scope (a rescan of a hit of a
//! signature the viewer is not cleared for is not there), paged with a total.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use diesel::sql_types::{Int4, Int8, Text, Timestamptz};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::error::ThreatsError;
use super::filters::{FilterView, Filters};
use super::revisions::when;
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::web::render::state;
use crate::web::{render, AppError};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;

/// The presets of the range form.
const WINDOWS: [&str; 5] = ["1h", "24h", "7d", "30d", "all"];

/// `?window=1h|24h|7d|30d|all` or `?from=&to=` (RFC 3339, or `YYYY-MM-DDTHH:MM` in the viewer's
/// time zone; `from`
/// inclusive, `to` exclusive), and `?page=`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RescansQuery {
    #[serde(default)]
    pub window: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: String,
    /// `csv` for the page's rows as CSV.
    #[serde(default)]
    pub format: String,
}

/// A range of rescan times (either end open) and a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub page: i64,
}

/// One end of the range, as every report reads it (`report_query::parse_time`: RFC 3339, or a
/// local time in the viewer's zone); empty is open.
fn parse_time(name: &str, raw: &str, zone: Tz) -> Result<Option<DateTime<Utc>>, ThreatsError> {
    match raw.trim() {
        "" => Ok(None),
        raw => super::report_query::parse_time(raw, name, zone).map(Some),
    }
}

impl RescansQuery {
    pub fn range(&self, now: DateTime<Utc>, zone: Tz) -> Result<Range, ThreatsError> {
        let page = match self.page.trim() {
            "" => 1,
            p => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| ThreatsError::BadQuery("page is a number from 1".into()))?,
        };
        let (from, to) = (
            parse_time("from", &self.from, zone)?,
            parse_time("to", &self.to, zone)?,
        );
        if from.is_some() || to.is_some() {
            if let (Some(f), Some(t)) = (from, to) {
                if f >= t {
                    return Err(ThreatsError::BadQuery("from must be before to".into()));
                }
            }
            return Ok(Range { from, to, page });
        }
        let since = match self.window.as_str() {
            "1h" => Some(now - Duration::hours(1)),
            "24h" => Some(now - Duration::hours(24)),
            "7d" => Some(now - Duration::days(7)),
            "30d" => Some(now - Duration::days(30)),
            "" | "all" => None,
            other => {
                return Err(ThreatsError::BadQuery(format!(
                    "window {:?} is not one of 1h, 24h, 7d, 30d, all",
                    other.chars().take(20).collect::<String>()
                )))
            }
        };
        Ok(Range {
            from: since,
            to: None,
            page,
        })
    }
}

/// One hit a rescan moved.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct Moved {
    #[diesel(sql_type = Text)]
    pub file_id: String,
    #[diesel(sql_type = Text)]
    pub integration: String,
    #[diesel(sql_type = Text)]
    pub signature: String,
    #[diesel(sql_type = Int4)]
    pub from_score: i32,
    #[diesel(sql_type = Int4)]
    pub to_score: i32,
    #[diesel(sql_type = Int8)]
    pub rescans: i64,
    #[diesel(sql_type = Timestamptz)]
    pub last_rescan: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub md5: String,
    #[diesel(sql_type = Text)]
    pub filename: String,
    #[diesel(sql_type = Text)]
    pub session_id: String,
    #[diesel(sql_type = Int8)]
    pub total: i64,
}

/// A page of what rescans changed in the range (of the hits that pass the filters), and how
/// many hits moved in all.
pub fn moved(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    range: &Range,
    filters: &Filters,
) -> QueryResult<(Vec<Moved>, i64)> {
    let page = |limit: i64, offset: i64, conn: &mut PgConnection| {
        filters
            .hit_filters(scope.query(include_str!("sql/rescans_moved.sql")))
            .time("from", range.from)
            .time("to", range.to)
            .int8("limit", limit)
            .int8("offset", offset)
            .load::<Moved>(conn)
    };
    let rows = page(PAGE_SIZE, (range.page - 1) * PAGE_SIZE, conn)?;
    let total = match rows.first() {
        Some(r) => r.total,
        // Past the last page: the total still says how many there are.
        None if range.page > 1 => page(1, 0, conn)?.first().map_or(0, |r| r.total),
        None => 0,
    };
    Ok((rows, total))
}

/// A row as the page shows it.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    row: &'a Moved,
    raised: bool,
    last: String,
}

/// The page's rows as CSV, in the same order.
fn csv(rows: &[Moved]) -> HttpResponse {
    let mut export = crate::web::csv::CsvExport::new(
        "rescans",
        &[
            "md5",
            "filename",
            "file_id",
            "session_id",
            "signature",
            "integration",
            "from_score",
            "to_score",
            "rescans",
            "last_rescan",
        ],
    );
    for r in rows {
        export.row([
            r.md5.clone(),
            r.filename.clone(),
            r.file_id.clone(),
            r.session_id.clone(),
            r.signature.clone(),
            r.integration.clone(),
            r.from_score.to_string(),
            r.to_score.to_string(),
            r.rescans.to_string(),
            r.last_rescan
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]);
    }
    export.into_response()
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(rescans_page);
}

#[tracing::instrument(skip_all)]
#[get("/rescans")]
async fn rescans_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<RescansQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let now = Utc::now();
    let zone = viewer.time_zone.unwrap_or(state(&req).settings.time_zone);
    let range = query.range(now, zone)?;
    let filters = Filters::from_query(req.query_string())?;
    let f = filters.clone();
    // A report and its CSV export: a replica may serve it (`AppState::read`).
    let (rows, total) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            let scope = AnalystScope::of(conn, &viewer)?;
            Ok(moved(conn, &scope, &range, &f)?)
        })
        .await?;
    if query.format == "csv" {
        return Ok(csv(&rows));
    }
    let lines: Vec<Line> = rows
        .iter()
        .map(|r| Line {
            row: r,
            raised: r.to_score > r.from_score,
            last: when(r.last_rescan, now),
        })
        .collect();
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let mut ctx = Context::new();
    ctx.insert("rows", &lines);
    ctx.insert("total", &total);
    ctx.insert("page", &range.page);
    ctx.insert("pages", &pages);
    ctx.insert(
        "page_url",
        &super::live::address_with(&req, &["page"], "page="),
    );
    ctx.insert(
        "csv_url",
        &super::live::address_with(&req, &["format"], "format=csv"),
    );
    let unfiltered = format!(
        "/threats/rescans?window={}&from={}&to={}",
        crate::web::render::percent_encode(query.window.trim()),
        crate::web::render::percent_encode(query.from.trim()),
        crate::web::render::percent_encode(query.to.trim())
    );
    ctx.insert("filters", &FilterView::new(&filters, &unfiltered));
    ctx.insert("keep", &filters.pairs());
    ctx.insert("query", &query);
    ctx.insert("windows", &WINDOWS);
    let custom = !query.from.trim().is_empty() || !query.to.trim().is_empty();
    ctx.insert("custom", &custom);
    ctx.insert(
        "window",
        if custom || query.window.is_empty() {
            "all"
        } else {
            query.window.as_str()
        },
    );
    render(&req, "threats/rescans.html", "threats/_rescans.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_with_a_clear_message() {
        let now = Utc::now();
        let q = |window: &str, from: &str, to: &str| RescansQuery {
            window: window.into(),
            from: from.into(),
            to: to.into(),
            page: String::new(),
            format: String::new(),
        };
        assert_eq!(q("", "", "").range(now, Tz::UTC).unwrap().from, None);
        assert_eq!(
            q("1h", "", "").range(now, Tz::UTC).unwrap().from,
            Some(now - Duration::hours(1))
        );
        let r = q("7d", "2026-12-03T14:02", "").range(now, Tz::UTC).unwrap();
        assert_eq!(
            r.from.unwrap().to_rfc3339(),
            "2026-12-03T14:02:00+00:00",
            "a custom range wins over the preset"
        );
        assert!(q("2w", "", "").range(now, Tz::UTC).is_err());
        assert!(q("", "yesterday", "").range(now, Tz::UTC).is_err());
        assert!(q("", "2026-12-03T14:02", "2026-12-03T14:02")
            .range(now, Tz::UTC)
            .is_err());
    }
}
