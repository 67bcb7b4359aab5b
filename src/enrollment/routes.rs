//! Enrollment pages: sign-up, the student's own enrollment, the staff pipeline and a student's
//! page for staff. Actions post through HTMX (the progress fragment is swapped in place) or as
//! plain forms (303 with a flash).

use std::collections::BTreeMap;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tera::Context;
use uuid::Uuid;

use super::commands::{self, Decision, Document, EnrollmentCommand, Term};
use super::decider::{self, Action, EnrollmentState, Stage, Step};
use super::error::EnrollmentError;
use super::queries::{self, PipelineFilter, Progress};
use super::service;
use crate::accounts::{sessions, AccountError, NewAccount, Role, Viewer};
use crate::web::csv::CsvExport;
use crate::web::form::{Fields, FormErrors};
use crate::web::paging::{PageParams, Paging};
use crate::web::render::{is_htmx, render_status, state, with_trigger};
use crate::web::{command_context, flash_redirect, render, text_field, AppError};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/signup").service(signup_form).service(signup))
        .service(
            web::scope("/enrollment")
                .service(my_enrollment)
                .service(student_action)
                .service(pipeline_page)
                .service(student_page)
                .service(staff_action),
        );
}

// ---------------------------------------------------------------- sign-up

/// The sign-up form's fields, in its order.
const SIGNUP_FIELDS: Fields = &[
    ("username", "Username"),
    ("name", "Your name"),
    ("email", "Email"),
    ("password", "Password"),
    ("term", "Term"),
];

fn signup_context(error: Option<&str>, form: Option<&SignupForm>) -> Context {
    let mut ctx = Context::new();
    ctx.insert("terms", &Term::upcoming(Utc::now().date_naive(), 4));
    if let Some(e) = error {
        ctx.insert("error", e);
    }
    if let Some(f) = form {
        ctx.insert(
            "form",
            &serde_json::json!({
                "username": f.username, "display_name": f.display_name, "email": f.email, "term": f.term,
            }),
        );
    }
    ctx
}

/// Every field of the sign-up form checked: the account and term, or all the mistakes.
fn check_signup(form: &SignupForm) -> (Option<(NewAccount, Term)>, FormErrors) {
    let mut errors = FormErrors::new("signup", SIGNUP_FIELDS, "You are not signed up yet");
    if form.display_name.trim().is_empty() {
        errors.add("name", "please give your name");
    }
    let account = NewAccount::check(
        &mut errors,
        &form.username,
        &form.display_name,
        &form.email,
        "student",
        &form.password,
    );
    let term = errors.check(
        "term",
        Term::parse(&form.term).map_err(|m| format!("choose a term: {m}")),
    );
    (account.zip(term), errors)
}

#[get("")]
async fn signup_form(req: HttpRequest, viewer: Option<Viewer>) -> Result<HttpResponse, AppError> {
    if let Some(v) = viewer {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", crate::accounts::routes::home_for(v.role)))
            .finish());
    }
    render(
        &req,
        "enrollment/signup.html",
        "enrollment/signup.html",
        signup_context(None, None),
    )
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    term: String,
}

