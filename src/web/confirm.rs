//! Nothing destructive in one click. A form that withdraws, declines, retires, revokes or
//! rebuilds is applied only with `confirm=yes` among its fields. With JavaScript, `static/app.js`
//! asks first (the form's `data-confirm` question) and adds the field; without it, the frame
//! answers the post with a page asking the question, whose button posts the same fields again
//! with `confirm=yes` (and a fresh CSRF token). Every such action is listed here, in one place.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::render::{is_htmx, render_status};
use super::AppError;

/// A destructive action: what to ask, and the button that does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Question {
    pub question: &'static str,
    pub detail: &'static str,
    pub button: &'static str,
}

/// The question a post to `path` with these fields must be confirmed by, if it destroys.
pub fn question(path: &str, fields: &[(String, String)]) -> Option<Question> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let q = |question, detail, button| {
        Some(Question {
            question,
            detail,
            button,
        })
    };
    match segments.as_slice() {
        ["enrollment", "actions", "withdraw"] => q(
            "Withdraw your application?",
            "Your enrollment stops where it is. Only the admissions office can reinstate it.",
            "Withdraw",
        ),
        ["scholarships", "applications", _, "award"] if field("response") == Some("refuse") => q(
            "Decline this award?",
            "The money returns to the fund for other students. You cannot accept it later.",
            "Decline the award",
        ),
        ["admin", "signatures", _, "retire"] => q(
            "Retire this signature?",
            "Sensors' new hits of it are no longer counted; its history stays.",
            "Retire",
        ),
        ["admin", "clearances"] if field("action") == Some("revoke") => q(
            "Revoke this clearance?",
            "The analyst stops seeing the hits of this group's signatures at once.",
            "Revoke",
        ),
        ["admin", "sensors", _, "revoke"] => q(
            "Revoke this sensor?",
            "Its token stops working at once: its next batch is refused.",
            "Revoke",
        ),
        ["admin", "projections", _, "rebuild"] => q(
            "Rebuild this projection?",
            "The whole log is replayed into new tables, which replace the live ones when complete.",
            "Rebuild",
        ),
        _ => None,
    }
}

/// Whether the post says it was confirmed.
pub fn confirmed(fields: &[(String, String)]) -> bool {
    fields.iter().any(|(k, v)| k == "confirm" && v == "yes")
}

/// The page that asks `question` and posts `fields` again to the same path with `confirm=yes`.
/// With HTMX (a form whose question was not asked in the browser) it is shown in the page's
/// message area.
pub fn ask(
    req: &HttpRequest,
    question: &Question,
    fields: &[(String, String)],
) -> Result<HttpResponse, AppError> {
    let kept: Vec<&(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token" && k != "confirm")
        .collect();
    let back = req
        .headers()
        .get(actix_web::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(same_site_path)
        .unwrap_or_else(|| "/".into());
    let mut ctx = tera::Context::new();
    ctx.insert("confirm", question);
    ctx.insert("action", req.path());
    ctx.insert("fields", &kept);
    ctx.insert("back", &back);
    let mut res = render_status(req, StatusCode::OK, "confirm.html", "_confirm.html", ctx)?;
    if is_htmx(req) {
        let headers = res.headers_mut();
        for (k, v) in [("hx-retarget", "#messages"), ("hx-reswap", "innerHTML")] {
            headers.insert(
                actix_web::http::header::HeaderName::from_static(k),
                actix_web::http::header::HeaderValue::from_static(v),
            );
        }
    }
    Ok(res)
}

/// The path and query of a Referer on this site (`http://host/a?b` -> `/a?b`); the browser
/// sends one only for this origin (`Referrer-Policy: same-origin`).
fn same_site_path(referer: &str) -> Option<String> {
    let rest = referer.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn destructive_posts_ask_and_others_do_not() {
        let none = fields(&[]);
        assert!(question("/enrollment/actions/withdraw", &none).is_some());
        assert!(question("/enrollment/actions/start", &none).is_none());
        let refuse = fields(&[("response", "refuse")]);
        let accept = fields(&[("response", "accept")]);
        assert!(question("/scholarships/applications/1/award", &refuse).is_some());
        assert!(question("/scholarships/applications/1/award", &accept).is_none());
        let revoke = fields(&[("action", "revoke")]);
        let grant = fields(&[("action", "grant")]);
        assert!(question("/admin/clearances", &revoke).is_some());
        assert!(question("/admin/clearances", &grant).is_none());
        assert!(question("/admin/signatures/ET-x/retire", &none).is_some());
        assert!(question("/admin/sensors/7/revoke", &none).is_some());
        assert!(question("/admin/projections/users/rebuild", &none).is_some());
        assert!(question("/admin/projections/users/verify", &none).is_none());
        assert!(confirmed(&fields(&[("confirm", "yes")])));
        assert!(!confirmed(&fields(&[("confirm", "no")])));
    }

    #[test]
    fn cancel_goes_back_only_within_the_site() {
        assert_eq!(
            same_site_path("http://127.0.0.1:8080/admin/sensors?x=1").as_deref(),
            Some("/admin/sensors?x=1")
        );
        assert_eq!(same_site_path("http://evil.example//x"), None);
        assert_eq!(same_site_path("nonsense"), None);
    }
}
