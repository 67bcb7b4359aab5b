//! What can go wrong with a scholarships command, and what the web makes of it (once, here).

use actix_web::http::StatusCode;
use uuid::Uuid;

use super::decider::{ApplicationRejection, FundRejection, ReviewRejection};
use crate::context::from_command_errors;
use crate::db::NoConnection;
use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ScholarshipsError {
    /// Input that does not make a command ("Choose a reviewer.", a bad amount).
    #[error("{0}")]
    Invalid(String),
    /// Not for this viewer's role ("Only students apply for scholarships.").
    #[error("{0}")]
    Forbidden(String),
    /// The fund's decider refused the command (a budget exceeded, an award already decided).
    #[error(transparent)]
    FundRejected(#[from] FundRejection),
    /// The application's decider refused the command (a closed window, a reviewer twice).
    #[error(transparent)]
    ApplicationRejected(#[from] ApplicationRejection),
    /// The review's decider refused the command (reviews closed, a revision that changes nothing).
    #[error(transparent)]
    ReviewRejected(#[from] ReviewRejection),
    /// Someone else appended to the stream first, more often than a fund command re-decides.
    #[error("{0}")]
    Conflict(String),
    /// The form's key was first used for another command.
    #[error("This form was already used for another action. Reload the page and try again.")]
    KeyReused,
    /// Not this viewer's to see, or there is no such fund or application.
    #[error("no such fund or application")]
    NotFound,
    /// An id in the path or the form that is not one: nothing was looked up.
    #[error(transparent)]
    BadId(#[from] BadId),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    NoConnection(#[from] NoConnection),
    #[error("{0}")]
    Internal(String),
}

/// An id that does not parse (a fund, an application, a stream): the page answers as for an id
/// nobody may see, but no lookup was made, so it is not a `diesel::NotFound`.
#[derive(Debug, thiserror::Error)]
#[error("{raw:?} is not a {what} id")]
pub struct BadId {
    /// What it should have named: "fund", "application", a stream type.
    pub what: String,
    /// The first characters of what was given.
    pub raw: String,
}

/// Parse the id of a `what` ("fund", "application") given in a path, a form or a stream id.
pub fn parse_id(what: &str, raw: &str) -> Result<Uuid, BadId> {
    raw.parse().map_err(|_| BadId {
        what: what.to_owned(),
        raw: raw.chars().take(40).collect(),
    })
}

impl ScholarshipsError {
    /// A refusal the person can act on, shown on the page they came from with this status;
    /// `None` for what becomes an error page.
    pub fn refusal(&self) -> Option<(StatusCode, String)> {
        match self {
            ScholarshipsError::Invalid(_)
            | ScholarshipsError::FundRejected(_)
            | ScholarshipsError::ApplicationRejected(_)
            | ScholarshipsError::ReviewRejected(_) => {
                Some((StatusCode::UNPROCESSABLE_ENTITY, self.to_string()))
            }
            _ => None,
        }
    }
}

from_command_errors!(ScholarshipsError, conflict: |message| ScholarshipsError::Conflict(message));

/// The one mapping of scholarships errors to HTTP.
impl From<ScholarshipsError> for AppError {
    fn from(e: ScholarshipsError) -> Self {
        match e {
            ScholarshipsError::NotFound | ScholarshipsError::BadId(_) => AppError::NotFound,
            ScholarshipsError::Forbidden(m) => AppError::Forbidden(m),
            e @ (ScholarshipsError::Conflict(_) | ScholarshipsError::KeyReused) => {
                AppError::Conflict(e.to_string())
            }
            ScholarshipsError::Database(d) => d.into(),
            ScholarshipsError::NoConnection(n) => n.into(),
            ScholarshipsError::Internal(m) => AppError::Internal(m),
            refused => AppError::Unprocessable(refused.to_string()),
        }
    }
}

/// A bad id in a path answers as the context answers it.
impl From<BadId> for AppError {
    fn from(e: BadId) -> Self {
        ScholarshipsError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::CommandError;

    #[test]
    fn a_bad_id_is_said_to_be_one_and_answers_as_not_found() {
        let bad = parse_id("fund", "12; drop").unwrap_err();
        assert_eq!(bad.to_string(), "\"12; drop\" is not a fund id");
        assert!(matches!(AppError::from(bad), AppError::NotFound));
    }

    #[test]
    fn refusals_are_shown_in_their_own_words_and_the_rest_maps_once() {
        let unknown = ScholarshipsError::from(CommandError::Rejected(FundRejection::Unknown));
        assert_eq!(
            unknown.refusal(),
            Some((
                StatusCode::UNPROCESSABLE_ENTITY,
                "there is no such fund".into()
            ))
        );
        let reused = ScholarshipsError::from(CommandError::<ReviewRejection>::KeyReused);
        assert_eq!(reused.refusal(), None);
        assert!(
            matches!(AppError::from(reused), AppError::Conflict(m) if m.starts_with("This form"))
        );
        let role = ScholarshipsError::Forbidden("Only students apply for scholarships.".into());
        assert!(matches!(AppError::from(role), AppError::Forbidden(_)));
    }
}
