//! Pages of the scholarships context under `/scholarships`. Every action works as a plain form
//! (303 and a flash) and, with HTMX, swaps its fragment in place and sends `HX-Trigger`.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;
use uuid::Uuid;

use super::commands::{Amount, Decision, Rubric, Scores};
use super::error::{parse_id, ScholarshipsError};
use super::queries;
use super::service::{self, NewFund};
use crate::accounts::{Role, Viewer};
use crate::web::csv::CsvExport;
use crate::web::paging::{PageParams, Paging};
use crate::web::render::{render_status, state, with_trigger};
use crate::web::{command_context, flash_redirect, is_htmx, render, AppError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/scholarships")
            .service(student_home)
            .service(apply)
            .service(respond_to_award)
            .service(funds_page)
            .service(create_fund)
            .service(set_window)
            .service(report_page)
            .service(board_page)
            .service(decide)
            .service(assign_reviewer)
            .service(reviews_page)
            .service(review_form)
            .service(submit_review)
            .service(application_page),
    );
}

/// A free-text field (lines allowed) by the one rule of `crate::text`.
fn text_field(name: &str, value: &str, max_chars: usize) -> Result<String, ScholarshipsError> {
    crate::text::check(name, value, max_chars, crate::text::Lines::Many)
        .map_err(ScholarshipsError::Invalid)
}

// ---------------------------------------------------------------- students

/// How long a student's page waits for the reaction to their enrollment (none when this process
/// runs no subscribers, so a page never waits for a subscriber that may not run anywhere).
fn reaction_wait(req: &HttpRequest) -> Option<std::time::Duration> {
    state(req)
        .settings
        .run_subscribers
        .then_some(std::time::Duration::from_secs(2))
}

/// A student's page shows awards as their enrollment left them: wait until the enrollment
/// reaction (a catch-up subscriber) has handled the student's latest `Enrolled`/`Withdrawn`.
fn wait_for_reaction(
    conn: &mut diesel::PgConnection,
    viewer: &Viewer,
    wait: Option<std::time::Duration>,
) -> diesel::QueryResult<()> {
    let Some(timeout) = wait.filter(|_| viewer.role == Role::Student) else {
        return Ok(());
    };
    if !super::reactor::wait_for_student(conn, viewer.user_id, timeout)? {
        tracing::warn!(
            student = %viewer.user_id,
            "the enrollment reaction is behind; showing the awards as they are"
        );
    }
    Ok(())
}

async fn student_listing(
    req: &HttpRequest,
    viewer: Viewer,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let wait = reaction_wait(req);
    let as_of = ctx_as_of(req, &mut ctx, "your scholarships")?;
    let (funds, applications) = state(req)
        .query(move |conn| {
            if let Some(a) = &as_of {
                return super::as_of::student_page(conn, &viewer, a);
            }
            wait_for_reaction(conn, &viewer, wait)?;
            Ok((
                queries::open_funds(conn, &viewer)?,
                queries::my_applications(conn, &viewer)?,
            ))
        })
        .await?;
    ctx.insert("funds", &funds);
    ctx.insert("applications", &applications);
    render_status(
        req,
        status,
        "scholarships/student.html",
        "scholarships/_student.html",
        ctx,
    )
}

#[get("")]
async fn student_home(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    match viewer.role {
        Role::Student => student_listing(&req, viewer, Context::new(), StatusCode::OK).await,
        Role::Staff => Ok(HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/scholarships/funds"))
            .finish()),
        _ => Err(AppError::Forbidden(
            "Scholarships are for students and the committee.".into(),
        )),
    }
}

#[derive(Deserialize)]
struct ApplyForm {
    statement: String,
    command_id: Option<String>,
}

