//! Pages of the threat-reports context: the four top-threat reports (with charts, CSV and
//! drill-downs), sessions, files, signatures, and the admins' signatures, clearances and sensors.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tera::Context;
use uuid::Uuid;

use super::commands::{parse_group, parse_score, parse_signature_name, TriageSubject};
use super::decider::ThreatsRejection;
use super::error::ThreatsError;
use super::filters::{FilterView, Filters};
use super::queries::{self, HitsOf, Report, SessionFilter};
use super::report_query::{local_input, RangeParams};
use super::scope::AnalystScope;
use super::triage::{self, TriageFilter};
use super::{api, histogram, live, service};
use crate::accounts::{Role, Viewer};
use crate::es::store;
use crate::text::{self, Lines};
use crate::web::csv::CsvExport;
use crate::web::form::{Fields, FormErrors};
use crate::web::paging::{Column, ListSpec, PageParams, Paging, Position};
use crate::web::render::{render_status, state, with_trigger};
use crate::web::{command_context, flash_redirect, is_htmx, render, AppError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .service(api::post_events)
            .service(api::openapi),
    )
    .service(
        web::scope("/threats")
            .service(report_hits)
            .service(report_count)
            .service(top_report_page)
            .service(super::search::search_page)
            .service(sessions_page)
            .service(session_page)
            .service(file_page)
            .service(signature_page)
            .configure(triage::routes)
            .configure(super::rescans::routes),
    )
    .service(
        web::scope("/admin/signatures")
            .service(admin_signatures)
            .service(set_signature)
            .service(retire_signature),
    )
    .service(web::scope("/admin/clearances").service(change_clearance))
    .service(
        web::scope("/admin/sensors")
            .service(admin_sensors)
            .service(create_sensor)
            .service(revoke_sensor),
    );
}

/// `?limit=&window=&from=&to=&format=&key=` of the report pages.
#[derive(Deserialize)]
struct ReportQuery {
    #[serde(default)]
    limit: Limit,
    #[serde(flatten)]
    range: RangeParams,
    #[serde(flatten)]
    sort: PageParams,
    #[serde(default)]
    format: Format,
    /// The row a drill-down lists the hits of.
    key: Option<String>,
    /// `count=1`: a many-key report counts its rows before it answers instead of after (what
    /// the count's link asks for where HTMX does not fetch it).
    count: Option<String>,
}

/// How many rows a report shows: 1 to 1000, 10 when not given.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
struct Limit(i64);

impl Default for Limit {
    fn default() -> Limit {
        Limit(10)
    }
}

impl TryFrom<String> for Limit {
    type Error = &'static str;
    fn try_from(raw: String) -> Result<Limit, &'static str> {
        match raw.trim() {
            "" => Ok(Limit::default()),
            s => s
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .map(Limit)
                .ok_or("limit is a number from 1 to 1000"),
        }
    }
}

/// `?format=csv` for the CSV export of a page; HTML otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
enum Format {
    #[default]
    Html,
    Csv,
}

impl TryFrom<String> for Format {
    type Error = &'static str;
    fn try_from(raw: String) -> Result<Format, &'static str> {
        match raw.as_str() {
            "" | "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            _ => Err("format is csv or html"),
        }
    }
}

fn csv_response(name: &str, header: &str, rows: Vec<Vec<String>>) -> HttpResponse {
    let header: Vec<&str> = header.split(',').collect();
    let mut export = CsvExport::new(name, &header);
    for row in rows {
        export.row(row);
    }
    export.into_response()
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A bar of a report's chart (`threats/_top.html`): its label and value are HTML text beside
/// it, so that they keep the page's font size on a phone; only the bar is drawn, `width` of
/// [`CHART_WIDTH`] (no inline styles).
#[derive(Serialize)]
struct Bar {
    key: String,
    label: String,
    value: i64,
    width: i64,
}

const CHART_WIDTH: i64 = 460;

fn bars(rows: &[queries::ReportRow], report: Report) -> Vec<Bar> {
    let max = rows.iter().map(|r| r.hits).max().unwrap_or(1).max(1);
    rows.iter()
        .map(|r| {
            let mut label = match report {
                Report::Hash => format!("{}…", &r.key[..r.key.len().min(10)]),
                _ => r.key.clone(),
            };
            if label.chars().count() > 34 {
                label = label.chars().take(33).collect::<String>() + "…";
            }
            Bar {
                key: r.key.clone(),
                label,
                value: r.hits,
                width: (r.hits * CHART_WIDTH / max).max(2),
            }
        })
        .collect()
}

#[derive(Serialize)]
struct DisplayRow<'a> {
    #[serde(flatten)]
    row: &'a queries::ReportRow,
    source_ip: &'a str,
    destination_ip: &'a str,
    signature_list: Vec<&'a str>,
}

