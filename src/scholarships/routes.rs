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
use crate::web::form::{Fields, FormErrors};
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

/// The application form's one field.
const APPLY_FIELDS: Fields = &[("statement", "Statement")];

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
    // Only the statement's own mistakes are said beside it (the service's refusals are about
    // the fund or an application made already).
    let about_the_statement = statement.is_err();
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
                // A statement that will not do is said beside it; a fund that takes no
                // application now (closed, applied already) above the funds.
                let mut ctx = Context::new();
                if about_the_statement {
                    let mut errors = FormErrors::new(
                        format!("apply-{fund_id}"),
                        APPLY_FIELDS,
                        "You have not applied yet",
                    );
                    errors.add("statement", message);
                    errors.insert(&mut ctx);
                } else {
                    ctx.insert("error", &message);
                }
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
            // Every field's message beside it, and a summary at the top.
            let mut ctx = Context::new();
            errors.insert(&mut ctx);
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

/// The board's address with its page and sort, where a decision or an assignment leads back to.
fn board_url(fund_id: Uuid, params: &PageParams) -> String {
    let mut q: Vec<String> = Vec::new();
    for (k, v) in [
        ("sort", &params.sort),
        ("dir", &params.dir),
        ("page", &params.page),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.push(format!("{k}={}", crate::web::render::percent_encode(v)));
        }
    }
    if q.is_empty() {
        format!("/scholarships/funds/{fund_id}")
    } else {
        format!("/scholarships/funds/{fund_id}?{}", q.join("&"))
    }
}

async fn board_listing(
    req: &HttpRequest,
    viewer: Viewer,
    fund_id: Uuid,
    params: &PageParams,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let as_of = ctx_as_of(req, &mut ctx, "the committee board")?;
    // Its pages keep the moment.
    let as_of_param = as_of
        .as_ref()
        .map(|a| {
            let raw = a.until - chrono::Duration::microseconds(1);
            raw.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
        })
        .unwrap_or_default();
    let mut paging = Paging::parse(queries::BOARD_LIST, params);
    let (fund, board, paging) = state(req)
        .query(move |conn| {
            let (fund, board) = match &as_of {
                Some(a) => super::as_of::board(conn, &viewer, fund_id, &mut paging, a)?,
                None => (
                    queries::fund(conn, &viewer, fund_id)?,
                    queries::board(conn, &viewer, fund_id, &mut paging)?,
                ),
            };
            Ok((fund, board, paging))
        })
        .await?;
    let pager = paging.pager(
        board.total,
        board.rows.len(),
        &format!("/scholarships/funds/{fund_id}"),
        &[("as_of", as_of_param)],
        "board",
    );
    ctx.insert("fund", &fund);
    ctx.insert("board", &board);
    ctx.insert("pager", &pager);
    // What the decision and assign forms send back, to return to this page in this order.
    ctx.insert("ranked", &(paging.sort == "average" && paging.desc));
    ctx.insert("list_sort", paging.sort);
    ctx.insert("list_dir", if paging.desc { "desc" } else { "asc" });
    render_status(
        req,
        status,
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
    query: web::Query<PageParams>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("fund", &path)?;
    board_listing(&req, viewer, id, &query, Context::new(), StatusCode::OK).await
}

#[derive(Deserialize, serde::Serialize)]
struct DecisionForm {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
    #[serde(flatten)]
    list: PageParams,
    command_id: Option<String>,
}

/// The decision form's fields, in its order.
const DECISION_FIELDS: Fields = &[
    ("outcome", "Decision"),
    ("amount", "Amount"),
    ("reason", "Reason"),
];

/// The committee's decision and its reason, from the form: every mistake at once.
fn decision_of(id: Uuid, form: &DecisionForm) -> Result<(Decision, String), FormErrors> {
    let mut errors = FormErrors::new(
        format!("decision-{id}"),
        DECISION_FIELDS,
        "The decision was not recorded",
    );
    let decision = match form.outcome.as_str() {
        "award" => errors
            .check("amount", Amount::parse(&form.amount))
            .map(Decision::Award),
        "decline" => Some(Decision::Decline),
        "waitlist" => Some(Decision::Waitlist),
        _ => {
            errors.add("outcome", "choose award, decline or waitlist");
            None
        }
    };
    let reason = errors
        .check(
            "reason",
            crate::text::check("The reason", &form.reason, 1000, crate::text::Lines::Many),
        )
        .filter(|r| {
            r.is_empty().then(|| {
                errors.add(
                    "reason",
                    "give a reason for the decision: the student and the report will show it",
                )
            });
            !r.is_empty()
        });
    errors.finish(decision.zip(reason))
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
    let (decision, reason) = match decision_of(id, &form) {
        Ok(d) => d,
        Err(errors) => {
            // The board again, the row's form open with every mistake and what was typed.
            let (fund_id, _, _) = state(&req)
                .query(move |conn| service::application_owner(conn, id))
                .await?;
            let mut ctx = Context::new();
            errors.insert(&mut ctx);
            ctx.insert("typed", &form);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return board_listing(&req, viewer, fund_id, &form.list, ctx, status).await;
        }
    };
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
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", &message);
        let res = board_listing(&req, viewer, fund_id, &form.list, ctx, StatusCode::OK).await?;
        return Ok(with_trigger(res, Some(&outcome), "AwardGranted"));
    }
    Ok(flash_redirect(
        &board_url(fund_id, &form.list),
        "success",
        &message,
    ))
}

