//! Threat reports: sensors post events over a JSON API; analysts read top-threat reports built by
//! projections, each seeing only hits of signatures in groups they are cleared for.

pub mod api;
pub mod as_of;
pub mod audit;
pub mod buckets;
pub mod commands;
pub mod decider;
pub mod demo;
pub mod describe;
pub mod error;
pub mod events;
pub mod filters;
pub mod histogram;
pub mod ingest;
pub mod live;
pub mod projections;
pub mod queries;
pub mod report_query;
pub mod rescans;
pub mod revisions;
pub mod routes;
pub mod scope;
pub mod search;
pub mod service;
pub mod simulate;
pub mod threshold;
pub mod triage;

pub use commands::{ClearanceCommand, SensorCommand, SignatureCommand};
pub use decider::ThreatsRejection;
pub use error::ThreatsError;

/// `urlencode` for Tera (its builtin is not compiled in): percent-encodes a path or query part
/// with the application's one encoder.
pub fn register_filters(tera: &mut tera::Tera) {
    tera.register_filter(
        "urlencode",
        |value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = match value {
                tera::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Ok(tera::Value::String(crate::web::render::percent_encode(&s)))
        },
    );
}

use std::sync::Arc;

use crate::accounts::Role;
use crate::context::{BoundedContext, DemoResult, NavEntry};
use crate::es::Projection;
use crate::ops::AuditScope;
use crate::web::AppState;

/// The threat reports context as the application registers it.
pub struct ThreatsContext;

impl BoundedContext for ThreatsContext {
    fn name(&self) -> &'static str {
        "threats"
    }

    fn describe(
        &self,
        event: &crate::es::RecordedEvent,
    ) -> Option<crate::ops::describe::EventDescription> {
        describe::describe(event)
    }

    fn routes(&self, cfg: &mut actix_web::web::ServiceConfig) {
        routes::routes(cfg);
    }

    /// In the order they must run: hits read sessions and files.
    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(projections::SensorsProjection),
            Arc::new(projections::SignaturesProjection),
            Arc::new(projections::ClearancesProjection),
            Arc::new(projections::SessionsProjection),
            Arc::new(projections::HitsProjection),
            Arc::new(triage::TriageProjection),
        ]
    }

    fn audit_scopes(&self) -> Vec<Arc<dyn AuditScope>> {
        vec![Arc::new(audit::AnalystThreatScope)]
    }

    fn navigation(&self) -> &'static [NavEntry] {
        const NAV: [NavEntry; 7] = [
            NavEntry::new(Role::Analyst, "/threats/top/hash", "Top threats"),
            NavEntry::new(Role::Analyst, "/threats/sessions", "Sessions"),
            NavEntry::new(Role::Analyst, "/threats/rescans", "Rescans"),
            NavEntry::new(Role::Admin, "/threats/top/hash", "Top threats"),
            NavEntry::new(Role::Admin, "/threats/rescans", "Rescans"),
            NavEntry::new(Role::Admin, "/admin/signatures", "Signatures"),
            NavEntry::new(Role::Admin, "/admin/sensors", "Sensors"),
        ];
        &NAV
    }

    fn seed_demo(&self, state: &AppState) -> DemoResult {
        demo::seed(state)
    }
}