#[tracing::instrument(skip_all, fields(report = %path))]
#[get("/top/{report}")]
async fn top_report_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let asked = ReportAsked::of(&req, &viewer, &path, query.into_inner())?;
    let live_asked = live::LiveRequest::of(&req);
    let (v, a) = (viewer.clone(), asked.clone());
    let (unfiltered, page_base, count_base) = (
        asked.link("", false),
        asked.link("", true),
        asked.link("/count", true),
    );
    let ReportAsked {
        report,
        limit,
        csv,
        zone,
        range,
        params,
        filters,
        sorted,
        hide,
        ..
    } = asked;
    let store = state(&req).store.clone();
    let (page, scope, lag, listed, live, hist) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            let (page, scope, lag, hidden) = a.read_rows(conn, &v, &store)?;
            let subject = (report == Report::Hash).then_some(TriageSubject::Hash);
            let listed = triage::list_statuses(conn, &scope, subject, &page.rows, |r| &r.key)?;
            let live = live::read(conn, &scope, &a.filters, live_asked)?;
            let hist = match csv {
                true => None,
                false => histogram::histogram(
                    conn,
                    &scope,
                    &range,
                    zone,
                    chrono::Utc::now(),
                    lag.as_ref(),
                    histogram::HitFilter::shown(None, a.filters.clone(), hidden).as_ref(),
                )?,
            };
            Ok((page, scope, lag, listed, live, hist))
        })
        .await?;
    let pager = match page.total {
        Some(total) => sorted.position(total, page.rows.len()),
        None => sorted.position_uncounted(page.rows.len(), page.more),
    };
    let rows = page.rows;
    if csv {
        let (header, lines): (&str, Vec<Vec<String>>) = match report {
            Report::Hash => (
                "md5,filename,file_type,hits,max_score,signatures,last_seen",
                rows.iter()
                    .map(|r| {
                        vec![
                            r.key.clone(),
                            r.filename.clone(),
                            r.file_type.clone(),
                            r.hits.to_string(),
                            r.max_score.to_string(),
                            r.signatures.clone(),
                            time(&r.last_seen),
                        ]
                    })
                    .collect(),
            ),
            Report::FileType => (
                "file_type,hits,max_score",
                rows.iter()
                    .map(|r| vec![r.key.clone(), r.hits.to_string(), r.max_score.to_string()])
                    .collect(),
            ),
            Report::IpPair => (
                "source_ip,destination_ip,hits,max_score",
                rows.iter()
                    .map(|r| {
                        let (s, d) = r.key.split_once(' ').unwrap_or((&r.key, ""));
                        vec![
                            s.to_owned(),
                            d.to_owned(),
                            r.hits.to_string(),
                            r.max_score.to_string(),
                        ]
                    })
                    .collect(),
            ),
            Report::Protocol => (
                "protocol,hits,max_score",
                rows.iter()
                    .map(|r| vec![r.key.clone(), r.hits.to_string(), r.max_score.to_string()])
                    .collect(),
            ),
        };
        return Ok(csv_response(
            &format!("top-{}", report.slug()),
            header,
            lines,
        ));
    }
    let display: Vec<DisplayRow> = rows
        .iter()
        .map(|r| {
            let (s, d) = r.key.split_once(' ').unwrap_or((&r.key, ""));
            DisplayRow {
                row: r,
                source_ip: s,
                destination_ip: d,
                signature_list: r.signatures.split(';').collect(),
            }
        })
        .collect();
    let mut ctx = Context::new();
    insert_lag(&mut ctx, lag.as_ref());
    listed.insert(&mut ctx, &req, &hide, "#report");
    live::insert(&mut ctx, &req, &live, "#report");
    ctx.insert("report", &report.slug());
    ctx.insert("title", report.title());
    ctx.insert("rows", &display);
    ctx.insert("bars", &bars(&rows, report));
    ctx.insert("chart_width", &CHART_WIDTH);
    ctx.insert("limit", &limit);
    let mut keep = vec![
        ("limit", limit.to_string()),
        ("sort", pager.sort.to_owned()),
        ("dir", pager.dir.to_owned()),
    ];
    keep.extend(filters.pairs());
    ctx.insert("keep", &keep);
    insert_filters(
        &mut ctx,
        &filters,
        &format!("{unfiltered}&sort={}&dir={}", pager.sort, pager.dir),
    );
    ctx.insert(
        "search_keep",
        &super::search::search_keep(&params, &filters),
    );
    let key_heading: &[(&str, &str, bool)] = match report {
        Report::Hash => &[
            ("MD5", "key", false),
            ("Filename", "", false),
            ("File type", "", false),
        ],
        Report::FileType => &[("File type", "key", false)],
        Report::IpPair => &[("Source IP", "key", false), ("Destination IP", "", false)],
        Report::Protocol => &[("Protocol", "key", false)],
    };
    let mut spec = key_heading.to_vec();
    spec.extend([("Hits", "hits", true), ("Max score", "max_score", true)]);
    if report == Report::Hash {
        spec.extend([("Signatures", "", false), ("Last seen", "last_seen", false)]);
    }
    spec.push(("Details", "", false));
    ctx.insert("headings", &sorted.headings(&spec, &page_base));
    ctx.insert("page_base", &page_base);
    ctx.insert("pager", &pager);
    ctx.insert("count_url", &count_url(&count_base, &pager, hide.hides()));
    insert_range(&mut ctx, &params, &range, zone);
    insert_histogram(
        &mut ctx,
        hist.as_ref(),
        zone,
        &format!("/threats/top/{}?limit={limit}", report.slug()),
    );
    ctx.insert("scope_all", &scope.sees_all());
    ctx.insert("groups", scope.groups());
    ctx.insert(
        "reports",
        &[
            ("hash", "File hash"),
            ("file-type", "File type"),
            ("ip-pair", "IP pair"),
            ("protocol", "Protocol"),
        ],
    );
    render(&req, "threats/top.html", "threats/_top.html", ctx)
}