#[tracing::instrument(skip_all, fields(username = %form.username))]
#[post("")]
async fn signup(
    req: HttpRequest,
    viewer: Option<Viewer>,
    form: web::Form<SignupForm>,
) -> Result<HttpResponse, AppError> {
    if let Some(v) = viewer {
        // Already signed in: no second account from the same session.
        return Ok(flash_redirect(
            crate::accounts::routes::home_for(v.role),
            "warning",
            "You are already signed in. Sign out to create another account.",
        ));
    }
    let form = form.into_inner();
    let refuse = |status: StatusCode, message: String| {
        render_status(
            &req,
            status,
            "enrollment/signup.html",
            "enrollment/signup.html",
            signup_context(Some(&message), Some(&form)),
        )
    };
    let show_errors = |errors: FormErrors| {
        let mut ctx = signup_context(None, Some(&form));
        errors.insert(&mut ctx);
        render_status(
            &req,
            StatusCode::UNPROCESSABLE_ENTITY,
            "enrollment/signup.html",
            "enrollment/signup.html",
            ctx,
        )
    };
    let client_ip = crate::accounts::routes::client_ip(&req);
    let (parsed, errors) = check_signup(&form);
    let Some((account, term)) = parsed.filter(|_| errors.is_empty()) else {
        // Whether the username is free is said with the other mistakes, but asking counts as a
        // sign-up from the address, so that the form is no cheaper an oracle than signing up.
        if crate::accounts::service::parse_username(&form.username).is_err() {
            return show_errors(errors);
        }
        let (ip, username) = (client_ip.clone(), form.username.clone());
        let checked = state(&req)
            .run(move |conn| -> Result<_, AccountError> {
                let mut errors = errors;
                crate::accounts::throttle::reserve_sign_up(conn, &ip)?;
                NewAccount::check_free(conn, &mut errors, &username)?;
                Ok(errors)
            })
            .await;
        return match checked {
            Ok(errors) => show_errors(errors),
            Err(e) => match e.refusal() {
                Some((status, message)) => refuse(status, message),
                None => Err(e.into()),
            },
        };
    };
    let store = state(&req).store.clone();
    let request_id = req
        .extensions()
        .get::<crate::web::RequestId>()
        .map(|r| r.0.clone());
    let created = state(&req)
        .run(move |conn| -> Result<_, EnrollmentError> {
            let mut meta = crate::es::Metadata::new(crate::es::Actor::System("signup".into()));
            if let Some(id) = request_id {
                meta = meta.with_request_id(id);
            }
            crate::accounts::throttle::reserve_sign_up(conn, &client_ip)?;
            let id = service::sign_up(conn, &store, meta, account, &term)?;
            Ok((sessions::create(conn, id)?, term))
        })
        .await;
    match created {
        Ok((token, term)) => {
            tracing::info!("student signed up");
            let mut res = flash_redirect(
                "/enrollment",
                "success",
                &format!(
                    "Welcome! Your enrollment for {} has begun with your inquiry.",
                    term.as_str()
                ),
            );
            let cookie = Cookie::build(sessions::COOKIE, token)
                .path("/")
                .http_only(true)
                .secure(state(&req).settings.secure_cookies)
                .same_site(SameSite::Lax)
                .max_age(actix_web::cookie::time::Duration::hours(
                    sessions::LIFETIME_HOURS,
                ))
                .finish();
            res.add_cookie(&cookie).map_err(AppError::internal)?;
            Ok(res)
        }
        Err(EnrollmentError::Account(taken @ AccountError::UsernameTaken(_))) => {
            let (_, mut errors) = check_signup(&form);
            errors.add("username", taken);
            show_errors(errors)
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => refuse(status, message),
            None => Err(e.into()),
        },
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- the progress fragment

#[derive(Deserialize, Default)]
struct AsOfQuery {
    as_of: Option<String>,
}

/// `?as_of=YYYY-MM-DD`: the events recorded up to the end of that day (UTC).
fn parse_as_of(raw: Option<&str>) -> Result<Option<(String, DateTime<Utc>)>, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        AppError::BadRequest(format!(
            "{:?} is not a date: write it as YYYY-MM-DD, e.g. 2026-11-27.",
            raw.chars().take(20).collect::<String>()
        ))
    })?;
    let end = date
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .ok_or_else(|| AppError::BadRequest("That date is out of range.".into()))?
        .and_utc();
    Ok(Some((date.to_string(), end)))
}

#[derive(Serialize)]
struct StepView {
    label: &'static str,
    /// done | current | todo | closed
    status: &'static str,
    detail: Option<String>,
}

