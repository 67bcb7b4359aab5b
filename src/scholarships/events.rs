//! Facts of the scholarships context. Names are distinct from other contexts' event types
//! (enrollment has its own `ApplicationSubmitted`), so a projection never mistakes one for another.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decider::AwardStatus;
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
    /// An award brought in from a legacy system (`heyboss import awards`): what is known of it,
    /// its legacy id and status as the legacy system wrote them, and the state that status maps
    /// to. No application, review or decision before it is invented; the decider takes over
    /// from that state (an offered award is accepted or refused, an accepted one disbursed or
    /// revoked). A live state (offered, accepted, disbursed) holds its amount of the budget.
    AwardImported {
        application_id: Uuid,
        student_id: Uuid,
        amount_cents: i64,
        status: AwardStatus,
        legacy_id: String,
        legacy_status: String,
        /// When the legacy system last changed the award.
        legacy_updated_at: DateTime<Utc>,
        /// The file it came from.
        source: String,
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
        "AwardImported",
    ];

    /// The event in words, for those that have words of their own (`BoundedContext::describe`).
    pub fn describe(&self) -> Option<crate::ops::describe::EventDescription> {
        match self {
            FundEvent::AwardImported {
                application_id,
                student_id,
                amount_cents,
                status,
                legacy_id,
                legacy_status,
                legacy_updated_at,
                source,
            } => Some(
                crate::ops::describe::EventDescription::new(format!(
                    "Award imported from the legacy system: {} {}",
                    crate::web::format::money(*amount_cents),
                    status.as_str()
                ))
                .field("Legacy award", legacy_id)
                .field("Legacy status", legacy_status)
                .field("Now", status.as_str())
                .field("Amount", crate::web::format::money(*amount_cents))
                .field(
                    "Last changed in the legacy system",
                    legacy_updated_at.format("%Y-%m-%d %H:%M UTC"),
                )
                .field("From the file", source)
                .field("Student", student_id)
                .field("Application", application_id),
            ),
            _ => None,
        }
    }

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
            | E::AwardRevoked { application_id, .. }
            | E::AwardImported { application_id, .. } => Some(*application_id),
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