/// What a report page (or its count) is asked for: the report, range, filters, page and
/// whether triaged keys are hidden, parsed from the request (a bad parameter is a 400).
#[derive(Clone)]
struct ReportAsked {
    report: Report,
    limit: i64,
    params: RangeParams,
    range: queries::TimeRange,
    filters: Filters,
    sorted: Paging,
    hide: TriageFilter,
    zone: chrono_tz::Tz,
    csv: bool,
    /// Count the rows before answering, even where the page would count them after.
    count_now: bool,
}

impl ReportAsked {
    fn of(
        req: &HttpRequest,
        viewer: &Viewer,
        slug: &str,
        query: ReportQuery,
    ) -> Result<ReportAsked, AppError> {
        let report = Report::parse(slug).ok_or(AppError::NotFound)?;
        let zone = time_zone(req, viewer);
        Ok(ReportAsked {
            report,
            limit: query.limit.0,
            range: query.range.range(chrono::Utc::now(), zone)?,
            params: query.range,
            filters: Filters::from_query(req.query_string())?,
            sorted: table_page(&queries::REPORT_COLUMNS, query.limit.0, &query.sort)?,
            hide: TriageFilter::of(req),
            zone,
            csv: query.format == Format::Csv,
            count_now: query.count.as_deref() == Some("1"),
        })
    }

    /// `/threats/top/{report}{suffix}` with the page's limit and range, and its filters when
    /// `filtered` (the base of the page's links, without sort and page).
    fn link(&self, suffix: &str, filtered: bool) -> String {
        format!(
            "/threats/top/{}{suffix}?limit={}&{}{}",
            self.report.slug(),
            self.limit,
            self.params.query_string(),
            if filtered {
                self.filters.and_query()
            } else {
                String::new()
            }
        )
    }

    /// The page's rows in the viewer's scope (with their count unless it comes after), the
    /// scope, how far the reports lag, and the keys hidden from them.
    fn read_rows(
        &self,
        conn: &mut diesel::PgConnection,
        viewer: &Viewer,
        store: &crate::es::EventStore,
    ) -> Result<ReportRead, ThreatsError> {
        let scope = AnalystScope::of(conn, viewer)?;
        let lag = queries::reports_lag(conn, store.projections())?;
        let subject = (self.report == Report::Hash).then_some(TriageSubject::Hash);
        // With "hide triaged" on, the settled hashes are left out by the query itself: the
        // pages, the total and the histogram are of the rows shown.
        let hidden = triage::hidden(conn, &scope, subject, &self.hide)?;
        // The rows first; where counting them costs more than reading them, the page asks for
        // the count after (`report_count`), unless asked to count now.
        let page = queries::report_rows(
            conn,
            &scope,
            self.report,
            &self.range,
            &self.filters,
            &self.sorted,
            &hidden,
            lag.as_ref(),
            self.count_now,
        )?;
        Ok((page, scope, lag, hidden))
    }
}

type ReportRead = (
    queries::ReportRows,
    AnalystScope,
    Option<queries::ReportsLag>,
    Vec<String>,
);

/// Where a report page's pager asks for its row count (`base`: the count's path with the page's
/// limit, range and filters): the page's own parameters.
fn count_url(base: &str, pager: &Position, hides: bool) -> String {
    format!(
        "{base}&sort={}&dir={}&page={}{}",
        pager.sort,
        pager.dir,
        pager.page,
        if hides { "&hide_triaged=1" } else { "" }
    )
}

/// The pager of a report page with its row count, which the page asks for after its rows
/// (`queries::report_rows`): the same parameters, scope and hidden keys as the page. Without
/// HTMX (a link followed), the page itself counted (`count=1`).
#[get("/top/{report}/count")]
async fn report_count(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let report = Report::parse(&path).ok_or(AppError::NotFound)?;
    if !is_htmx(&req) {
        let location = format!(
            "/threats/top/{}?{}&count=1",
            report.slug(),
            req.query_string()
        );
        return Ok(HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, location))
            .finish());
    }
    let mut asked = ReportAsked::of(&req, &viewer, &path, query.into_inner())?;
    asked.count_now = true;
    let (page_base, sorted) = (asked.link("", true), asked.sorted);
    let store = state(&req).store.clone();
    let page = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            Ok(asked.read_rows(conn, &viewer, &store)?.0)
        })
        .await?;
    let total = page.total.expect("counted now");
    let pager = sorted.position(total, page.rows.len());
    let mut ctx = Context::new();
    ctx.insert("pager", &pager);
    ctx.insert("page_base", &page_base);
    ctx.insert("table_target", "#report");
    render(&req, "threats/_pager.html", "threats/_pager.html", ctx)
}