fn stepper(s: &EnrollmentState) -> Vec<StepView> {
    let denied = s.decision == Some(Decision::Denied);
    let mut current_given = false;
    Step::ALL
        .into_iter()
        .map(|step| {
            let detail = match step {
                Step::DocumentsReceived => Some(
                    Document::ALL
                        .into_iter()
                        .map(|d| {
                            format!(
                                "{}: {}",
                                d.label(),
                                if s.has(d) { "received" } else { "pending" }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                Step::AdmissionDecided => s.decision.map(|d| d.as_str().to_owned()),
                Step::OfferAccepted => s
                    .deposit_cents
                    .map(|c| format!("deposit {}", commands::format_cents(c))),
                Step::CoursesRegistered if !s.courses.is_empty() => Some(s.courses.join(", ")),
                _ => None,
            };
            let status = if s.reached(step) {
                "done"
            } else if denied || s.step.is_none() {
                "closed"
            } else if !current_given {
                current_given = true;
                "current"
            } else {
                "todo"
            };
            StepView {
                label: step.label(),
                status,
                detail,
            }
        })
        .collect()
}

/// Everything `_progress.html` shows.
fn progress_context(
    viewer: &Viewer,
    p: &Progress,
    as_of: Option<&str>,
    error: Option<&str>,
) -> Context {
    let s = &p.state;
    let staff = viewer.role == Role::Staff;
    let mut ctx = Context::new();
    ctx.insert("student", &p.student);
    ctx.insert("staff_view", &staff);
    ctx.insert("steps", &stepper(s));
    ctx.insert("started", &s.step.is_some());
    ctx.insert("term", &s.term);
    ctx.insert("stage", &s.stage().map(Stage::label));
    ctx.insert("withdrawn", &s.withdrawn);
    let actions: Vec<&str> = if as_of.is_some() {
        Vec::new()
    } else {
        decider::legal_actions(s, viewer.role)
            .into_iter()
            .map(Action::as_str)
            .collect()
    };
    // A student with nothing to do but withdraw is waiting for the office.
    ctx.insert(
        "waiting_on_office",
        &(!staff && as_of.is_none() && actions == ["withdraw"]),
    );
    ctx.insert("actions", &actions);
    ctx.insert("terms", &Term::upcoming(Utc::now().date_naive(), 4));
    ctx.insert(
        "missing_documents",
        &decider::missing_documents(s)
            .into_iter()
            .map(Document::as_str)
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "decisions",
        &decider::possible_decisions(s)
            .into_iter()
            .map(Decision::as_str)
            .collect::<Vec<_>>(),
    );
    ctx.insert("version", &p.version);
    ctx.insert("timeline", &p.timeline);
    ctx.insert("as_of", &as_of);
    ctx.insert("error", &error);
    let base = if staff {
        format!("/enrollment/students/{}", p.student.id)
    } else {
        "/enrollment".to_owned()
    };
    ctx.insert("page_url", &base);
    ctx.insert(
        "action_base",
        &if staff {
            format!("{base}/actions")
        } else {
            "/enrollment/actions".to_owned()
        },
    );
    ctx
}

async fn load_progress(
    req: &HttpRequest,
    viewer: &Viewer,
    student_id: Uuid,
    until: Option<DateTime<Utc>>,
) -> Result<Progress, AppError> {
    let v = viewer.clone();
    state(req)
        .query(move |conn| queries::progress(conn, &v, student_id, until))
        .await
}

fn page_template(viewer: &Viewer) -> &'static str {
    if viewer.role == Role::Staff {
        "enrollment/staff_student.html"
    } else {
        "enrollment/student.html"
    }
}

async fn show(
    req: &HttpRequest,
    viewer: &Viewer,
    student_id: Uuid,
    query: &AsOfQuery,
) -> Result<HttpResponse, AppError> {
    let as_of = parse_as_of(query.as_of.as_deref())?;
    let p = load_progress(req, viewer, student_id, as_of.as_ref().map(|a| a.1)).await?;
    let ctx = progress_context(viewer, &p, as_of.as_ref().map(|a| a.0.as_str()), None);
    render(req, page_template(viewer), "enrollment/_progress.html", ctx)
}

#[get("")]
async fn my_enrollment(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, AppError> {
    if viewer.role == Role::Staff {
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/enrollment/pipeline"))
            .finish());
    }
    viewer.require(Role::Student)?;
    show(&req, &viewer, viewer.user_id, &query).await
}

#[get("/students/{id}")]
async fn student_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    query: web::Query<AsOfQuery>,
) -> Result<HttpResponse, AppError> {
    let id: Uuid = path.parse().map_err(|_| AppError::NotFound)?;
    if !queries::may_see(&viewer, id) {
        return Err(AppError::NotFound);
    }
    if viewer.role == Role::Student {
        // A student's own page lives at /enrollment.
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", "/enrollment"))
            .finish());
    }
    show(&req, &viewer, id, &query).await
}

// ---------------------------------------------------------------- actions

#[derive(Deserialize, Serialize, Default)]
struct ActionForm {
    command_id: Option<String>,
    /// The stream version the page showed: a different one now means someone else acted (409).
    version: Option<String>,
    document: Option<String>,
    decision: Option<String>,
    deposit: Option<String>,
    courses: Option<String>,
    reason: Option<String>,
    term: Option<String>,
}

fn parse_command(action: Action, f: &ActionForm) -> Result<EnrollmentCommand, String> {
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    Ok(match action {
        Action::Inquire => EnrollmentCommand::Inquire {
            term: Term::parse(&field(&f.term))?,
        },
        Action::Start => EnrollmentCommand::StartApplication,
        Action::Submit => EnrollmentCommand::SubmitApplication,
        Action::Document => EnrollmentCommand::RecordDocument {
            document: Document::parse(&field(&f.document))?,
        },
        Action::Decide => EnrollmentCommand::DecideAdmission {
            decision: Decision::parse(&field(&f.decision))?,
        },
        Action::AcceptOffer => EnrollmentCommand::AcceptOffer {
            deposit_cents: commands::parse_deposit(&field(&f.deposit))?,
        },
        Action::Orientation => EnrollmentCommand::CompleteOrientation,
        Action::RegisterCourses => EnrollmentCommand::RegisterCourses {
            courses: commands::parse_courses(&field(&f.courses))?,
        },
        Action::Confirm => EnrollmentCommand::ConfirmEnrollment,
        Action::Withdraw => {
            let reason = text_field("The reason", &field(&f.reason), commands::MAX_REASON)
                .map_err(|e| e.to_string())?;
            if reason.is_empty() {
                return Err("Give a reason for withdrawing.".into());
            }
            EnrollmentCommand::Withdraw { reason }
        }
        Action::Reinstate => EnrollmentCommand::Reinstate,
    })
}

#[post("/actions/{action}")]
async fn student_action(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Student)?;
    let action = Action::parse(&path).ok_or(AppError::NotFound)?;
    let id = viewer.user_id;
    act(&req, &viewer, id, action, form.into_inner()).await
}

