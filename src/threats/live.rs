//! Live reports (issue 20.5): an auto-refresh toggle, off by default and kept in the URL
//! (`?live=1&since=P`), that makes a report fragment poll itself every few seconds, with "N new
//! hits since you opened this page" counted in the viewer's scope from the position `P` the page
//! carries (the last score change it was rendered from).
//!
//! The toggle lives in the fragment it refreshes, so a poll always asks for the report as it is
//! shown now; a request that does not say (the range form of the page) keeps what the address
//! bar says (HTMX's `HX-Current-URL`).

use actix_web::HttpRequest;
use diesel::prelude::*;
use diesel::sql_types::Int8;
use serde::Deserialize;
use tera::Context;

use super::scope::AnalystScope;

/// Seconds between two refreshes.
pub const EVERY_SECONDS: u32 = 5;
/// The most score changes a count reads (beyond, the page says "at least").
const SCANNED: i64 = 100_000;

/// This request's address with the parameters `names` taken out and `then` (already encoded,
/// such as `live=1&since=42`, or empty) added at the end.
pub fn address_with(req: &HttpRequest, names: &[&str], then: &str) -> String {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .collect();
    let rest = serde_urlencoded::to_string(kept).unwrap_or_default();
    let sep = if rest.is_empty() || then.is_empty() {
        ""
    } else {
        "&"
    };
    format!("{}?{rest}{sep}{then}", req.path())
}

/// `?live=` and `?since=`.
#[derive(Debug, Clone, Default, Deserialize)]
struct LiveParams {
    live: Option<String>,
    since: Option<String>,
}

/// The page's parameters of one of these toggles: the request's, or, for an HTMX request that
/// does not name `key` (a form or link of the page built without it), what the address bar holds
/// (HTMX's `HX-Current-URL`). A toggle turned off says so (`key=0`), so that it is not taken back
/// from the address bar.
pub fn query_or_current<T: serde::de::DeserializeOwned + Default>(
    req: &HttpRequest,
    key: &str,
) -> T {
    let parse = |q: &str| serde_urlencoded::from_str::<T>(q).unwrap_or_default();
    let named = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .iter()
        .any(|(k, _)| k == key);
    if named || !crate::web::is_htmx(req) {
        return parse(req.query_string());
    }
    let current = req
        .headers()
        .get("HX-Current-URL")
        .and_then(|v| v.to_str().ok())
        .and_then(|u| u.split_once('?').map(|(_, q)| q.to_owned()))
        .unwrap_or_default();
    parse(&current)
}

/// The toggle as the request asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRequest {
    pub on: bool,
    /// The position the page was opened at, when it carries one.
    pub since: Option<i64>,
}

impl LiveRequest {
    pub fn of(req: &HttpRequest) -> LiveRequest {
        let p: LiveParams = query_or_current(req, "live");
        LiveRequest {
            on: p.live.as_deref() == Some("1"),
            since: p
                .since
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|s| *s >= 0),
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Int8)]
    n: i64,
}

/// The toggle's state for the page: the position it counts from and the new hits since.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub on: bool,
    pub since: i64,
    pub new_hits: i64,
    /// More changes came than a count reads: "at least".
    pub capped: bool,
}

/// The last score change the reports hold: where a page opened now counts from.
pub fn position_now(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query("SELECT coalesce(max(position), 0) AS n FROM threat_score_changes")
        .get_result::<Count>(conn)
        .map(|c| c.n)
}

/// New hits (first scores; rescans are not new hits) after `since` that the scope sees and that
/// pass the page's filters, and whether there may be more: only the first [`SCANNED`] score
/// changes after `since` are read, so that a page left open for hours does not read more at
/// every poll.
pub fn new_hits(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    filters: &super::filters::Filters,
    since: i64,
) -> QueryResult<(i64, bool)> {
    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = Int8)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        capped: bool,
    }
    // The hit of each change (by its primary key) answers the filters; a change whose hit the
    // reports do not hold yet passes only when there are no filters.
    let c: Counted = filters
        .hit_filters(scope.query(
            "SELECT count(*) FILTER (WHERE c.old_score IS NULL AND :visible AND :filters) AS n,
                    count(*) >= :scanned AS capped
             FROM (SELECT file_id, integration, signature, old_score FROM threat_score_changes
                   WHERE position > :since ORDER BY position LIMIT :scanned) c
             LEFT JOIN threat_signatures s ON s.name = c.signature
             LEFT JOIN threat_hits h
               ON h.file_id = c.file_id AND h.integration = c.integration AND h.signature = c.signature",
        ))
        .int8("since", since)
        .int8("scanned", SCANNED)
        .get_result(conn)?;
    Ok((c.n, c.capped))
}

/// Read what the toggle shows: nothing to count while it is off.
pub fn read(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    filters: &super::filters::Filters,
    asked: LiveRequest,
) -> QueryResult<Live> {
    let since = match asked.since {
        Some(s) => s,
        None => position_now(conn)?,
    };
    let (new_hits, capped) = if asked.on && asked.since.is_some() {
        new_hits(conn, scope, filters, since)?
    } else {
        (0, false)
    };
    Ok(Live {
        on: asked.on,
        since,
        new_hits,
        capped,
    })
}

/// The toggle's links and poll for `threats/_live.html`, which refreshes `target` (the
/// fragment it is in).
pub fn insert(ctx: &mut Context, req: &HttpRequest, live: &Live, target: &str) {
    let with = |then: &str| address_with(req, &["live", "since"], then);
    ctx.insert("live_on", &live.on);
    ctx.insert("live_every", &EVERY_SECONDS);
    ctx.insert("live_target", target);
    ctx.insert(
        "live_on_url",
        &with(&format!("live=1&since={}", live.since)),
    );
    ctx.insert("live_off_url", &with("live=0"));
    ctx.insert("live_off_push", &with(""));
    ctx.insert(
        "live_new_hits",
        &if live.capped {
            format!("At least {}", live.new_hits)
        } else {
            live.new_hits.to_string()
        },
    );
    ctx.insert("live_new_count", &live.new_hits);
}