#[get("/top/{report}/hits")]
async fn report_hits(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let report = Report::parse(&path).ok_or(AppError::NotFound)?;
    let ReportQuery {
        range: params,
        sort,
        format,
        key,
        ..
    } = query.into_inner();
    let zone = time_zone(&req, &viewer);
    let range = params.range(chrono::Utc::now(), zone)?;
    let filters = Filters::from_query(req.query_string())?;
    let csv = format == Format::Csv;
    // A page of a drill-down; its CSV export takes up to 1,000 rows a page.
    let size = if csv { 1000 } else { HITS_PAGE };
    let sorted = table_page(&queries::HIT_COLUMNS, size, &sort)?;
    let key = key
        .filter(|k| !k.is_empty() && k.len() <= 300)
        .ok_or_else(|| ThreatsError::BadQuery("key is required".into()))?;
    let (k, f) = (key.clone(), filters.clone());
    let store = state(&req).store.clone();
    let (hits, lag, hist) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            let lag = queries::reports_lag(conn, store.projections())?;
            let scope = AnalystScope::of(conn, &viewer)?;
            let hist = match csv {
                true => None,
                false => histogram::histogram(
                    conn,
                    &scope,
                    &range,
                    zone,
                    chrono::Utc::now(),
                    lag.as_ref(),
                    histogram::HitFilter::filtered(Some((report, k.clone())), f.clone()).as_ref(),
                )?,
            };
            let hits = queries::hits_of_key(conn, &viewer, report, &k, &range, &f, &sorted)?;
            Ok((hits, lag, hist))
        })
        .await?;
    if csv {
        return Ok(hits_csv("hits", &hits.hits));
    }
    let pager = sorted.position(hits.total, hits.hits.len());
    let unfiltered = format!(
        "/threats/top/{}/hits?key={}&{}",
        report.slug(),
        crate::web::render::percent_encode(&key),
        params.query_string()
    );
    let page_base = format!("{unfiltered}{}", filters.and_query());
    let hits = hits.hits;
    let mut ctx = Context::new();
    insert_lag(&mut ctx, lag.as_ref());
    ctx.insert("report", &report.slug());
    ctx.insert("title", report.title());
    ctx.insert("key", &key);
    let mut keep = vec![
        ("key", key.clone()),
        ("sort", pager.sort.to_owned()),
        ("dir", pager.dir.to_owned()),
    ];
    keep.extend(filters.pairs());
    ctx.insert("keep", &keep);
    insert_filters(
        &mut ctx,
        &filters,
        &format!("{unfiltered}&sort={}&dir={}", pager.sort, pager.dir),
    );
    ctx.insert("headings", &sorted.headings(HIT_HEADINGS, &page_base));
    ctx.insert("page_base", &page_base);
    ctx.insert("pager", &pager);
    insert_range(&mut ctx, &params, &range, zone);
    insert_histogram(
        &mut ctx,
        hist.as_ref(),
        zone,
        &format!(
            "/threats/top/{}/hits?key={}",
            report.slug(),
            crate::web::render::percent_encode(&key)
        ),
    );
    ctx.insert("hits", &hits);
    render(&req, "threats/hits.html", "threats/_hits.html", ctx)
}

/// A threat table's sort and page of `per_page` rows: a sort, direction or page it does not
/// have is a 400 that says why (DESIGN section 7).
fn table_page(
    columns: &'static [Column],
    per_page: i64,
    params: &PageParams,
) -> Result<Paging, ThreatsError> {
    Paging::parse_strict(ListSpec { columns, per_page }, params).map_err(ThreatsError::BadQuery)
}

/// The filters of a page (`threats/_filters.html`): the chips, each removing itself from
/// `base` (the page's URL with everything but the filters and the page number), and
/// `filter_qs`, the filters as a query string part that links append to keep them (and
/// `filter_query`, the same without its leading `&`).
fn insert_filters(ctx: &mut Context, filters: &Filters, base: &str) {
    ctx.insert("filters", &FilterView::new(filters, base));
    ctx.insert("filter_qs", &filters.and_query());
    ctx.insert("filter_query", &filters.query_string());
}

/// The range controls of a page: the preset, the custom ends as `datetime-local` values, and
/// the query string that keeps the range in links (`range_qs`).
fn insert_range(
    ctx: &mut Context,
    params: &RangeParams,
    range: &queries::TimeRange,
    zone: chrono_tz::Tz,
) {
    let custom = params.is_custom();
    let preset = params.preset().unwrap_or_default();
    ctx.insert("window", if custom { "custom" } else { preset.as_str() });
    ctx.insert("windows", &["1h", "24h", "7d", "30d", "all"]);
    ctx.insert(
        "range_from",
        &if custom {
            local_input(range.from, zone)
        } else {
            String::new()
        },
    );
    ctx.insert(
        "range_to",
        &if custom {
            local_input(range.to, zone)
        } else {
            String::new()
        },
    );
    ctx.insert("range_qs", &params.query_string());
}

/// The viewer's time zone (else the campus default), as the pages show times.
fn time_zone(req: &HttpRequest, viewer: &Viewer) -> chrono_tz::Tz {
    viewer.time_zone.unwrap_or(state(req).settings.time_zone)
}

/// The histogram of the page's range (`threats/_histogram.html`); a bar links to `base` (the
/// page with its other parameters) over the bar's range.
fn insert_histogram(
    ctx: &mut Context,
    hist: Option<&histogram::Histogram>,
    zone: chrono_tz::Tz,
    base: &str,
) {
    if let Some(h) = hist {
        let chart = histogram::chart(h, zone, |from, to| {
            format!(
                "{base}&window=custom&from={}&to={}",
                crate::web::render::percent_encode(from),
                crate::web::render::percent_encode(to)
            )
        });
        ctx.insert("histogram", &chart);
    }
}

/// The headings of the sessions list.
const SESSION_HEADINGS: &[(&str, &str, bool)] = &[
    ("Session", "session_id", false),
    ("Started", "start_time", false),
    ("Protocol", "protocol", false),
    ("Source", "source_ip", false),
    ("Destination", "", false),
    ("Latest score", "latest_score", true),
    ("Threat contributor", "", false),
    ("Files", "file_count", true),
    ("Sensor", "", false),
];

/// Rows per page of a list of hits.
const HITS_PAGE: i64 = 100;

