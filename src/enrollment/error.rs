//! What can go wrong with an enrollment command, and what the web makes of it (once, here).

use actix_web::http::StatusCode;

use super::decider::EnrollmentRejection;
use crate::accounts::AccountError;
use crate::context::from_command_errors;
use crate::db::NoConnection;
use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    /// Input that does not make a command ("unknown document").
    #[error("{0}")]
    Invalid(String),
    /// The decider refused the command ("documents must be received before ...").
    #[error(transparent)]
    Rejected(#[from] EnrollmentRejection),
    /// The page showed an older version of the enrollment than the one now stored.
    #[error("Someone else changed this enrollment while you were looking at it, so your action was not recorded. The page now shows the current state: check it and try again if it still applies.")]
    Conflict,
    /// The form's key was first used for another command.
    #[error("This form was already used for another action. Reload the page and try again.")]
    KeyReused,
    /// Sign-up: the account could not be made as asked (a taken username, a bad field).
    #[error(transparent)]
    Account(AccountError),
    /// Not this viewer's to see (or there is no such student).
    #[error("no such enrollment")]
    NotFound,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    NoConnection(#[from] NoConnection),
    #[error("{0}")]
    Internal(String),
}

impl EnrollmentError {
    /// A refusal the person can act on, shown on the page they came from with this status;
    /// `None` for what becomes an error page.
    pub fn refusal(&self) -> Option<(StatusCode, String)> {
        let sentence = |s: String| {
            let mut c = s.chars();
            match c.next() {
                Some(first) => {
                    let s = first.to_uppercase().chain(c).collect::<String>();
                    if s.ends_with('.') {
                        s
                    } else {
                        s + "."
                    }
                }
                None => s,
            }
        };
        match self {
            EnrollmentError::Invalid(m) => {
                Some((StatusCode::UNPROCESSABLE_ENTITY, sentence(m.clone())))
            }
            EnrollmentError::Rejected(r) => {
                Some((StatusCode::UNPROCESSABLE_ENTITY, sentence(r.to_string())))
            }
            EnrollmentError::Account(e) => e.refusal().map(|(status, m)| (status, sentence(m))),
            EnrollmentError::Conflict | EnrollmentError::KeyReused => {
                Some((StatusCode::CONFLICT, self.to_string()))
            }
            _ => None,
        }
    }
}

from_command_errors!(EnrollmentError, conflict: |_message| EnrollmentError::Conflict);

impl From<AccountError> for EnrollmentError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Database(d) => EnrollmentError::Database(d),
            other => EnrollmentError::Account(other),
        }
    }
}

/// The one mapping of enrollment errors to HTTP.
impl From<EnrollmentError> for AppError {
    fn from(e: EnrollmentError) -> Self {
        match e {
            EnrollmentError::NotFound => AppError::NotFound,
            EnrollmentError::Database(d) => d.into(),
            EnrollmentError::NoConnection(n) => n.into(),
            EnrollmentError::Internal(m) => AppError::Internal(m),
            e @ (EnrollmentError::Conflict | EnrollmentError::KeyReused) => {
                AppError::Conflict(e.to_string())
            }
            EnrollmentError::Account(a) => a.into(),
            refused => AppError::Unprocessable(
                refused
                    .refusal()
                    .map_or_else(|| refused.to_string(), |r| r.1),
            ),
        }
    }
}
