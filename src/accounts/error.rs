//! What can go wrong with an account, a sign-in or a password, and what the web makes of it
//! (once, here).

use actix_web::http::StatusCode;

use super::decider::AccountRejection;
use super::throttle::Attempt;
use crate::context::from_command_errors;
use crate::db::NoConnection;
use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Input that does not make an account ("a username has 3 to 32 characters ...").
    #[error("{0}")]
    Invalid(String),
    #[error("the username {0:?} is taken")]
    UsernameTaken(String),
    /// A sign-in with a wrong username or password (which of the two is not said).
    #[error("The username or password is wrong.")]
    WrongCredentials,
    /// A password change whose current password is wrong.
    #[error("The current password is wrong.")]
    WrongCurrentPassword,
    /// Too many attempts from this address or at this username (see `throttle`).
    #[error("Too many {attempt}. Try again in {minutes} minutes.")]
    Throttled { attempt: Attempt, minutes: i64 },
    /// The decider refused the command.
    #[error(transparent)]
    Rejected(#[from] AccountRejection),
    /// The account changed since the page was rendered.
    #[error("Someone else changed this account while you were looking at it, so your action was not recorded. Reload the page and try again.")]
    Conflict,
    /// The form's key was first used for another command.
    #[error("This form was already used for another action. Reload the page and try again.")]
    KeyReused,
    /// No such account, or not this viewer's to see.
    #[error("no such account")]
    NotFound,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    NoConnection(#[from] NoConnection),
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    /// A refusal the person can act on, shown on the form they sent with this status; `None`
    /// for what becomes an error page.
    pub fn refusal(&self) -> Option<(StatusCode, String)> {
        let status = match self {
            AccountError::Invalid(_)
            | AccountError::UsernameTaken(_)
            | AccountError::WrongCurrentPassword
            | AccountError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AccountError::WrongCredentials => StatusCode::UNAUTHORIZED,
            AccountError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AccountError::Conflict | AccountError::KeyReused => StatusCode::CONFLICT,
            _ => return None,
        };
        Some((status, self.to_string()))
    }
}

from_command_errors!(AccountError, conflict: |_message| AccountError::Conflict);

/// The one mapping of account errors to HTTP.
impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => AppError::NotFound,
            AccountError::Database(d) => d.into(),
            AccountError::NoConnection(n) => n.into(),
            AccountError::Internal(m) => AppError::Internal(m),
            refused => match refused.refusal() {
                Some((StatusCode::TOO_MANY_REQUESTS, m)) => AppError::TooManyRequests(m),
                Some((StatusCode::CONFLICT, m)) => AppError::Conflict(m),
                Some((_, m)) => AppError::Unprocessable(m),
                None => AppError::Internal(refused.to_string()),
            },
        }
    }
}
