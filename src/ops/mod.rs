//! Operations: the audit log and entity histories, projection rebuild and verify, catch-up
//! subscribers (the notifications feed), and `/metrics`. The generic machinery lives in
//! `es::subscriber` and `es::shadow`; this module holds the pages and the registries through which
//! contexts plug in (audit visibility rules, notification rules, subscribers).

pub mod as_of;
pub mod audit;
pub mod causes;
pub mod describe;
pub mod event_log;
pub mod mail;
pub mod metrics;
pub mod notifications;
pub mod projections;
pub mod replay;

use std::sync::Arc;

use actix_web::web;

pub use audit::{AuditScope, EventPredicate};
pub use notifications::{Notice, NotificationRule};

/// The operations context as the application registers it: the audit log, histories,
/// projections, notifications and metrics pages. Its default audit rule lets everyone see
/// their own events.
pub struct Operations;

impl crate::context::BoundedContext for Operations {
    fn name(&self) -> &'static str {
        "operations"
    }

    fn routes(&self, cfg: &mut web::ServiceConfig) {
        routes(cfg);
    }

    fn audit_scopes(&self) -> Vec<Arc<dyn AuditScope>> {
        vec![Arc::new(audit::OwnEvents)]
    }

    fn navigation(&self) -> &'static [crate::context::NavEntry] {
        use crate::accounts::Role::Admin;
        use crate::context::NavEntry;
        const NAV: [NavEntry; 2] = [
            NavEntry::new(Admin, "/audit", "Audit log"),
            NavEntry::new(Admin, "/admin/projections", "Projections"),
        ];
        &NAV
    }
}

/// What contexts register with operations, built once in `startup::operations()`.
#[derive(Clone, Default)]
pub struct Registry {
    /// Rules deciding which events a non-admin may see in the audit log and in histories.
    pub audit_scopes: Vec<Arc<dyn AuditScope>>,
    /// Rules turning events into notifications for users.
    pub notification_rules: Vec<Arc<dyn NotificationRule>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn audit_scope(mut self, scope: impl AuditScope) -> Self {
        self.audit_scopes.push(Arc::new(scope));
        self
    }

    pub fn notification_rule(mut self, rule: impl NotificationRule) -> Self {
        self.notification_rules.push(Arc::new(rule));
        self
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    audit::routes(cfg);
    projections::routes(cfg);
    replay::routes(cfg);
    causes::routes(cfg);
    notifications::routes(cfg);
    metrics::routes(cfg);
}
