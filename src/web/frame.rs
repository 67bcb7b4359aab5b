//! The frame around every request: request id and log line, session, CSRF check, error pages and
//! security headers. One middleware, so the order of these steps is read top to bottom.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tracing::Instrument;

use super::confirm;
use super::edge::{self, Unstorable};
use super::render::{base_context, flash_cookie, is_htmx, PreSessionCsrf, PRE_CSRF_COOKIE};
use super::{AppError, AppState, FormFingerprint, RequestId};
use crate::accounts::{sessions, Viewer};
use crate::secrets;

/// Largest form body read for the CSRF check; larger ones are refused with 413.
const MAX_FORM_BYTES: usize = 256 * 1024;

pub async fn frame(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", request_id = %request_id);
    async move {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.path().to_owned();
        req.extensions_mut().insert(RequestId(request_id.clone()));

        let res = match guard(req).await {
            // Handler errors arrive as responses carrying the error; an `Err` here comes from
            // inner middleware only, and actix renders it.
            Ok(req) if req.extensions().get::<Unconfirmed>().is_some() => {
                let (req, _) = req.into_parts();
                let Unconfirmed(question, fields) = req
                    .extensions_mut()
                    .remove::<Unconfirmed>()
                    .expect("checked above");
                let res =
                    confirm::ask(&req, &question, &fields).unwrap_or_else(HttpResponse::from_error);
                ServiceResponse::new(req, res)
            }
            Ok(req) => next.call(req).await?.map_into_boxed_body(),
            Err((req, e)) => ServiceResponse::new(req, HttpResponse::from_error(e)),
        };
        let mut res = present_errors(res);
        if !method.is_safe() && res.status().as_u16() < 400 && uses_session(&path) {
            remember_write(&mut res).await;
        }
        finish_headers(&mut res, &request_id);
        let status = res.status().as_u16();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        crate::ops::metrics::observe_request(method.as_str(), &route, status, ms / 1000.0);
        if status >= 500 {
            tracing::error!(%method, %path, status, ms, "request failed");
        } else {
            tracing::info!(%method, %path, status, ms, "request");
        }
        Ok(res)
    }
    .instrument(span)
    .await
}

/// With read replicas, note in a cookie the primary's WAL position after a state-changing request,
/// so that the browser's next reads wait for a replica to have it (`AppState::read`).
async fn remember_write(res: &mut ServiceResponse<BoxBody>) {
    let Some(state) = res.request().app_data::<web::Data<AppState>>().cloned() else {
        return;
    };
    if state.replicas.is_empty() {
        return;
    }
    let pool = state.pool.clone();
    let position = web::block(move || {
        let mut conn = pool.get().ok()?;
        crate::replicas::primary_position(&mut conn).ok().flatten()
    })
    .await
    .ok()
    .flatten();
    if let Some(lsn) = position {
        let cookie = Cookie::build(crate::replicas::WROTE_COOKIE, lsn.to_string())
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(state.settings.secure_cookies)
            .max_age(actix_web::cookie::time::Duration::minutes(10))
            .finish();
        let _ = res.response_mut().add_cookie(&cookie);
    }
}

fn uses_session(path: &str) -> bool {
    !(path.starts_with("/static/")
        || path.starts_with("/api/")
        || path == "/healthz"
        || path == "/metrics")
}

/// Refuse what cannot be stored, load the session and check the CSRF token of a state-changing
/// request.
async fn guard(mut req: ServiceRequest) -> Result<ServiceRequest, (HttpRequest, AppError)> {
    let storable = edge::check_path(req.path())
        .and_then(|()| edge::check_urlencoded(req.query_string().as_bytes(), Unstorable::Query));
    if let Err(part) = storable {
        return Err((
            req.request().clone(),
            AppError::BadRequest(part.message().into()),
        ));
    }
    if !uses_session(req.path()) {
        return Ok(req);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("AppState is registered")
        .clone();

    if let Some(token) = req.cookie(sessions::COOKIE).map(|c| c.value().to_owned()) {
        // A page shows the viewer's unread count in the navigation: read on the same connection.
        let page = req.method() == actix_web::http::Method::GET;
        let loaded = state
            .db(move |conn| {
                let Some(viewer) = sessions::load(conn, &token)? else {
                    return Ok(None);
                };
                let unread = match page {
                    true => crate::ops::notifications::unread_count(conn, &viewer)?,
                    false => 0,
                };
                Ok(Some((viewer, crate::ops::notifications::Unread(unread))))
            })
            .await;
        match loaded {
            Ok(Some((viewer, unread))) => {
                req.extensions_mut().insert(viewer);
                req.extensions_mut().insert(unread);
            }
            Ok(None) => {}
            Err(e) => return Err((req.request().clone(), e)),
        }
    }
    let signed_in = req
        .extensions()
        .get::<Viewer>()
        .map(|v| v.csrf_token.clone());
    let expected = match signed_in {
        Some(token) => token,
        None => {
            let pre = match req.cookie(PRE_CSRF_COOKIE) {
                Some(c) if c.value().len() == 64 => PreSessionCsrf {
                    token: c.value().to_owned(),
                    is_new: false,
                },
                _ => PreSessionCsrf {
                    token: secrets::random_token(),
                    is_new: true,
                },
            };
            let token = pre.token.clone();
            req.extensions_mut().insert(pre);
            token
        }
    };

    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(req);
    }
    // The form is read whether or not the token came in a header (as HTMX sends it): its text is
    // checked either way, and its fingerprint binds the form's idempotency key to this command.
    let form = match read_form(&mut req).await {
        Ok(form) => form,
        Err(e) => return Err((req.request().clone(), e)),
    };
    if let Some(body) = &form {
        let fingerprint = edge::form_fingerprint(req.path(), body);
        req.extensions_mut().insert(FormFingerprint(fingerprint));
    }
    let provided = match req
        .headers()
        .get("X-CSRF-Token")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => Some(h.to_owned()),
        None => form.as_deref().and_then(|b| form_field(b, "csrf_token")),
    };
    match provided {
        Some(p) if secrets::constant_time_eq(&p, &expected) => {
            if let Some(body) = &form {
                let fields: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(body).unwrap_or_default();
                if let Some(q) = confirm::question(req.path(), &fields) {
                    if !confirm::confirmed(&fields) {
                        req.extensions_mut().insert(Unconfirmed(q, fields));
                    }
                }
            }
            Ok(req)
        }
        _ if req.extensions().get::<PreSessionCsrf>().is_some() && req.cookie(sessions::COOKIE).is_some() => {
            // A session cookie that no longer names a session: it expired or was ended.
            Err((req.request().clone(), AppError::Unauthenticated))
        }
        _ => Err((
            req.request().clone(),
            AppError::Forbidden(
                "This form has expired or did not come from this site (missing or wrong CSRF token). Reload the page and try again.".into(),
            ),
        )),
    }
}