#[tracing::instrument(skip_all, fields(fund = %path))]
#[post("/funds/{id}/apply")]
async fn apply(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<ApplyForm>,
) -> Result<HttpResponse, AppError> {
    let fund_id = parse_id("fund", &path)?;
    let form = form.into_inner();
    let statement = text_field("The statement", &form.statement, 2000).and_then(|s| {
        if s.is_empty() {
            Err(ScholarshipsError::Invalid(
                "Write a short statement: why this fund, why you.".into(),
            ))
        } else {
            Ok(s)
        }
    });
    let result = match statement {
        Ok(statement) => {
            let ctx = command_context(&req, &viewer, form.command_id.as_deref());
            let store = state(&req).store.clone();
            let v = viewer.clone();
            let today = queries::today();
            state(&req)
                .run(move |conn| service::apply(conn, &store, &ctx, &v, fund_id, statement, today))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) if is_htmx(&req) => {
            let mut ctx = Context::new();
            ctx.insert("notice", "Your application is submitted.");
            let res = student_listing(&req, viewer, ctx, StatusCode::OK).await?;
            Ok(with_trigger(res, None, "ScholarshipApplied"))
        }
        Ok(_) => Ok(flash_redirect(
            "/scholarships",
            "success",
            "Your application is submitted.",
        )),
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let mut ctx = Context::new();
                ctx.insert("error", &message);
                ctx.insert("error_fund", &fund_id);
                ctx.insert("statement", &form.statement);
                student_listing(&req, viewer, ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum AwardResponse {
    Accept,
    Refuse,
}

#[derive(Deserialize)]
struct AwardResponseForm {
    response: AwardResponse,
    command_id: Option<String>,
}

#[post("/applications/{id}/award")]
async fn respond_to_award(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<AwardResponseForm>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id("application", &path)?;
    let accept = matches!(form.response, AwardResponse::Accept);
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let v = viewer.clone();
    let outcome = state(&req)
        .run(move |conn| service::respond_to_award(conn, &store, &ctx, &v, id, accept))
        .await?;
    let message = match (
        accept,
        outcome.event_types.iter().any(|t| t == "AwardDisbursed"),
    ) {
        (true, true) => "You accepted the award. You are enrolled, so it is disbursed.",
        (true, false) => "You accepted the award. It will be disbursed once you are enrolled.",
        (false, _) => "You turned the award down.",
    };
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", message);
        let res = student_listing(&req, viewer, ctx, StatusCode::OK).await?;
        return Ok(with_trigger(res, Some(&outcome), "AwardAccepted"));
    }
    Ok(flash_redirect("/scholarships", "success", message))
}

/// `?as_of=` of a GET (a post's re-render shows now): the moment, with the banner's values put
/// into `ctx`.
fn ctx_as_of(
    req: &HttpRequest,
    ctx: &mut Context,
    what: &str,
) -> Result<Option<crate::ops::as_of::AsOf>, AppError> {
    let as_of = if req.method() == actix_web::http::Method::GET {
        web::Query::<crate::ops::as_of::AsOfQuery>::from_query(req.query_string())
            .map_err(|_| AppError::BadRequest("That address has a query it cannot read.".into()))?
            .parse()?
    } else {
        None
    };
    crate::ops::as_of::insert(ctx, as_of.as_ref(), what);
    Ok(as_of)
}

// ---------------------------------------------------------------- funds (staff)

async fn funds_listing(
    req: &HttpRequest,
    viewer: Viewer,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let as_of = ctx_as_of(req, &mut ctx, "the funds")?;
    let funds = state(req)
        .query(move |conn| match &as_of {
            Some(a) => super::as_of::funds_for_staff(conn, &viewer, a),
            None => queries::funds_for_staff(conn, &viewer),
        })
        .await?;
    // Sorted and paged here, the same for the present and for an "as of" view.
    let params: PageParams = web::Query::<PageParams>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let mut paging = Paging::parse(queries::FUND_LIST, &params);
    let mut funds = funds;
    queries::sort_funds(&mut funds, paging.sort, paging.desc);
    let total = funds.len() as i64;
    paging.clamp(total);
    let funds: Vec<_> = funds
        .into_iter()
        .skip(paging.offset() as usize)
        .take(paging.limit() as usize)
        .collect();
    let as_of_param: String =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("as_of").cloned())
            .unwrap_or_default();
    let pager = paging.pager(
        total,
        funds.len(),
        "/scholarships/funds",
        &[("as_of", as_of_param)],
        "funds",
    );
    ctx.insert("pager", &pager);
    ctx.insert("funds", &funds);
    // The terms a fund may be for: the current season's and the next five (a fund for "fall
    // 2027" was accepted when the term was typed).
    let today = chrono::Utc::now().date_naive() - chrono::Duration::days(124);
    ctx.insert(
        "terms",
        &crate::enrollment::commands::Term::upcoming(today, 6),
    );
    render_status(
        req,
        status,
        "scholarships/funds.html",
        "scholarships/_funds.html",
        ctx,
    )
}

#[get("/funds")]
async fn funds_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    funds_listing(&req, viewer, Context::new(), StatusCode::OK).await
}