#[post("/students/{id}/actions/{action}")]
async fn staff_action(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    if !queries::may_see(&viewer, id) {
        return Err(AppError::NotFound);
    }
    viewer.require(Role::Staff)?;
    let action = Action::parse(&action).ok_or(AppError::NotFound)?;
    act(&req, &viewer, id, action, form.into_inner()).await
}

#[tracing::instrument(skip(req, viewer, form), fields(student = %student_id, action = action.as_str()))]
async fn act(
    req: &HttpRequest,
    viewer: &Viewer,
    student_id: Uuid,
    action: Action,
    form: ActionForm,
) -> Result<HttpResponse, AppError> {
    if action.actor() != viewer.role {
        return Err(AppError::Forbidden(match action.actor() {
            Role::Staff => "This step is recorded by the admissions office.".into(),
            _ => "Only the student takes this step.".into(),
        }));
    }
    let page_url = if viewer.role == Role::Staff {
        format!("/enrollment/students/{student_id}")
    } else {
        "/enrollment".to_owned()
    };
    let command = match parse_command(action, &form) {
        Ok(c) => c,
        Err(message) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return refused(
                req,
                viewer,
                student_id,
                status,
                &capitalize(&message),
                (action, &form, true),
            )
            .await;
        }
    };
    let mut ctx = command_context(req, viewer, form.command_id.as_deref());
    if let Some(v) = form
        .version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        let v: i64 = v
            .parse()
            .map_err(|_| AppError::BadRequest("The form's version is not a number.".into()))?;
        ctx = ctx.expected_version(v);
    }
    let store = state(req).store.clone();
    let v = viewer.clone();
    let result = state(req)
        .run(move |conn| service::act(conn, &store, &ctx, &v, student_id, &command))
        .await;
    match result {
        Ok(outcome) => {
            let p = load_progress(req, viewer, student_id, None).await?;
            let message = p
                .timeline
                .last()
                .map(|t| format!("{}.", t.description))
                .unwrap_or_else(|| "Done.".into());
            if is_htmx(req) {
                let mut ctx = progress_context(viewer, &p, None, None);
                ctx.insert("success", &message);
                let res = render(req, page_template(viewer), "enrollment/_progress.html", ctx)?;
                Ok(with_trigger(res, Some(&outcome), ""))
            } else {
                Ok(flash_redirect(&page_url, "success", &message))
            }
        }
        Err(e) => {
            // A refusal about the value given (a decision the student has, a missing reason)
            // is said beside it; one about the step (too early, a stale page) above the steps.
            use super::decider::EnrollmentRejection as R;
            let about_the_field = matches!(
                e,
                EnrollmentError::Invalid(_)
                    | EnrollmentError::Rejected(R::AlreadyWaitlisted | R::ReasonRequired { .. })
            );
            match e.refusal() {
                Some((status, message)) => {
                    let step = (action, &form, about_the_field);
                    refused(req, viewer, student_id, status, &message, step).await
                }
                None => Err(e.into()),
            }
        }
    }
}

