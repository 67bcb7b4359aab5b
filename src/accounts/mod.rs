//! Accounts: users with one role, argon2id credentials, sessions and login throttling.
//! Account changes are events on a `user` stream so the audit log shows who granted what.

pub mod decider;
pub mod error;
pub mod events;
pub mod passwords;
pub mod projections;
pub mod queries;
pub mod routes;
pub mod service;
pub mod sessions;
pub mod throttle;

pub use decider::{Account, AccountCommand, Role};
pub use error::AccountError;
pub use events::AccountEvent;
pub use queries::User;
pub use service::NewAccount;
pub use sessions::Viewer;

use std::sync::Arc;

use crate::context::{BoundedContext, DemoResult, NavEntry};
use crate::es::Projection;
use crate::ops::NotificationRule;
use crate::web::AppState;

/// The accounts context as the application registers it.
pub struct AccountsContext;

impl BoundedContext for AccountsContext {
    fn name(&self) -> &'static str {
        "accounts"
    }

    fn describe(
        &self,
        event: &crate::es::RecordedEvent,
    ) -> Option<crate::ops::describe::EventDescription> {
        (event.stream_type == "user")
            .then(|| event.decode::<events::AccountEvent>().ok())
            .flatten()
            .map(|e| e.describe())
    }

    fn routes(&self, cfg: &mut actix_web::web::ServiceConfig) {
        routes::routes(cfg);
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![Arc::new(projections::UsersProjection)]
    }

    fn notification_rules(&self) -> Vec<Arc<dyn NotificationRule>> {
        vec![Arc::new(crate::ops::notifications::AccountNotices)]
    }

    fn navigation(&self) -> &'static [NavEntry] {
        const NAV: [NavEntry; 1] = [NavEntry::new(Role::Admin, "/admin/accounts", "Accounts")];
        &NAV
    }

    /// The demo's four accounts, one per role (the other contexts add their own people).
    fn seed_demo(&self, state: &AppState) -> DemoResult {
        crate::demo::seed_accounts(state)
    }
}
