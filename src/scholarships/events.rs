//! Facts of the scholarships context. Names are distinct from other contexts' event types
//! (enrollment has its own `ApplicationSubmitted`), so a projection never mistakes one for another.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::es::DomainEvent;

/// Events of a `fund` stream: the fund itself and every decision and award change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum FundEvent {
    FundCreated {
        name: String,
        term: String,
        budget_cents: i64,
        criteria: String,
        opens_on: NaiveDate,
        closes_on: NaiveDate,
    },
    FundOpened {},
    FundClosed {},
    AwardGranted {
        application_id: Uuid,
        student_id: Uuid,
        amount_cents: i64,
        reason: String,
    },
    ApplicationDeclined {
        application_id: Uuid,
        student_id: Uuid,
        reason: String,
    },
    ApplicationWaitlisted {
        application_id: Uuid,
        student_id: Uuid,
        reason: String,
    },
    AwardAccepted {
        application_id: Uuid,
        student_id: Uuid,
    },
    /// The student turned the award down; its amount returns to the budget.
    AwardRefused {
        application_id: Uuid,
        student_id: Uuid,
        amount_cents: i64,
    },
    AwardDisbursed {
        application_id: Uuid,
        student_id: Uuid,
        amount_cents: i64,
        reason: String,
    },
    /// The award is taken back (the student withdrew); its amount returns to the budget.
    AwardRevoked {
        application_id: Uuid,
        student_id: Uuid,
        amount_cents: i64,
        reason: String,
    },
}

impl DomainEvent for FundEvent {}

impl FundEvent {
    pub const TYPES: &'static [&'static str] = &[
        "FundCreated",
        "FundOpened",
        "FundClosed",
        "AwardGranted",
        "ApplicationDeclined",
        "ApplicationWaitlisted",
        "AwardAccepted",
        "AwardRefused",
        "AwardDisbursed",
        "AwardRevoked",
    ];

    /// The application a decision or award event is about.
    pub fn application_id(&self) -> Option<Uuid> {
        use FundEvent as E;
        match self {
            E::AwardGranted { application_id, .. }
            | E::ApplicationDeclined { application_id, .. }
            | E::ApplicationWaitlisted { application_id, .. }
            | E::AwardAccepted { application_id, .. }
            | E::AwardRefused { application_id, .. }
            | E::AwardDisbursed { application_id, .. }
            | E::AwardRevoked { application_id, .. } => Some(*application_id),
            E::FundCreated { .. } | E::FundOpened {} | E::FundClosed {} => None,
        }
    }
}

/// Events of a `scholarship_application` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ApplicationEvent {
    ScholarshipApplied {
        fund_id: Uuid,
        student_id: Uuid,
        statement: String,
    },
    ReviewerAssigned {
        reviewer_id: Uuid,
    },
}

impl DomainEvent for ApplicationEvent {}

impl ApplicationEvent {
    pub const TYPES: &'static [&'static str] = &["ScholarshipApplied", "ReviewerAssigned"];
}

/// Events of a `scholarship_review` stream (id `{application}:{reviewer}`): every revision kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ReviewEvent {
    ReviewSubmitted {
        application_id: Uuid,
        reviewer_id: Uuid,
        scores: Vec<i32>,
        comment: String,
        revision: i32,
    },
    ReviewRevised {
        application_id: Uuid,
        reviewer_id: Uuid,
        scores: Vec<i32>,
        comment: String,
        revision: i32,
    },
}

impl DomainEvent for ReviewEvent {}

impl ReviewEvent {
    pub const TYPES: &'static [&'static str] = &["ReviewSubmitted", "ReviewRevised"];
}

/// The stream id of one reviewer's review of one application.
pub fn review_stream_id(application_id: Uuid, reviewer_id: Uuid) -> String {
    format!("{application_id}:{reviewer_id}")
}