/// The headings of a list of hits (`threats/_hits.html`).
const HIT_HEADINGS: &[(&str, &str, bool)] = &[
    ("File", "filename", false),
    ("Session", "", false),
    ("Signature", "signature", false),
    ("Integration", "", false),
    ("Score", "score", true),
    ("Session start", "start_time", false),
    ("Scored", "scored_at", false),
];

/// With the reports delayed: how far behind the page is ("reports are 3 s / 12,000 events
/// behind"), shown by `threats/_lag.html`.
fn insert_lag(ctx: &mut Context, lag: Option<&queries::ReportsLag>) {
    if let Some(lag) = lag {
        ctx.insert("lag", &lag.text());
    }
}

fn hits_csv(name: &str, hits: &[queries::HitRow]) -> HttpResponse {
    csv_response(
        name,
        "file_id,session_id,md5,filename,signature,integration,score,start_time,scored_at",
        hits.iter()
            .map(|h| {
                vec![
                    h.file_id.clone(),
                    h.session_id.clone(),
                    h.md5.clone(),
                    h.filename.clone(),
                    h.signature.clone(),
                    h.integration.clone(),
                    h.score.to_string(),
                    time(&h.start_time),
                    time(&h.scored_at),
                ]
            })
            .collect(),
    )
}

#[derive(Deserialize)]
struct SessionsQuery {
    #[serde(flatten)]
    filter: SessionFilter,
    #[serde(flatten)]
    range: RangeParams,
    #[serde(flatten)]
    sort: PageParams,
    #[serde(default)]
    format: Format,
    /// `?as_of=`: the list as it stood then.
    #[serde(default)]
    as_of: Option<String>,
}

/// Sessions per page (the CSV export takes up to 1,000 a page).
const SESSIONS_PAGE: i64 = 50;

#[get("/sessions")]
async fn sessions_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<SessionsQuery>,
) -> Result<HttpResponse, AppError> {
    let SessionsQuery {
        filter,
        range: params,
        sort,
        format,
        as_of: as_of_raw,
    } = query.into_inner();
    let as_of = crate::ops::as_of::parse(as_of_raw.as_deref())?;
    let csv = format == Format::Csv;
    // "In the last 24h" of a past list is the 24 hours before its moment.
    let zone = time_zone(&req, &viewer);
    let range = params.range(
        as_of.as_ref().map_or_else(chrono::Utc::now, |a| a.until),
        zone,
    )?;
    let filters = Filters::from_query(req.query_string())?;
    let size = if csv { 1000 } else { SESSIONS_PAGE };
    let sorted = table_page(&queries::SESSION_COLUMNS, size, &sort)?;
    let hide = TriageFilter::of(&req);
    let (f, h, fs, a) = (filter.clone(), hide.clone(), filters.clone(), as_of.clone());
    let (page, listed, sensors) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            if let Some(a) = &a {
                // The past: folded from the log; triage is of now, so it neither hides nor marks.
                let page = super::as_of::sessions(conn, &viewer, &f, &fs, &range, &sorted, a)?;
                let scope = AnalystScope::of(conn, &viewer)?;
                let ids: Vec<String> = page.sessions.iter().map(|s| s.session_id.clone()).collect();
                let sensors = queries::sensors_of_sessions(conn, &scope, ids)?;
                return Ok((page, triage::ListTriage::default(), sensors));
            }
            let scope = AnalystScope::of(conn, &viewer)?;
            let subject = Some(TriageSubject::Session);
            let hidden = triage::hidden(conn, &scope, subject, &h)?;
            let queries::SessionsPage { sessions, total } =
                queries::sessions(conn, &viewer, &f, &fs, &range, &sorted, &hidden)?;
            let listed =
                triage::list_statuses(conn, &scope, subject, &sessions, |s| &s.session_id)?;
            let ids: Vec<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
            let sensors = queries::sensors_of_sessions(conn, &scope, ids)?;
            Ok((queries::SessionsPage { sessions, total }, listed, sensors))
        })
        .await?;
    let pager = sorted.position(page.total, page.sessions.len());
    let sessions = page.sessions;
    if csv {
        return Ok(csv_response(
            "sessions",
            "session_id,start_time,protocol,source_ip,source_port,destination_ip,destination_port,latest_score,threat_contributor,files",
            sessions
                .iter()
                .map(|s| {
                    vec![
                        s.session_id.clone(),
                        time(&s.start_time),
                        s.protocol.clone(),
                        s.source_ip.clone(),
                        s.source_port.to_string(),
                        s.destination_ip.clone(),
                        s.destination_port.to_string(),
                        s.latest_score.map(|v| v.to_string()).unwrap_or_default(),
                        s.contributor_label().to_owned(),
                        s.file_count.to_string(),
                    ]
                })
                .collect(),
        ));
    }
    let mut ctx = Context::new();
    listed.insert(&mut ctx, &req, &hide, "#sessions");
    crate::ops::as_of::insert(&mut ctx, as_of.as_ref(), "the sessions list");
    let as_of_raw = as_of_raw
        .filter(|_| as_of.is_some())
        .map(|r| r.trim().to_owned())
        .unwrap_or_default();
    let unfiltered = format!(
        "/threats/sessions?min_score={}&{}{}",
        crate::web::render::percent_encode(&filter.min_score),
        params.query_string(),
        if as_of_raw.is_empty() {
            String::new()
        } else {
            format!("&as_of={}", crate::web::render::percent_encode(&as_of_raw))
        }
    );
    let page_base = format!("{unfiltered}{}", filters.and_query());
    insert_filters(
        &mut ctx,
        &filters,
        &format!("{unfiltered}&sort={}&dir={}", pager.sort, pager.dir),
    );
    ctx.insert("sensors", &sensors);
    ctx.insert("headings", &sorted.headings(SESSION_HEADINGS, &page_base));
    let mut keep = vec![
        ("min_score", filter.min_score.clone()),
        ("sort", pager.sort.to_owned()),
        ("dir", pager.dir.to_owned()),
    ];
    if !as_of_raw.is_empty() {
        keep.push(("as_of", as_of_raw.clone()));
    }
    keep.extend(filters.pairs());
    ctx.insert("keep", &keep);
    insert_range(&mut ctx, &params, &range, zone);
    ctx.insert("as_of_raw", &as_of_raw);
    ctx.insert("page_base", &page_base);
    ctx.insert("pager", &pager);
    ctx.insert("sessions", &sessions);
    ctx.insert("filter", &filter);
    render(&req, "threats/sessions.html", "threats/_sessions.html", ctx)
}

