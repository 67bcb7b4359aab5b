//! A bounded context as the application registers it: one value per context, listed once in
//! [`crate::startup::contexts`]. Everything a context adds to the application comes through here
//! (its routes, read models, reactions, audit and notification rules, navigation and demo data),
//! so a new context is its folder, its migration, its templates and one line in that list.

use std::sync::Arc;

use actix_web::web;

use crate::accounts::Role;
use crate::es::{EventStore, Projection, RecordedEvent, Subscriber};
use crate::ops::{AuditScope, NotificationRule};
use crate::web::AppState;

/// An entry of the navigation bar, for the users of one role.
#[derive(Debug, Clone, Copy)]
pub struct NavEntry {
    pub role: Role,
    pub href: &'static str,
    pub label: &'static str,
}

impl NavEntry {
    pub const fn new(role: Role, href: &'static str, label: &'static str) -> NavEntry {
        NavEntry { role, href, label }
    }
}

pub type DemoResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What one bounded context plugs into the application. Only `name` and `routes` are required;
/// the rest default to nothing.
pub trait BoundedContext: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Its pages and endpoints, each group under a `web::scope` of its own.
    fn routes(&self, cfg: &mut web::ServiceConfig);

    /// Its read models, in the order they run after an append (a projection that reads
    /// another's tables comes after it).
    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        Vec::new()
    }

    /// Its catch-up subscribers that are not projections: reactions to other contexts' events.
    fn subscribers(&self, _store: &EventStore) -> Vec<Arc<dyn Subscriber>> {
        Vec::new()
    }

    /// Which of its events a non-admin may see in the audit log and histories.
    fn audit_scopes(&self) -> Vec<Arc<dyn AuditScope>> {
        Vec::new()
    }

    /// Which of its events notify whom.
    fn notification_rules(&self) -> Vec<Arc<dyn NotificationRule>> {
        Vec::new()
    }

    /// Its entries of the navigation bar, per role, in order.
    fn navigation(&self) -> &'static [NavEntry] {
        &[]
    }

    /// Its events in the words of the domain (`None`: not one of its events). Histories and the
    /// audit log show these instead of type names and payloads (`ops::describe`).
    fn describe(&self, _event: &RecordedEvent) -> Option<crate::ops::describe::EventDescription> {
        None
    }

    /// Its part of `serve --demo` (idempotent: a second run adds nothing).
    fn seed_demo(&self, _state: &AppState) -> DemoResult {
        Ok(())
    }
}

/// `From<CommandError<R>>` for a context's error enum, for each rejection `R` that converts into
/// it: the same in every context, so that it is written once. A rejection becomes the context's
/// own; a conflict becomes what `conflict` makes of the executor's words; a reused form key is
/// `KeyReused`; the database, or a read model's write that lost it (the database away, not a bug),
/// is `Database`; anything else is `Internal`. The enum keeps its own variants and its one mapping
/// to HTTP.
///
/// `from_command_errors!(ThreatsError, conflict: |message| ThreatsError::Conflict(message));`
macro_rules! from_command_errors {
    ($error:ident, conflict: |$message:ident| $conflict:expr) => {
        impl<R> From<$crate::es::CommandError<R>> for $error
        where
            R: std::error::Error + Into<$error> + 'static,
        {
            fn from(e: $crate::es::CommandError<R>) -> Self {
                use $crate::es::projection::{ProjectionError, ProjectionFailed};
                use $crate::es::CommandError;
                match e {
                    CommandError::Rejected(r) => r.into(),
                    c @ CommandError::Conflict { .. } => {
                        let $message = c.to_string();
                        $conflict
                    }
                    CommandError::KeyReused => $error::KeyReused,
                    CommandError::Database(d) => $error::Database(d),
                    CommandError::Projection(ProjectionFailed {
                        source: ProjectionError::Database(d),
                        ..
                    }) if $crate::db::is_unavailable(&d) => $error::Database(d),
                    other => $error::Internal(other.to_string()),
                }
            }
        }
    };
}
pub(crate) use from_command_errors;

#[cfg(test)]
mod tests {
    use crate::accounts::decider::AccountRejection;
    use crate::accounts::AccountError;
    use crate::es::projection::{ProjectionError, ProjectionFailed};
    use crate::es::CommandError;
    use crate::threats::decider::ThreatsRejection;
    use crate::threats::error::ThreatsError;

    fn conflict<R: std::error::Error>() -> CommandError<R> {
        CommandError::Conflict {
            stream_type: "user".into(),
            stream_id: "u".into(),
            expected: 1,
            actual: Some(2),
        }
    }

    fn projection_failed<R: std::error::Error>(e: diesel::result::Error) -> CommandError<R> {
        CommandError::Projection(ProjectionFailed {
            name: "users",
            source: ProjectionError::Database(e),
        })
    }

    #[test]
    fn every_context_reads_the_executors_errors_the_same_way() {
        let account = |e: CommandError<AccountRejection>| AccountError::from(e);
        assert!(matches!(
            account(CommandError::Rejected(AccountRejection::Unknown)),
            AccountError::Rejected(AccountRejection::Unknown)
        ));
        // Accounts say a conflict in their own words; threats pass on the executor's.
        assert!(matches!(account(conflict()), AccountError::Conflict));
        let threats = ThreatsError::from(conflict::<ThreatsRejection>());
        assert!(
            matches!(&threats, ThreatsError::Conflict(m) if m.contains("changed by someone else")),
            "{threats:?}"
        );
        assert!(matches!(
            account(CommandError::KeyReused),
            AccountError::KeyReused
        ));
        // A read model that lost the database is the database being away; any other failure of
        // a read model is a bug.
        assert!(matches!(
            account(projection_failed(
                diesel::result::Error::BrokenTransactionManager
            )),
            AccountError::Database(_)
        ));
        assert!(matches!(
            account(projection_failed(diesel::result::Error::NotFound)),
            AccountError::Internal(_)
        ));
    }
}