/// The form of a step with a value to give: its id prefix, its field and the field's label.
fn step_form(action: Action) -> Option<(&'static str, Fields)> {
    Some(match action {
        Action::Inquire => ("inquire", &[("term", "Term")]),
        Action::Decide => ("decide", &[("decision", "Admission decision")]),
        Action::AcceptOffer => ("accept", &[("deposit", "Deposit paid")]),
        Action::RegisterCourses => ("register", &[("courses", "Course codes")]),
        Action::Withdraw => ("withdraw", &[("reason", "Reason for withdrawing")]),
        _ => return None,
    })
}

/// The page (or fragment) again, with the current state and the reason nothing was recorded:
/// beside the step's field with what was typed when the refusal is about the value given, else
/// (or for a step without a field) above the steps.
async fn refused(
    req: &HttpRequest,
    viewer: &Viewer,
    student_id: Uuid,
    status: StatusCode,
    message: &str,
    (action, form, about_the_field): (Action, &ActionForm, bool),
) -> Result<HttpResponse, AppError> {
    let p = load_progress(req, viewer, student_id, None).await?;
    // The step's form is on the page only while the step may be taken.
    let shown = decider::legal_actions(&p.state, viewer.role).contains(&action);
    let ctx = match step_form(action).filter(|_| about_the_field && shown) {
        Some((prefix, fields)) => {
            let mut ctx = progress_context(viewer, &p, None, None);
            let mut errors = FormErrors::new(prefix, fields, "Nothing was recorded");
            errors.add(fields[0].0, message);
            errors.insert(&mut ctx);
            ctx.insert("typed", form);
            ctx
        }
        None => progress_context(viewer, &p, None, Some(message)),
    };
    render_status(
        req,
        status,
        page_template(viewer),
        "enrollment/_progress.html",
        ctx,
    )
}

// ---------------------------------------------------------------- the pipeline

#[derive(Deserialize, Default)]
struct PipelineQuery {
    stage: Option<String>,
    term: Option<String>,
    name: Option<String>,
    days: Option<String>,
    format: Option<String>,
    #[serde(flatten)]
    paging: PageParams,
}

pub const DEFAULT_STALLED_DAYS: i64 = 14;

