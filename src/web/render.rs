//! Rendering: the handler decides full page or fragment (the `HX-Request` header), never the base
//! template. Every page gets the viewer, the CSRF token, the navigation and the flash message.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Serialize;
use tera::Context;

use super::{AppError, AppState};
use crate::accounts::{Role, Viewer};

pub const FLASH_COOKIE: &str = "heyboss_flash";
pub const PRE_CSRF_COOKIE: &str = "heyboss_csrf";

/// The anonymous visitor's CSRF token (double-submit cookie), for the sign-in and sign-up forms.
#[derive(Debug, Clone)]
pub struct PreSessionCsrf {
    pub token: String,
    pub is_new: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flash {
    pub kind: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct NavItem {
    href: &'static str,
    label: &'static str,
}

/// The navigation a role sees: every context's entries for it (`BoundedContext::navigation`).
fn nav_for(role: Role) -> Vec<NavItem> {
    crate::startup::navigation()
        .iter()
        .filter(|e| e.role == role)
        .map(|e| NavItem {
            href: e.href,
            label: e.label,
        })
        .collect()
}

pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("HX-Request")
        && !req.headers().contains_key("HX-History-Restore-Request")
}

pub fn state(req: &HttpRequest) -> &AppState {
    req.app_data::<actix_web::web::Data<AppState>>()
        .expect("AppState is registered")
}

/// The context every template may use.
pub fn base_context(req: &HttpRequest) -> Context {
    let mut ctx = Context::new();
    let viewer = req.extensions().get::<Viewer>().cloned();
    let csrf = match &viewer {
        Some(v) => v.csrf_token.clone(),
        None => req
            .extensions()
            .get::<PreSessionCsrf>()
            .map(|p| p.token.clone())
            .unwrap_or_default(),
    };
    ctx.insert("csrf_token", &csrf);
    ctx.insert("path", req.path());
    ctx.insert(
        "nav",
        &viewer.as_ref().map(|v| nav_for(v.role)).unwrap_or_default(),
    );
    ctx.insert("viewer", &viewer);
    let unread = req
        .extensions()
        .get::<crate::ops::notifications::Unread>()
        .map_or(0, |u| u.0);
    ctx.insert("unread_notifications", &unread);
    ctx.insert("flash", &read_flash(req));
    super::form::none(&mut ctx);
    ctx
}

/// Render `page` for a normal request or `fragment` for an HTMX one, with status 200.
pub fn render(
    req: &HttpRequest,
    page: &str,
    fragment: &str,
    ctx: Context,
) -> Result<HttpResponse, AppError> {
    render_status(req, StatusCode::OK, page, fragment, ctx)
}

pub fn render_status(
    req: &HttpRequest,
    status: StatusCode,
    page: &str,
    fragment: &str,
    mut ctx: Context,
) -> Result<HttpResponse, AppError> {
    let base = base_context(req);
    let mut full = base;
    full.extend(std::mem::take(&mut ctx));
    let template = if is_htmx(req) { fragment } else { page };
    let state = state(req);
    let zone = req
        .extensions()
        .get::<Viewer>()
        .and_then(|v| v.time_zone)
        .unwrap_or(state.settings.time_zone);
    let html = super::format::in_zone(zone, || state.templates.render(template, &full))?;
    // Our templates hold no direction control; any in a page came with the data (a sensor's
    // filename), and is shown as a mark rather than allowed to reorder what the reader sees.
    let html = match crate::text::reveal(&html) {
        std::borrow::Cow::Borrowed(_) => html,
        std::borrow::Cow::Owned(revealed) => revealed,
    };
    let mut res = HttpResponse::build(status);
    res.content_type("text/html; charset=utf-8")
        .insert_header((header::VARY, "HX-Request"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    if req.cookie(FLASH_COOKIE).is_some() {
        res.cookie(expired(FLASH_COOKIE));
    }
    Ok(res.body(html))
}

/// After a command with HTMX: name the domain event it recorded in `HX-Trigger`, so other
/// fragments on the page can refresh themselves. `fallback` names it when the command recorded
/// nothing new (a repeated form returns the first outcome, whose events are already known).
pub fn with_trigger(
    mut res: HttpResponse,
    outcome: Option<&crate::es::CommandOutcome>,
    fallback: &str,
) -> HttpResponse {
    let event = outcome
        .and_then(|o| o.event_types.last())
        .map_or(fallback, String::as_str);
    if let Ok(v) = header::HeaderValue::from_str(event) {
        res.headers_mut()
            .insert(header::HeaderName::from_static("hx-trigger"), v);
    }
    res
}

/// After a command without HTMX: 303 to `location`, with a message for the next page.
pub fn flash_redirect(location: &str, kind: &'static str, message: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .cookie(flash_cookie(kind, message))
        .finish()
}

/// The cookie that carries a message to the next page.
pub fn flash_cookie(kind: &'static str, message: &str) -> Cookie<'static> {
    Cookie::build(FLASH_COOKIE, format!("{kind}:{}", percent_encode(message)))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish()
}

fn read_flash(req: &HttpRequest) -> Option<Flash> {
    let cookie = req.cookie(FLASH_COOKIE)?;
    let (kind, message) = cookie.value().split_once(':')?;
    let kind = match kind {
        "error" => "error",
        "warning" => "warning",
        _ => "success",
    };
    Some(Flash {
        kind,
        message: percent_decode(message)?,
    })
}

pub fn expired(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build(name, "").path("/").finish();
    c.make_removal();
    c
}

/// Everything but RFC 3986's unreserved characters, percent-encoded: safe in a path segment, a
/// query value and a cookie.
const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The one percent-encoder of the application (links, cookies, the `urlencode` filter).
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flash_messages_survive_the_cookie() {
        let m = "Saved: 3 items; \"quoted\" ünïcode";
        assert_eq!(percent_decode(&percent_encode(m)).unwrap(), m);
    }
}