#[derive(Deserialize)]
struct AssignForm {
    reviewer_id: String,
    #[serde(flatten)]
    list: PageParams,
    command_id: Option<String>,
}

/// The assign form's one field.
const ASSIGN_FIELDS: Fields = &[("reviewer", "Reviewer")];

#[post("/applications/{id}/reviewers")]
async fn assign_reviewer(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<AssignForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let id = parse_id("application", &path)?;
    let mut errors = FormErrors::new(
        format!("assign-{id}"),
        ASSIGN_FIELDS,
        "No reviewer was assigned",
    );
    let reviewer: Option<Uuid> = errors.check(
        "reviewer",
        form.reviewer_id
            .parse()
            .map_err(|_| "choose a reviewer from the list"),
    );
    // `Err(None)`: no reviewer was chosen; `Err(Some(_))`: the assignment was refused.
    let assigned = match reviewer {
        Some(reviewer) => {
            let ctx = command_context(&req, &viewer, form.command_id.as_deref());
            let store = state(&req).store.clone();
            let v = viewer.clone();
            state(&req)
                .run(move |conn| -> Result<_, ScholarshipsError> {
                    let (fund_id, _, _) = service::application_owner(conn, id)?;
                    service::assign_reviewer(conn, &store, &ctx, &v, id, reviewer)?;
                    Ok(fund_id)
                })
                .await
                .map_err(Some)
        }
        None => Err(None),
    };
    let fund_id = match assigned {
        Ok(fund_id) => fund_id,
        Err(refused) => {
            // A reviewer who may not review it: the board again, the message beside the row's
            // choice; anything else is answered as before.
            if let Some(e) = refused {
                match e.refusal() {
                    Some((_, message)) => errors.add("reviewer", message),
                    None => return Err(e.into()),
                }
            }
            let (fund_id, _, _) = state(&req)
                .query(move |conn| service::application_owner(conn, id))
                .await?;
            let mut ctx = Context::new();
            errors.insert(&mut ctx);
            ctx.insert("typed_reviewer", &form.reviewer_id);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return board_listing(&req, viewer, fund_id, &form.list, ctx, status).await;
        }
    };
    if is_htmx(&req) {
        let mut ctx = Context::new();
        ctx.insert("notice", "Reviewer assigned.");
        let res = board_listing(&req, viewer, fund_id, &form.list, ctx, StatusCode::OK).await?;
        return Ok(with_trigger(res, None, "ReviewerAssigned"));
    }
    Ok(flash_redirect(
        &board_url(fund_id, &form.list),
        "success",
        "Reviewer assigned.",
    ))
}

