//! Enrollment: students move through the steps of section 2 of the design, and every step is an
//! event on the student's `enrollment` stream (stream id = the student's user id). The student's
//! state is folded from those events; the pipeline is a projection of them.

pub mod commands;
pub mod decider;
pub mod demo;
pub mod error;
pub mod events;
pub mod notices;
pub mod projections;
pub mod queries;
pub mod routes;
pub mod service;

pub use commands::{Decision, Document, EnrollmentCommand, LegacyEnrollment, Term};
pub use decider::{Enrollment, EnrollmentRejection, EnrollmentState, Stage, Step};
pub use error::EnrollmentError;
pub use events::EnrollmentEvent;
pub use projections::EnrollmentProjection;

use std::sync::Arc;

use crate::accounts::Role;
use crate::context::{BoundedContext, DemoResult, NavEntry};
use crate::es::Projection;
use crate::ops::NotificationRule;
use crate::web::AppState;

/// The enrollment context as the application registers it.
pub struct EnrollmentContext;

impl BoundedContext for EnrollmentContext {
    fn name(&self) -> &'static str {
        "enrollment"
    }

    fn describe(
        &self,
        event: &crate::es::RecordedEvent,
    ) -> Option<crate::ops::describe::EventDescription> {
        (event.stream_type == "enrollment")
            .then(|| event.decode::<events::EnrollmentEvent>().ok())
            .flatten()
            .map(|e| {
                crate::ops::describe::EventDescription::new(e.describe()).field("Term", e.term())
            })
    }

    fn routes(&self, cfg: &mut actix_web::web::ServiceConfig) {
        routes::routes(cfg);
    }

    fn projections(&self) -> Vec<Arc<dyn Projection>> {
        vec![Arc::new(EnrollmentProjection)]
    }

    fn notification_rules(&self) -> Vec<Arc<dyn NotificationRule>> {
        vec![Arc::new(notices::EnrollmentNotices)]
    }

    fn navigation(&self) -> &'static [NavEntry] {
        const NAV: [NavEntry; 2] = [
            NavEntry::new(Role::Student, "/enrollment", "My enrollment"),
            NavEntry::new(Role::Staff, "/enrollment/pipeline", "Pipeline"),
        ];
        &NAV
    }

    fn seed_demo(&self, state: &AppState) -> DemoResult {
        demo::seed(state)
    }
}