#[derive(Deserialize, serde::Serialize)]
struct FundForm {
    name: String,
    term: String,
    budget: String,
    criteria: String,
    opens_on: String,
    closes_on: String,
    command_id: Option<String>,
}

#[tracing::instrument(skip_all)]
#[post("/funds")]
async fn create_fund(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<FundForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let f = form.into_inner();
    let parsed = NewFund::parse(
        &f.name,
        &f.term,
        &f.budget,
        &f.criteria,
        &f.opens_on,
        &f.closes_on,
    );
    let fund = match parsed {
        Ok(fund) => fund,
        Err(errors) => {
            // Every field's message beside it, and one line that says how many.
            let mut ctx = Context::new();
            let n = errors.len();
            ctx.insert(
                "error",
                &format!(
                    "The fund was not created: correct the {} marked below.",
                    if n == 1 {
                        "field".to_owned()
                    } else {
                        format!("{n} fields")
                    }
                ),
            );
            ctx.insert("errors", &errors);
            ctx.insert("form", &f);
            return funds_listing(&req, viewer, ctx, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    };
    let ctx = command_context(&req, &viewer, f.command_id.as_deref());
    let store = state(&req).store.clone();
    let v = viewer.clone();
    let result = state(&req)
        .run(move |conn| service::create_fund(conn, &store, &ctx, &v, fund))
        .await;
    match result {
        Ok(id) if is_htmx(&req) => {
            let mut ctx = Context::new();
            ctx.insert("notice", &format!("Fund {} created.", f.name.trim()));
            ctx.insert("created", &id);
            let res = funds_listing(&req, viewer, ctx, StatusCode::OK).await?;
            Ok(with_trigger(res, None, "FundCreated"))
        }
        Ok(id) => Ok(flash_redirect(
            &format!("/scholarships/funds/{id}"),
            "success",
            &format!(
                "Fund {} created. Open it when applications may start.",
                f.name.trim()
            ),
        )),
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let mut ctx = Context::new();
                ctx.insert("error", &message);
                ctx.insert("form", &f);
                funds_listing(&req, viewer, ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
struct WindowForm {
    /// `true` opens the fund for applications, `false` closes it.
    open: bool,
    command_id: Option<String>,
}

#[post("/funds/{id}/window")]
async fn set_window(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<WindowForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("fund", &path)?;
    let open = form.open;
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let v = viewer.clone();
    state(&req)
        .run(move |conn| service::set_open(conn, &store, &ctx, &v, id, open))
        .await?;
    let (message, event) = if open {
        ("The fund is open for applications.", "FundOpened")
    } else {
        ("The fund is closed to new applications.", "FundClosed")
    };
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", message);
        let res = funds_listing(&req, viewer, ctx, StatusCode::OK).await?;
        return Ok(with_trigger(res, None, event));
    }
    let back = if req
        .headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .is_some_and(|r| r.ends_with(&format!("/scholarships/funds/{id}")))
    {
        format!("/scholarships/funds/{id}")
    } else {
        "/scholarships/funds".to_owned()
    };
    Ok(flash_redirect(&back, "success", message))
}

// ---------------------------------------------------------------- committee board

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

async fn board_listing(
    req: &HttpRequest,
    viewer: Viewer,
    fund_id: Uuid,
    page: i64,
    mut ctx: Context,
) -> Result<HttpResponse, AppError> {
    let as_of = ctx_as_of(req, &mut ctx, "the committee board")?;
    if let Some(a) = &as_of {
        // Its pages keep the moment.
        let raw = a.until - chrono::Duration::microseconds(1);
        ctx.insert(
            "as_of_qs",
            &format!("&as_of={}", raw.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
        );
    }
    let (fund, board) = state(req)
        .query(move |conn| match &as_of {
            Some(a) => super::as_of::board(conn, &viewer, fund_id, page, a),
            None => Ok((
                queries::fund(conn, &viewer, fund_id)?,
                queries::board(conn, &viewer, fund_id, page)?,
            )),
        })
        .await?;
    ctx.insert("fund", &fund);
    ctx.insert("board", &board);
    render(
        req,
        "scholarships/board.html",
        "scholarships/_board.html",
        ctx,
    )
}

#[get("/funds/{id}")]
async fn board_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("fund", &path)?;
    board_listing(&req, viewer, id, query.page.unwrap_or(1), Context::new()).await
}

#[derive(Deserialize)]
struct DecisionForm {
    outcome: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    page: Option<i64>,
    command_id: Option<String>,
}

/// The committee's decision and its reason, from the form.
fn decision_of(form: &DecisionForm) -> Result<(Decision, String), ScholarshipsError> {
    let decision = match form.outcome.as_str() {
        "award" => Decision::Award(
            Amount::parse(&form.amount)
                .map_err(|e| ScholarshipsError::Invalid(format!("Award amount: {e}.")))?,
        ),
        "decline" => Decision::Decline,
        "waitlist" => Decision::Waitlist,
        _ => {
            return Err(ScholarshipsError::Invalid(
                "Choose award, decline or waitlist.".into(),
            ))
        }
    };
    let reason = text_field("The reason", &form.reason, 1000)?;
    if reason.is_empty() {
        return Err(ScholarshipsError::Invalid(
            "Give a reason for the decision: the student and the report will show it.".into(),
        ));
    }
    Ok((decision, reason))
}

#[tracing::instrument(skip_all, fields(application = %path))]
#[post("/applications/{id}/decision")]
async fn decide(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("application", &path)?;
    let form = form.into_inner();
    let (decision, reason) = decision_of(&form)?;
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let v = viewer.clone();
    let (fund_id, outcome) = state(&req)
        .run(move |conn| -> Result<_, ScholarshipsError> {
            let (fund_id, _, _) = service::application_owner(conn, id)?;
            let outcome = service::decide(conn, &store, &ctx, &v, id, decision, reason)?;
            Ok((fund_id, outcome))
        })
        .await?;
    let message = match decision {
        Decision::Award(a) => format!("Awarded {a}."),
        Decision::Decline => "Declined.".to_owned(),
        Decision::Waitlist => "Waitlisted.".to_owned(),
    };
    let page = form.page.unwrap_or(1);
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", &message);
        let res = board_listing(&req, viewer, fund_id, page, ctx).await?;
        return Ok(with_trigger(res, Some(&outcome), "AwardGranted"));
    }
    Ok(flash_redirect(
        &format!("/scholarships/funds/{fund_id}?page={page}"),
        "success",
        &message,
    ))
}

#[derive(Deserialize)]
struct AssignForm {
    reviewer_id: String,
    page: Option<i64>,
    command_id: Option<String>,
}

#[post("/applications/{id}/reviewers")]
async fn assign_reviewer(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("application", &path)?;
    let reviewer: Uuid = form
        .reviewer_id
        .parse()
        .map_err(|_| ScholarshipsError::Invalid("Choose a reviewer.".into()))?;
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let v = viewer.clone();
    let fund_id = state(&req)
        .run(move |conn| -> Result<_, ScholarshipsError> {
            let (fund_id, _, _) = service::application_owner(conn, id)?;
            service::assign_reviewer(conn, &store, &ctx, &v, id, reviewer)?;
            Ok(fund_id)
        })
        .await?;
    let page = form.page.unwrap_or(1);
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", "Reviewer assigned.");
        let res = board_listing(&req, viewer, fund_id, page, ctx).await?;
        return Ok(with_trigger(res, None, "ReviewerAssigned"));
    }
    Ok(flash_redirect(
        &format!("/scholarships/funds/{fund_id}?page={page}"),
        "success",
        "Reviewer assigned.",
    ))
}

// ---------------------------------------------------------------- reviews

#[get("/reviews")]
async fn reviews_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let queue = state(&req)
        .query(move |conn| queries::reviewer_queue(conn, &viewer))
        .await?;
    let mut ctx = Context::new();
    ctx.insert("queue", &queue);
    render(
        &req,
        "scholarships/reviews.html",
        "scholarships/reviews.html",
        ctx,
    )
}

async fn review_listing(
    req: &HttpRequest,
    viewer: Viewer,
    id: Uuid,
    typed: Option<(Vec<Option<i32>>, String)>,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let (app, mine, next) = state(req)
        .query(move |conn| {
            let (app, mine) = queries::application_for_review(conn, &viewer, id)?;
            Ok((app, mine, queries::next_to_review(conn, &viewer, Some(id))?))
        })
        .await?;
    // What the form shows: what was just typed (after an error), else the current revision.
    let (values, comment) = match typed {
        Some(t) => t,
        None => match &mine {
            Some(m) => (
                m.scores.iter().map(|v| Some(*v)).collect(),
                m.comment.clone(),
            ),
            None => (Vec::new(), String::new()),
        },
    };
    let criteria: Vec<serde_json::Value> = Rubric::CRITERIA
        .iter()
        .zip(Rubric::DESCRIPTIONS)
        .enumerate()
        .map(|(i, ((field, label), description))| {
            serde_json::json!({ "field": field, "label": label, "description": description,
                "value": values.get(i).copied().flatten() })
        })
        .collect();
    let scale: Vec<serde_json::Value> = (Rubric::MIN..=Rubric::MAX)
        .zip(Rubric::SCALE)
        .map(|(value, meaning)| serde_json::json!({ "value": value, "meaning": meaning }))
        .collect();
    ctx.insert("scale", &scale);
    ctx.insert("next", &next);
    ctx.insert("app", &app);
    ctx.insert("criteria", &criteria);
    ctx.insert("comment", &comment);
    ctx.insert("mine", &mine);
    ctx.insert("min", &Rubric::MIN);
    ctx.insert("max", &Rubric::MAX);
    render_status(
        req,
        status,
        "scholarships/review.html",
        "scholarships/_review_form.html",
        ctx,
    )
}

#[get("/applications/{id}/review")]
async fn review_form(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("application", &path)?;
    review_listing(&req, viewer, id, None, Context::new(), StatusCode::OK).await
}

#[tracing::instrument(skip_all, fields(application = %path))]
#[post("/applications/{id}/review")]
async fn submit_review(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("application", &path)?;
    let fields = form.into_inner();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let raw: Vec<&str> = Rubric::CRITERIA.iter().map(|(f, _)| get(f)).collect();
    let command_id = get("command_id").to_owned();
    let comment_raw = get("comment").to_owned();
    let parsed = Scores::parse(&raw)
        .map_err(ScholarshipsError::Invalid)
        .and_then(|s| Ok((s, text_field("The comment", &comment_raw, 2000)?)));
    let result = match parsed {
        Ok((scores, comment)) => {
            let ctx = command_context(&req, &viewer, Some(&command_id));
            let store = state(&req).store.clone();
            let v = viewer.clone();
            state(&req)
                .run(move |conn| {
                    service::submit_review(conn, &store, &ctx, &v, id, scores, comment)
                })
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(outcome) => {
            let message = if outcome.event_types.iter().any(|t| t == "ReviewRevised") {
                "Your review is revised; the earlier revision stays in the history."
            } else {
                "Your review is saved."
            };
            if is_htmx(&req) {
                let mut ctx = Context::new();
                ctx.insert("notice", message);
                let res = review_listing(&req, viewer, id, None, ctx, StatusCode::OK).await?;
                return Ok(with_trigger(res, Some(&outcome), "ReviewSubmitted"));
            }
            Ok(flash_redirect("/scholarships/reviews", "success", message))
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let mut ctx = Context::new();
                ctx.insert("error", &message);
                let typed: Vec<Option<i32>> = raw.iter().map(|r| r.trim().parse().ok()).collect();
                review_listing(&req, viewer, id, Some((typed, comment_raw)), ctx, status).await
            }
            None => Err(e.into()),
        },
    }
}

// ---------------------------------------------------------------- report and history

/// `?format=html` (the default) or `?format=csv`.
#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum ReportFormat {
    #[default]
    Html,
    Csv,
}