#[get("/sessions/{id}")]
async fn session_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    as_of: web::Query<crate::ops::as_of::AsOfQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let store = state(&req).store.clone();
    let as_of = as_of.parse()?;
    let mut ctx = Context::new();
    crate::ops::as_of::insert(&mut ctx, as_of.as_ref(), "the session");
    let (session, files, hits, lag, panel) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            if let Some(a) = &as_of {
                let (session, files, hits) = super::as_of::session(conn, &viewer, &id, a)?;
                // The past carries no forms: no triage panel.
                return Ok((session, files, hits, None, None));
            }
            let session = queries::session(conn, &viewer, &id)?;
            let files = queries::files_of_session(conn, &viewer, &id)?;
            let lag = queries::reports_lag(conn, store.projections())?;
            let hits = queries::hits_where(conn, &viewer, HitsOf::Session, &id)?;
            let scope = AnalystScope::of(conn, &viewer)?;
            let panel = triage::panel(conn, &scope, TriageSubject::Session, &id)?;
            Ok((session, files, hits, lag, Some(panel)))
        })
        .await?;
    if let Some(panel) = &panel {
        triage::insert_panel(&mut ctx, panel);
    }
    insert_lag(&mut ctx, lag.as_ref());
    ctx.insert("session", &session);
    ctx.insert("files", &files);
    ctx.insert("hits", &hits);
    render(&req, "threats/session.html", "threats/session.html", ctx)
}

#[get("/files/{id}")]
async fn file_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let store = state(&req).store.clone();
    let (file, hits, history, lag) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            let file = queries::file(conn, &viewer, &id)?;
            let lag = queries::reports_lag(conn, store.projections())?;
            let hits = queries::hits_where(conn, &viewer, HitsOf::File, &id)?;
            let history = queries::score_history(conn, &viewer, &id)?;
            Ok((file, hits, history, lag))
        })
        .await?;
    let rescans = history.iter().filter(|c| c.old_score.is_some()).count();
    let mut ctx = Context::new();
    insert_lag(&mut ctx, lag.as_ref());
    ctx.insert("file", &file);
    ctx.insert("hits", &hits);
    ctx.insert("history", &history);
    ctx.insert("rescans", &rescans);
    render(&req, "threats/file.html", "threats/file.html", ctx)
}

#[get("/signatures/{name}")]
async fn signature_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    as_of: web::Query<crate::ops::as_of::AsOfQuery>,
) -> Result<HttpResponse, AppError> {
    let name = path.into_inner();
    let as_of = as_of.parse()?;
    let mut ctx = Context::new();
    crate::ops::as_of::insert(&mut ctx, as_of.as_ref(), "the signature");
    let (sig, history, (revisions, score_chart)) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            if let Some(a) = &as_of {
                let (sig, history) = super::as_of::signature(conn, &viewer, &name, a)?;
                let read = super::revisions::read(conn, &history, a.until)?;
                let history = crate::ops::describe::history(conn, &history)?;
                return Ok((sig, history, read));
            }
            let sig = queries::signature(conn, &viewer, &name)?;
            let history = store::load_stream(conn, "signature", &sig.name)?;
            let read = super::revisions::read(conn, &history, chrono::Utc::now())?;
            let history = crate::ops::describe::history(conn, &history)?;
            Ok((sig, history, read))
        })
        .await?;
    ctx.insert("revisions", &revisions);
    ctx.insert("score_chart", &score_chart);
    ctx.insert("sig", &sig);
    ctx.insert("history", &history);
    render(
        &req,
        "threats/signature.html",
        "threats/signature.html",
        ctx,
    )
}

// ---------- admin: signatures and clearances ----------

async fn signatures_listing(
    req: &HttpRequest,
    viewer: Viewer,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let (signatures, analysts) = state(req)
        .run(move |conn| -> Result<_, ThreatsError> {
            Ok((
                queries::all_signatures(conn, &viewer)?,
                queries::analyst_clearances(conn, &viewer)?,
            ))
        })
        .await?;
    let mut groups: Vec<String> = signatures
        .iter()
        .map(|s| s.group_name.clone())
        .filter(|g| g != super::decider::RESTRICTED_GROUP)
        .collect();
    groups.sort();
    groups.dedup();
    ctx.insert("signatures", &signatures);
    ctx.insert("analysts", &analysts);
    ctx.insert("groups", &groups);
    render_status(
        req,
        status,
        "threats/admin_signatures.html",
        "threats/_admin_signatures.html",
        ctx,
    )
}

