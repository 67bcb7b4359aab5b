//! What can go wrong in the threat-reports context, and what the web makes of it (once, here).

use actix_web::http::StatusCode;

use super::decider::ThreatsRejection;
use crate::context::from_command_errors;
use crate::db::NoConnection;
use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ThreatsError {
    /// A command refused, by the decider or before it ("the analyst already holds ...").
    #[error(transparent)]
    Rejected(#[from] ThreatsRejection),
    /// Another command was appended to the stream first.
    #[error("{0}")]
    Conflict(String),
    /// The form's key was first used for another command.
    #[error("This form was already used for another action. Reload the page and try again.")]
    KeyReused,
    /// The viewer's role reads no threat data (or not this admin page).
    #[error("{0}")]
    Forbidden(String),
    /// No such row, or not one the viewer may see.
    #[error("no such threat record")]
    NotFound,
    /// A path's id that cannot name a stream (a sensor id that is not a UUID): nothing to find.
    #[error("{what} {raw:?} is not a valid id")]
    BadId { what: &'static str, raw: String },
    /// A query string the page does not understand (an unknown window, a limit out of range).
    #[error("{0}")]
    BadQuery(String),
    /// A filter that parsed but cannot be applied (a minimum score out of range).
    #[error("{0}")]
    BadFilter(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    NoConnection(#[from] NoConnection),
    #[error("{0}")]
    Internal(String),
}

impl ThreatsError {
    /// A refusal the admin can act on, shown on the form they posted with this status; `None`
    /// for what becomes an error page.
    pub fn refusal(&self) -> Option<(StatusCode, String)> {
        match self {
            ThreatsError::Rejected(r) => Some((StatusCode::UNPROCESSABLE_ENTITY, r.to_string())),
            _ => None,
        }
    }
}

from_command_errors!(ThreatsError, conflict: |message| ThreatsError::Conflict(message));

/// The one mapping of threats errors to HTTP.
impl From<ThreatsError> for AppError {
    fn from(e: ThreatsError) -> Self {
        match e {
            ThreatsError::Rejected(r) => AppError::Unprocessable(r.to_string()),
            ThreatsError::Conflict(m) => AppError::Conflict(m),
            e @ ThreatsError::KeyReused => AppError::Conflict(e.to_string()),
            ThreatsError::Forbidden(m) => AppError::Forbidden(m),
            ThreatsError::NotFound | ThreatsError::BadId { .. } => AppError::NotFound,
            ThreatsError::BadQuery(m) => AppError::BadRequest(m),
            ThreatsError::BadFilter(m) => AppError::Unprocessable(m),
            ThreatsError::Database(d) => d.into(),
            ThreatsError::NoConnection(n) => n.into(),
            ThreatsError::Internal(m) => AppError::Internal(m),
        }
    }
}
