//! One error type for the web layer, mapped to HTTP in one place. The page itself is rendered by
//! the frame middleware, which knows the request (full page or HTMX fragment, HTML or JSON).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::es::projection::{ProjectionError, ProjectionFailed};
use crate::es::CommandError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("The page you asked for does not exist, or you may not see it.")]
    NotFound,
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Input that parsed but is not acceptable, or a command the domain rejected.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("The database is not answering right now. Please try again in a moment.")]
    Unavailable,
    #[error("Something went wrong on our side. It has been logged.")]
    Internal(String),
}

impl AppError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        AppError::Internal(e.to_string())
    }

    pub fn title(&self) -> &'static str {
        match self {
            AppError::NotFound => "Not found",
            AppError::Unauthenticated => "Sign in required",
            AppError::Forbidden(_) => "Not allowed",
            AppError::BadRequest(_) => "Bad request",
            AppError::Unprocessable(_) => "Cannot do that",
            AppError::Conflict(_) => "Changed by someone else",
            AppError::TooManyRequests(_) => "Too many attempts",
            AppError::PayloadTooLarge(_) => "Too large",
            AppError::Unavailable => "Temporarily unavailable",
            AppError::Internal(_) => "Server error",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Unauthenticated => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // A plain body; the frame middleware replaces it with the page, fragment or JSON.
        HttpResponse::build(self.status_code())
            .content_type("text/plain; charset=utf-8")
            .body(self.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::Error as E;
        match e {
            E::NotFound => AppError::NotFound,
            gone if crate::db::is_unavailable(&gone) => AppError::Unavailable,
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(_: diesel::r2d2::PoolError) -> Self {
        AppError::Unavailable
    }
}

impl From<crate::db::NoConnection> for AppError {
    fn from(e: crate::db::NoConnection) -> Self {
        match e {
            crate::db::NoConnection::Pool(_) => AppError::Unavailable,
            cancelled => AppError::internal(cancelled),
        }
    }
}

impl From<tera::Error> for AppError {
    fn from(e: tera::Error) -> Self {
        use std::error::Error;
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        AppError::Internal(message)
    }
}

impl<R: std::error::Error + 'static> From<CommandError<R>> for AppError {
    fn from(e: CommandError<R>) -> Self {
        match e {
            CommandError::Rejected(r) => AppError::Unprocessable(r.to_string()),
            c @ CommandError::Conflict { .. } => AppError::Conflict(c.to_string()),
            CommandError::KeyReused => AppError::Conflict(
                "This form was already used for another action. Reload the page and try again."
                    .into(),
            ),
            CommandError::Database(d) => d.into(),
            CommandError::Projection(ProjectionFailed {
                source: ProjectionError::Database(d),
                ..
            }) if crate::db::is_unavailable(&d) => AppError::Unavailable,
            other => AppError::Internal(other.to_string()),
        }
    }
}
