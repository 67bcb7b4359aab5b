//! Enrollment: students move through the steps of section 2 of the design, and every step is an
//! event on the student's `enrollment` stream (stream id = the student's user id). The student's
//! state is folded from those events; the pipeline is a projection of them.

pub mod commands;
pub mod decider;
pub mod demo;
pub mod events;
pub mod projections;
pub mod queries;
pub mod routes;
pub mod service;

pub use commands::{Decision, Document, EnrollmentCommand, Term};
pub use decider::{Enrollment, EnrollmentRejection, EnrollmentState, Stage, Step};
pub use events::EnrollmentEvent;
pub use projections::EnrollmentProjection;
pub use routes::routes;