#[derive(Deserialize)]
struct ReportQuery {
    #[serde(default)]
    format: ReportFormat,
}

pub const REPORT_CSV_HEADER: &str =
    "recorded_at,application_id,student,decision,amount,reason,actor";

#[get("/funds/{id}/report")]
async fn report_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("fund", &path)?;
    let csv = query.format == ReportFormat::Csv;
    let limit = (!csv).then_some(queries::REPORT_HISTORY_LINES);
    let report = state(&req)
        .query(move |conn| queries::report(conn, &viewer, id, limit))
        .await?;
    if csv {
        let header: Vec<&str> = REPORT_CSV_HEADER.split(',').collect();
        let mut export = CsvExport::new(format!("fund-{id}-report"), &header);
        for l in &report.history {
            export.row([
                l.recorded_at.to_rfc3339(),
                l.application_id.to_string(),
                l.student.clone(),
                l.kind.clone(),
                // Plain decimal for spreadsheets: 1500.00, no currency sign or grouping.
                l.amount_cents
                    .map(|c| {
                        format!(
                            "{}{}.{:02}",
                            if c < 0 { "-" } else { "" },
                            c.abs() / 100,
                            c.abs() % 100
                        )
                    })
                    .unwrap_or_default(),
                l.reason.clone(),
                l.actor.clone(),
            ]);
        }
        return Ok(export.into_response());
    }
    let mut ctx = Context::new();
    ctx.insert("report", &report);
    render(
        &req,
        "scholarships/report.html",
        "scholarships/report.html",
        ctx,
    )
}

#[get("/applications/{id}")]
async fn application_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = parse_id("application", &path)?;
    let wait = reaction_wait(&req);
    let mut ctx = Context::new();
    let as_of = ctx_as_of(&req, &mut ctx, "the application")?;
    let (app, history) = state(&req)
        .query(move |conn| {
            wait_for_reaction(conn, &viewer, wait)?;
            let app = queries::application(conn, &viewer, id)?;
            let history = queries::history(conn, &viewer, &app)?;
            match &as_of {
                Some(a) => super::as_of::application(conn, app, history, a),
                None => Ok((app, history)),
            }
        })
        .await?;
    ctx.insert("app", &app);
    ctx.insert("history", &history);
    render(
        &req,
        "scholarships/application.html",
        "scholarships/application.html",
        ctx,
    )
}
