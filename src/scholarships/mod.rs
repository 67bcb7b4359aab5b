//! Scholarships: staff create funds, students apply, reviewers score applications against a
//! rubric, the committee decides within the fund's budget, and awards follow enrollment.
//!
//! Streams: `fund` (the budget and every decision and award change, so the budget invariant is
//! decided on one stream), `scholarship_application` (one per student per fund, with its
//! reviewers), `scholarship_review` (one per reviewer per application, every revision an event).

pub mod as_of;
pub mod commands;
pub mod decider;
pub mod demo;
pub mod error;
pub mod events;
pub mod notices;
pub mod projections;
pub mod queries;
pub mod reactor;
pub mod routes;
pub mod service;

pub use commands::{Amount, Rubric, Scores};
pub use decider::{Application, Fund, Review};
pub use error::ScholarshipsError;
pub use reactor::EnrollmentReaction;

use std::sync::Arc;

use crate::accounts::Role;
use crate::context::{BoundedContext, DemoResult, NavEntry};
use crate::es::{EventStore, Projection, Subscriber};
use crate::ops::NotificationRule;
use crate::web::AppState;

/// The scholarships context as the application registers it.
pub struct ScholarshipsContext;

impl BoundedContext for ScholarshipsContext {
    fn name(&self) -> &'static str {
        "scholarships"
    }

    fn routes(&self, cfg: &mut actix_web::web::ServiceConfig) {
        routes::routes(cfg);
    }

    /// The fund events with words of their own; the others read generically ("Award granted",
    /// with their fields).
    fn describe(
        &self,
        event: &crate::es::RecordedEvent,
    ) -> Option<crate::ops::describe::EventDescription> {
        match event.stream_type.as_str() {
            "fund" => event.decode::<events::FundEvent>().ok()?.describe(),
            "scholarship_application" => {
                Some(event.decode::<events::ApplicationEvent>().ok()?.describe())
            }
            "scholarship_review" => Some(event.decode::<events::ReviewEvent>().ok()?.describe()),
            _ => None,
        }
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(projections::FundsProjection),
            Arc::new(projections::ApplicationsProjection),
            Arc::new(projections::EnrolledStudentsProjection),
        ]
    }

    /// Awards follow the student's enrollment (the talk's "process events for multiple contexts").
    fn subscribers(&self, store: &EventStore) -> Vec<Arc<dyn Subscriber>> {
        vec![Arc::new(EnrollmentReaction {
            store: store.clone(),
        })]
    }

    fn notification_rules(&self) -> Vec<Arc<dyn NotificationRule>> {
        vec![
            Arc::new(notices::DecisionNotices),
            Arc::new(notices::ReviewNotices),
        ]
    }

    fn navigation(&self) -> &'static [NavEntry] {
        const NAV: [NavEntry; 3] = [
            NavEntry::new(Role::Student, "/scholarships", "Scholarships"),
            NavEntry::new(Role::Staff, "/scholarships/funds", "Funds"),
            NavEntry::new(Role::Staff, "/scholarships/reviews", "My reviews"),
        ];
        &NAV
    }

    fn seed_demo(&self, state: &AppState) -> DemoResult {
        demo::seed(state)
    }
}
