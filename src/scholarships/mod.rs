//! Scholarships: staff create funds, students apply, reviewers score applications against a
//! rubric, the committee decides within the fund's budget, and awards follow enrollment.
//!
//! Streams: `fund` (the budget and every decision and award change, so the budget invariant is
//! decided on one stream), `scholarship_application` (one per student per fund, with its
//! reviewers), `scholarship_review` (one per reviewer per application, every revision an event).

pub mod commands;
pub mod decider;
pub mod demo;
pub mod events;
pub mod notices;
pub mod projections;
pub mod queries;
pub mod reactor;
pub mod routes;
pub mod service;

pub use commands::{Amount, Rubric, Scores};
pub use decider::{Application, Fund, Review};
pub use reactor::EnrollmentReaction;
pub use routes::routes;
