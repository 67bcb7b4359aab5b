//! A bounded context as the application registers it: one value per context, listed once in
//! [`crate::startup::contexts`]. Everything a context adds to the application comes through here
//! (its routes, read models, reactions, audit and notification rules, navigation and demo data),
//! so a new context is its folder, its migration, its templates and one line in that list.

use std::sync::Arc;

use actix_web::web;

use crate::accounts::Role;
use crate::es::{EventStore, Projection, Subscriber};
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

    /// Its part of `serve --demo` (idempotent: a second run adds nothing).
    fn seed_demo(&self, _state: &AppState) -> DemoResult {
        Ok(())
    }
}