/// A destructive post without `confirm=yes`: answered with the question instead of the handler.
struct Unconfirmed(confirm::Question, Vec<(String, String)>);

/// Read a urlencoded body, check that it is storable text, and put it back for the handler.
async fn read_form(req: &mut ServiceRequest) -> Result<Option<web::Bytes>, AppError> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok(None);
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "The form is too large: at most {} KiB.",
                MAX_FORM_BYTES / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    edge::check_urlencoded(&body, Unstorable::Form)
        .map_err(|part| AppError::BadRequest(part.message().into()))?;
    req.set_payload(Payload::from(body.clone()));
    Ok(Some(body))
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Turn an error response into the page, fragment or JSON the client expects.
fn present_errors(res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = res.status();
    if status.as_u16() < 400 {
        return res;
    }
    let Some(error) = res.response().error() else {
        return res;
    };
    let app_error = error.as_error::<AppError>();
    let message = match app_error {
        Some(e) => e.to_string(),
        None if status.is_client_error() => format!("The request could not be used: {error}"),
        None => AppError::Internal(String::new()).to_string(),
    };
    if status.is_server_error() {
        // The full chain goes to the log, never to the client.
        let detail: String = format!("{error:?}").chars().take(2000).collect();
        tracing::error!(error = %detail, %status, "server error");
    }
    let title = app_error.map_or_else(
        || status.canonical_reason().unwrap_or("Error"),
        AppError::title,
    );
    let unauthenticated = matches!(app_error, Some(AppError::Unauthenticated));
    let (req, _) = res.into_parts();

    if req.path().starts_with("/api/") || req.path() == "/healthz" {
        let body = serde_json::json!({ "error": message });
        return ServiceResponse::new(req, HttpResponse::build(status).json(body));
    }
    if unauthenticated {
        let mut to = HttpResponse::SeeOther();
        to.insert_header((header::LOCATION, "/login"))
            .cookie(flash_cookie(
                "warning",
                "Please sign in to continue (your session may have ended).",
            ));
        if is_htmx(&req) {
            to.insert_header(("HX-Redirect", "/login"));
        }
        return ServiceResponse::new(req, to.finish());
    }

    let mut ctx = base_context(&req);
    ctx.insert("status", &status.as_u16());
    ctx.insert("title", title);
    ctx.insert("message", &message);
    let htmx = is_htmx(&req);
    let template = if htmx { "_error.html" } else { "error.html" };
    let html = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.templates.render(template, &ctx).ok())
        .map(|html| crate::text::reveal(&html).into_owned())
        .unwrap_or_else(|| format!("<h1>{title}</h1><p>{}</p>", tera_escape(&message)));
    let mut response = HttpResponse::build(status);
    response.content_type("text/html; charset=utf-8");
    if htmx {
        // Show the message in the page's message area instead of replacing the target.
        response.insert_header(("HX-Retarget", "#messages"));
        response.insert_header(("HX-Reswap", "innerHTML"));
    }
    ServiceResponse::new(req, response.body(html))
}

fn tera_escape(s: &str) -> String {
    tera::escape_html(s)
}

/// Behind HTTPS every cookie is `Secure`, whichever handler set it (the session, the flash
/// message, the sign-in form's CSRF cookie).
fn mark_cookies_secure(res: &mut ServiceResponse<BoxBody>) {
    let headers = res.headers_mut();
    let cookies: Vec<header::HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .map(
            |v| match v.to_str().ok().and_then(|s| Cookie::parse(s).ok()) {
                Some(mut c) if c.secure() != Some(true) => {
                    c.set_secure(true);
                    header::HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| v.clone())
                }
                _ => v.clone(),
            },
        )
        .collect();
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        headers.append(header::SET_COOKIE, c);
    }
}

fn finish_headers(res: &mut ServiceResponse<BoxBody>, request_id: &str) {
    let pre = res.request().extensions().get::<PreSessionCsrf>().cloned();
    let secure = res
        .request()
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.secure_cookies);
    if let Some(pre) = pre.filter(|p| p.is_new) {
        let cookie = Cookie::build(PRE_CSRF_COOKIE, pre.token)
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Strict)
            .finish();
        let _ = res.response_mut().add_cookie(&cookie);
    }
    if secure {
        mark_cookies_secure(res);
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    let headers = res.headers_mut();
    let set = |h: &mut header::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(
            header::HeaderName::from_static(k),
            header::HeaderValue::from_static(v),
        );
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    if let Ok(v) = header::HeaderValue::from_str(request_id) {
        headers.insert(header::HeaderName::from_static("x-request-id"), v);
    }
    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
}