#[get("/pipeline")]
async fn pipeline_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<PipelineQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Staff)?;
    let q = query.into_inner();
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let stage = match blank(&q.stage) {
        Some(s) => Some(Stage::parse(&s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "Unknown step {:?}: choose one of the listed steps.",
                s.chars().take(40).collect::<String>()
            ))
        })?),
        None => None,
    };
    let term = match blank(&q.term) {
        Some(t) => Some(
            Term::parse(&t)
                .map_err(|m| AppError::BadRequest(capitalize(&format!("{m}."))))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let name = match blank(&q.name) {
        Some(n) => Some(text_field("The name", &n, 100)?),
        None => None,
    };
    let mut paging = Paging::parse(queries::PIPELINE_LIST, &q.paging);
    let days = match blank(&q.days) {
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| {
                AppError::BadRequest("The number of days must be from 1 to 3650.".into())
            })?,
        None => DEFAULT_STALLED_DAYS,
    };
    let filter = PipelineFilter { stage, term, name };
    let csv = q.format.as_deref() == Some("csv");
    if let Some(f) = q.format.as_deref().filter(|f| *f != "csv" && *f != "html") {
        return Err(AppError::BadRequest(format!(
            "Unknown format {:?}: use csv or leave it out.",
            f.chars().take(20).collect::<String>()
        )));
    }

    let v = viewer.clone();
    if csv {
        let rows = state(&req)
            .read_query(&req, move |conn| {
                queries::pipeline(conn, &v, &filter, &paging)
            })
            .await?;
        let mut export = CsvExport::new(
            "enrollment-pipeline",
            &["student", "username", "term", "step", "last_activity"],
        );
        for r in rows {
            export.row([
                r.display_name.as_str(),
                &r.username,
                &r.term,
                r.stage_label,
                &r.last_event_at.to_rfc3339(),
            ]);
        }
        return Ok(export.into_response());
    }

    let f = filter.clone();
    // The staff's report of the pipeline: a replica may serve it (`AppState::read`).
    let (counts, (rows, total, paging), stalled, terms) = state(&req)
        .read(&req, move |conn| -> Result<_, AppError> {
            let (rows, total) = queries::pipeline_page(conn, &v, &f, &mut paging)?;
            Ok((
                queries::stage_counts(conn, &v)?,
                (rows, total, paging),
                queries::stalled(conn, &v, days, 20)?,
                queries::terms(conn, &v)?,
            ))
        })
        .await?;

    // The counts as a table: one row per stage, one column per term.
    let mut by_stage: BTreeMap<(usize, String), i64> = BTreeMap::new();
    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for c in &counts {
        let idx = Stage::ALL
            .iter()
            .position(|s| s.as_str() == c.stage)
            .unwrap_or(usize::MAX);
        by_stage.insert((idx, c.term.clone()), c.students);
        *totals.entry(c.term.clone()).or_default() += c.students;
    }
    let count_rows: Vec<serde_json::Value> = Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({
                "stage": s.as_str(),
                "label": s.label(),
                "cells": terms
                    .iter()
                    .map(|t| serde_json::json!({
                        "term": t,
                        "n": by_stage.get(&(i, t.clone())).copied().unwrap_or(0),
                    }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();

    let mut ctx = Context::new();
    ctx.insert("terms", &terms);
    ctx.insert("count_rows", &count_rows);
    ctx.insert(
        "totals",
        &terms
            .iter()
            .map(|t| totals.get(t).copied().unwrap_or(0))
            .collect::<Vec<_>>(),
    );
    ctx.insert("rows", &rows);
    ctx.insert("stalled", &stalled);
    ctx.insert("days", &days);
    ctx.insert(
        "stages",
        &Stage::ALL
            .iter()
            .map(|s| serde_json::json!({"value": s.as_str(), "label": s.label()}))
            .collect::<Vec<_>>(),
    );
    ctx.insert(
        "filter",
        &serde_json::json!({
            "stage": filter.stage.map(Stage::as_str).unwrap_or(""),
            "term": filter.term.clone().unwrap_or_default(),
            "name": filter.name.clone().unwrap_or_default(),
        }),
    );
    let days_text = days.to_string();
    let filters = [
        (
            "stage",
            filter.stage.map(Stage::as_str).unwrap_or("").to_owned(),
        ),
        ("term", filter.term.clone().unwrap_or_default()),
        ("name", filter.name.clone().unwrap_or_default()),
        ("days", days_text),
    ];
    let pager = paging.pager(
        total,
        rows.len(),
        "/enrollment/pipeline",
        &filters,
        "pipeline-list",
    );
    // The CSV link keeps the filters and the order (every row, not the page).
    let query = serde_urlencoded::to_string(
        filters
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain([
                ("sort", paging.sort),
                ("dir", if paging.desc { "desc" } else { "asc" }),
            ])
            .collect::<Vec<_>>(),
    )
    .map_err(AppError::internal)?;
    ctx.insert("query", &query);
    ctx.insert("pager", &pager);
    render(
        &req,
        "enrollment/pipeline.html",
        "enrollment/_pipeline_list.html",
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_is_the_end_of_the_day() {
        let (label, end) = parse_as_of(Some("2026-11-27")).unwrap().unwrap();
        assert_eq!(label, "2026-11-27");
        assert_eq!(end.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert!(parse_as_of(Some("27/11/2026")).is_err());
        assert!(parse_as_of(Some("")).unwrap().is_none());
    }
}