// ---------------------------------------------------------------- reviews

#[get("/reviews")]
async fn reviews_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    // Two lists on one page: "to do" reads page, sort and dir; "scored" the same with `scored_`.
    let qs = req.query_string();
    let (to_do_params, scored_params) = (
        PageParams::from_query(qs, ""),
        PageParams::from_query(qs, "scored_"),
    );
    let mut to_do = Paging::parse(queries::QUEUE_TO_DO, &to_do_params);
    let mut scored = Paging::parse(queries::QUEUE_SCORED, &scored_params).prefixed("scored_");
    let (next, to_do_page, scored_page, to_do, scored) = state(&req)
        .query(move |conn| {
            let next = queries::next_to_review(conn, &viewer, None)?;
            let a = queries::queue_page(conn, &viewer, false, &mut to_do)?;
            let b = queries::queue_page(conn, &viewer, true, &mut scored)?;
            Ok((next, a, b, to_do, scored))
        })
        .await?;
    let keep = |p: &PageParams, prefix: &str| -> Vec<(String, String)> {
        [("page", &p.page), ("sort", &p.sort), ("dir", &p.dir)]
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (format!("{prefix}{k}"), v)))
            .collect()
    };
    let (keep_scored, keep_to_do) = (keep(&scored_params, "scored_"), keep(&to_do_params, ""));
    fn borrowed(v: &[(String, String)]) -> Vec<(&str, String)> {
        v.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }
    let path = "/scholarships/reviews";
    let to_do_pager = to_do.pager(
        to_do_page.total,
        to_do_page.items.len(),
        path,
        &borrowed(&keep_scored),
        "review-queue",
    );
    let scored_pager = scored.pager(
        scored_page.total,
        scored_page.items.len(),
        path,
        &borrowed(&keep_to_do),
        "review-queue",
    );
    let mut ctx = Context::new();
    ctx.insert("next", &next);
    ctx.insert("to_do", &to_do_page);
    ctx.insert("scored", &scored_page);
    ctx.insert("to_do_pager", &to_do_pager);
    ctx.insert("scored_pager", &scored_pager);
    render(
        &req,
        "scholarships/reviews.html",
        "scholarships/_reviews.html",
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

/// The review form's fields: the rubric's criteria, then the comment.
const REVIEW_FIELDS: Fields = &[
    Rubric::CRITERIA[0],
    Rubric::CRITERIA[1],
    Rubric::CRITERIA[2],
    Rubric::CRITERIA[3],
    ("comment", "Comment"),
];

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
    let typed: Vec<Option<i32>> = raw.iter().map(|r| r.trim().parse().ok()).collect();
    // Every criterion and the comment checked: all their mistakes at once.
    let mut errors = FormErrors::new("review", REVIEW_FIELDS, "Your review is not saved");
    let scores: Vec<Option<i32>> = Rubric::CRITERIA
        .iter()
        .zip(&raw)
        .map(|((field, _), value)| errors.check(field, Scores::parse_one(value)))
        .collect();
    let scores = scores.into_iter().collect::<Option<Vec<i32>>>();
    let comment = errors.check(
        "comment",
        crate::text::check("The comment", &comment_raw, 2000, crate::text::Lines::Many),
    );
    let parsed = scores.and_then(Scores::from_checked).zip(comment);
    let (scores, comment) = match errors.finish(parsed) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let mut ctx = Context::new();
            errors.insert(&mut ctx);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return review_listing(&req, viewer, id, Some((typed, comment_raw)), ctx, status).await;
        }
    };
    let ctx = command_context(&req, &viewer, Some(&command_id));
    let store = state(&req).store.clone();
    let v = viewer.clone();
    let result = state(&req)
        .run(move |conn| service::submit_review(conn, &store, &ctx, &v, id, scores, comment))
        .await;
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
    // A report and its CSV export: a replica may serve it (`AppState::read`).
    let report = state(&req)
        .read_query(&req, move |conn| queries::report(conn, &viewer, id, limit))
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