#[get("")]
async fn admin_signatures(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    signatures_listing(&req, viewer, Context::new(), StatusCode::OK).await
}

#[derive(Deserialize, Serialize)]
struct SignatureForm {
    name: String,
    group: String,
    #[serde(default)]
    default_score: String,
    #[serde(default)]
    rule_text: String,
    command_id: Option<String>,
}

/// Create or revise a signature (classifying a restricted one is revising its group).
#[post("")]
async fn set_signature(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<SignatureForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let f = form.into_inner();
    let score = match check_signature(&f) {
        Ok(score) => score,
        Err(errors) => {
            let mut ctx = Context::new();
            errors.insert(&mut ctx);
            ctx.insert("form", &f);
            return signatures_listing(&req, viewer, ctx, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let ctx = command_context(&req, &viewer, f.command_id.as_deref());
    let store = state(&req).store.clone();
    let (name, group, rule) = (f.name.clone(), f.group.clone(), f.rule_text.clone());
    let result = state(&req)
        .run(move |conn| {
            let rule = (!rule.trim().is_empty()).then_some(rule.as_str());
            service::set_signature(conn, &store, &ctx, &name, &group, score, rule)
        })
        .await;
    match result {
        Ok(outcome) => {
            let notice = format!("Signature {} saved.", f.name.trim());
            let notice = reports_applied(&req, &outcome, notice).await?;
            signatures_done(&req, viewer, &notice, &outcome, "SignatureRevised").await
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let mut ctx = Context::new();
                ctx.insert("error", &message);
                ctx.insert("form", &f);
                signatures_listing(&req, viewer, ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

/// The signature form's fields, in its order.
const SIGNATURE_FIELDS: Fields = &[
    ("name", "Name"),
    ("group", "Visibility group"),
    ("score", "Default score"),
    ("rule", "Rule text"),
];

/// Every field of the signature form checked as `service::set_signature` checks it, all the
/// mistakes at once; the default score when none.
fn check_signature(f: &SignatureForm) -> Result<Option<i64>, FormErrors> {
    let mut errors = FormErrors::new("sig", SIGNATURE_FIELDS, "The signature was not saved");
    errors.check(
        "name",
        parse_signature_name(&f.name).and_then(|n| {
            text::check("The signature name", &n, 100, Lines::One).map_err(ThreatsRejection::Text)
        }),
    );
    errors.check("group", parse_group(&f.group));
    let score = match f.default_score.trim() {
        "" => Some(None),
        s => errors.check(
            "score",
            s.parse::<i64>()
                .map_err(|_| ThreatsRejection::ScoreNotANumber)
                .and_then(|n| parse_score(n).map(|_| Some(n))),
        ),
    };
    errors.check(
        "rule",
        text::check("The rule text", &f.rule_text, 4000, Lines::Many),
    );
    errors.finish(score)
}

/// The clearance form's fields, in its order.
const CLEARANCE_FIELDS: Fields = &[("user", "Analyst"), ("group", "Group")];

/// How long an admin's signature move or clearance change waits for delayed reports.
const REPORTS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// With the reports delayed, wait until they have applied the command's events (a signature
/// moved, a clearance set first held), so that the reports opened next show it; the notice says
/// so when they are further behind than [`REPORTS_WAIT`]. Immediate with the reports inline.
async fn reports_applied(
    req: &HttpRequest,
    outcome: &crate::es::CommandOutcome,
    notice: String,
) -> Result<String, AppError> {
    let Some(position) = outcome.last_position() else {
        return Ok(notice);
    };
    let store = state(req).store.clone();
    let applied = state(req)
        .query(move |conn| {
            let hits = super::projections::HitsProjection;
            crate::es::subscriber::wait_for_projection(
                conn,
                store.projections(),
                crate::es::Projection::name(&hits),
                position,
                REPORTS_WAIT,
            )
        })
        .await?;
    Ok(if applied {
        notice
    } else {
        format!("{notice} The reports are behind the sensors and will show it once they catch up.")
    })
}

/// After an admin command on signatures or clearances: for HTMX the updated fragment with the
/// notice; without JavaScript a redirect to the page with the notice as its flash message.
async fn signatures_done(
    req: &HttpRequest,
    viewer: Viewer,
    notice: &str,
    outcome: &crate::es::CommandOutcome,
    fallback: &str,
) -> Result<HttpResponse, AppError> {
    if !is_htmx(req) {
        return Ok(flash_redirect("/admin/signatures", "success", notice));
    }
    let mut ctx = Context::new();
    ctx.insert("notice", notice);
    let res = signatures_listing(req, viewer, ctx, StatusCode::OK).await?;
    Ok(with_trigger(res, Some(outcome), fallback))
}

#[derive(Deserialize)]
struct CommandForm {
    command_id: Option<String>,
}

#[post("/{name}/retire")]
async fn retire_signature(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<CommandForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let name = path.into_inner();
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let n = name.clone();
    let outcome = state(&req)
        .run(move |conn| service::retire_signature(conn, &store, &ctx, &n))
        .await?;
    let notice = format!("Signature {name} retired.");
    signatures_done(&req, viewer, &notice, &outcome, "SignatureRetired").await
}

#[derive(Deserialize)]
struct ClearanceForm {
    username: String,
    group: String,
    action: String,
    command_id: Option<String>,
}

#[post("")]
async fn change_clearance(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<ClearanceForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let f = form.into_inner();
    let grant = match f.action.as_str() {
        "grant" => true,
        "revoke" => false,
        _ => return Err(AppError::BadRequest("action is grant or revoke".into())),
    };
    // The analyst and the group checked against what exists, both at once.
    let (u, g) = (f.username.clone(), f.group.clone());
    let errors = state(&req)
        .run(move |conn| -> Result<_, ThreatsError> {
            let mut errors =
                FormErrors::new("cl", CLEARANCE_FIELDS, "The clearance was not changed");
            service::check_clearance(conn, &mut errors, &u, &g, grant)?;
            Ok(errors)
        })
        .await?;
    if !errors.is_empty() {
        let mut ctx = Context::new();
        errors.insert(&mut ctx);
        ctx.insert(
            "clearance_form",
            &serde_json::json!({"username": f.username, "group": f.group}),
        );
        return signatures_listing(&req, viewer, ctx, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let ctx = command_context(&req, &viewer, f.command_id.as_deref());
    let store = state(&req).store.clone();
    let (u, g) = (f.username.clone(), f.group.clone());
    let result = state(&req)
        .run(move |conn| service::change_clearance(conn, &store, &ctx, &u, &g, grant))
        .await;
    match result {
        Ok(outcome) => {
            let (what, fallback) = if grant {
                ("granted to", "ClearanceGranted")
            } else {
                ("revoked from", "ClearanceRevoked")
            };
            let notice = format!("Clearance {} {what} {}.", f.group.trim(), f.username.trim());
            let notice = reports_applied(&req, &outcome, notice).await?;
            signatures_done(&req, viewer, &notice, &outcome, fallback).await
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let mut ctx = Context::new();
                ctx.insert("clearance_error", &message);
                signatures_listing(&req, viewer, ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

// ---------- admin: sensors ----------

async fn sensors_listing(
    req: &HttpRequest,
    viewer: Viewer,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let sensors = state(req)
        .run(move |conn| queries::all_sensors(conn, &viewer))
        .await?;
    ctx.insert("sensors", &sensors);
    render_status(
        req,
        status,
        "threats/admin_sensors.html",
        "threats/_admin_sensors.html",
        ctx,
    )
}

#[get("")]
async fn admin_sensors(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    sensors_listing(&req, viewer, Context::new(), StatusCode::OK).await
}

#[derive(Deserialize)]
struct SensorForm {
    name: String,
    command_id: Option<String>,
}

/// The registration form's one field.
const SENSOR_FIELDS: Fields = &[("name", "Name")];

/// Register a sensor: the token is shown on this response only (it is not stored).
#[post("")]
async fn create_sensor(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<SensorForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let f = form.into_inner();
    // No idempotency key here: a replayed outcome could not show the token again.
    let _ = f.command_id;
    let ctx = command_context(&req, &viewer, None);
    let store = state(&req).store.clone();
    let name = f.name.clone();
    let result = state(&req)
        .run(move |conn| service::create_sensor(conn, &store, &ctx, &name))
        .await;
    let mut ctx = Context::new();
    match result {
        Ok((id, token)) => {
            ctx.insert(
                "created",
                &serde_json::json!({"id": id, "name": f.name.trim(), "token": token}),
            );
            let res = sensors_listing(&req, viewer, ctx, StatusCode::OK).await?;
            Ok(with_trigger(res, None, "SensorRegistered"))
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                // Every refusal of a registration is about its name: said beside it.
                let mut errors =
                    FormErrors::new("sensor", SENSOR_FIELDS, "The sensor was not registered");
                errors.add("name", message);
                errors.insert(&mut ctx);
                ctx.insert("sensor_name", &f.name);
                sensors_listing(&req, viewer, ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

/// A revocation's one "field": the sensor of its row.
const REVOKE_FIELDS: Fields = &[("sensor", "Sensor")];

#[post("/{id}/revoke")]
async fn revoke_sensor(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<CommandForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let id: Uuid = path.parse().map_err(|_| ThreatsError::BadId {
        what: "sensor",
        raw: path.chars().take(40).collect(),
    })?;
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let revoked = state(&req)
        .run(move |conn| service::revoke_sensor(conn, &store, &ctx, id))
        .await;
    let outcome = match revoked {
        Ok(outcome) => outcome,
        Err(e) => match e.refusal() {
            // Revoked already (another tab, another admin): the page again, said in the row.
            // A sensor that does not exist has no row: answered as any other refusal.
            Some((status, message))
                if matches!(
                    e,
                    ThreatsError::Rejected(ThreatsRejection::SensorAlreadyRevoked)
                ) =>
            {
                let mut errors = FormErrors::new(
                    format!("revoke-{id}"),
                    REVOKE_FIELDS,
                    "The sensor was not revoked",
                );
                errors.add("sensor", message);
                let mut ctx = Context::new();
                errors.insert(&mut ctx);
                return sensors_listing(&req, viewer, ctx, status).await;
            }
            _ => return Err(e.into()),
        },
    };
    let notice = "Sensor revoked: its token no longer works.";
    if !is_htmx(&req) {
        return Ok(flash_redirect("/admin/sensors", "success", notice));
    }
    let mut ctx = Context::new();
    ctx.insert("notice", notice);
    let res = sensors_listing(&req, viewer, ctx, StatusCode::OK).await?;
    Ok(with_trigger(res, Some(&outcome), "SensorRevoked"))
}
