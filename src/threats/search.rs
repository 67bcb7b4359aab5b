//! The reports' search box (issue 20.3): one field that takes a hash, an IP address or part of
//! a filename. An MD5 or an IP becomes a filter of the report searched from (keeping its range
//! and filters); anything else lists the files whose name holds it (case-insensitive), found by
//! the viewer's visible hits in the same range and filters.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int4, Int8, Text, Timestamptz};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::error::ThreatsError;
use super::filters::{FilterView, Filters, Key};
use super::queries::{Report, TimeRange};
use super::report_query::RangeParams;
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::web::render::state;
use crate::web::{render, AppError};

/// The most files a search lists.
pub const MAX_FILES: i64 = 100;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// The report searched from (`hash` when not given).
    #[serde(default)]
    report: String,
    #[serde(flatten)]
    range: RangeParams,
}

/// What a search asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sought {
    /// A value of a filter key (an MD5, an IP address).
    Filter(Key, String),
    /// Part of a filename.
    Filename(String),
}

impl Sought {
    pub fn parse(q: &str) -> Result<Sought, ThreatsError> {
        let q = q.trim();
        if q.is_empty() {
            return Err(ThreatsError::BadQuery(
                "Type a file hash (MD5), an IP address or part of a filename.".into(),
            ));
        }
        if q.chars().count() > 200 || q.chars().any(char::is_control) {
            return Err(ThreatsError::BadQuery(
                "A search is at most 200 characters, without control characters.".into(),
            ));
        }
        for key in [Key::Md5, Key::Ip] {
            if let Ok(value) = key.check(q) {
                return Ok(Sought::Filter(key, value));
            }
        }
        Ok(Sought::Filename(q.to_owned()))
    }
}

/// A file a filename search found.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct FoundFile {
    #[diesel(sql_type = Text)]
    pub file_id: String,
    #[diesel(sql_type = Text)]
    pub filename: String,
    #[diesel(sql_type = Text)]
    pub md5: String,
    #[diesel(sql_type = Text)]
    pub file_type: String,
    #[diesel(sql_type = Int8)]
    pub hits: i64,
    #[diesel(sql_type = Int4)]
    pub max_score: i32,
    #[diesel(sql_type = Timestamptz)]
    pub last_seen: DateTime<Utc>,
}

/// `part` as an ILIKE pattern that matches it anywhere, its wildcards taken literally.
fn contains_pattern(part: &str) -> String {
    let mut p = String::from("%");
    for c in part.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The files with a visible hit in the range that passes the filters whose name holds `part`,
/// newest first.
pub fn files_named(
    conn: &mut PgConnection,
    viewer: &Viewer,
    part: &str,
    range: &TimeRange,
    filters: &Filters,
) -> Result<Vec<FoundFile>, ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    Ok(filters
        .hit_filters(scope.query(include_str!("sql/search_files.sql")))
        .text("pattern", contains_pattern(part))
        .time("since", range.from)
        .time("until", range.to)
        .int8("limit", MAX_FILES)
        .load(conn)?)
}

#[tracing::instrument(skip_all)]
#[get("/search")]
pub async fn search_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let SearchQuery { q, report, range } = query.into_inner();
    let report = match report.trim() {
        "" => Report::Hash,
        slug => Report::parse(slug)
            .ok_or_else(|| ThreatsError::BadQuery("report is not one of the reports".into()))?,
    };
    let zone = viewer
        .time_zone
        .unwrap_or(crate::web::render::state(&req).settings.time_zone);
    let time_range = range.range(Utc::now(), zone)?;
    let filters = Filters::from_query(req.query_string())?;
    let base = format!("/threats/top/{}?{}", report.slug(), range.query_string());
    let part = match Sought::parse(&q)? {
        Sought::Filter(key, value) => {
            let to = format!("{base}{}", filters.with(key, &value).and_query());
            return Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, to))
                .finish());
        }
        Sought::Filename(part) => part,
    };
    let (p, f) = (part.clone(), filters.clone());
    let files = state(&req)
        .read(&req, move |conn| {
            files_named(conn, &viewer, &p, &time_range, &f)
        })
        .await?;
    let mut ctx = Context::new();
    ctx.insert("q", &part);
    ctx.insert("files", &files);
    ctx.insert("max_files", &MAX_FILES);
    ctx.insert("report", report.slug());
    ctx.insert("title", report.title());
    ctx.insert("range_qs", &range.query_string());
    ctx.insert("filters", &FilterView::new(&filters, &base));
    ctx.insert("filter_qs", &filters.and_query());
    ctx.insert("keep", &search_keep(&range, &filters));
    render(&req, "threats/search.html", "threats/search.html", ctx)
}

/// The hidden fields of a search form: the range and the filters of the page it is on.
pub fn search_keep(range: &RangeParams, filters: &Filters) -> Vec<(&'static str, String)> {
    let mut keep = Vec::new();
    if range.is_custom() {
        keep.push(("window", "custom".to_owned()));
        keep.push(("from", range.from.clone().unwrap_or_default()));
        keep.push(("to", range.to.clone().unwrap_or_default()));
    } else {
        keep.push((
            "window",
            range.preset().unwrap_or_default().as_str().to_owned(),
        ));
    }
    keep.extend(filters.pairs());
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_is_a_hash_an_address_or_part_of_a_filename() {
        assert_eq!(
            Sought::parse(" D41D8CD98F00B204E9800998ECF8427E ").unwrap(),
            Sought::Filter(Key::Md5, "d41d8cd98f00b204e9800998ecf8427e".into())
        );
        assert_eq!(
            Sought::parse("10.0.0.7").unwrap(),
            Sought::Filter(Key::Ip, "10.0.0.7".into())
        );
        assert_eq!(
            Sought::parse("invoice").unwrap(),
            Sought::Filename("invoice".into())
        );
        assert!(Sought::parse("  ").is_err());
        assert_eq!(contains_pattern("a_%\\b"), "%a\\_\\%\\\\b%");
    }
}
