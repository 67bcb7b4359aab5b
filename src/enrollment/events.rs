use serde::{Deserialize, Serialize};

use super::commands::{Decision, Document};
use super::decider::Stage;
use crate::es::DomainEvent;

/// Facts of one student's enrollment (stream type `enrollment`, stream id = the student's user id).
/// Every payload carries the term, so other contexts can read any event on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum EnrollmentEvent {
    Inquired {
        term: String,
    },
    ApplicationStarted {
        term: String,
    },
    ApplicationSubmitted {
        term: String,
    },
    DocumentReceived {
        term: String,
        document: Document,
    },
    AdmissionDecided {
        term: String,
        decision: Decision,
    },
    OfferAccepted {
        term: String,
        /// The deposit paid with the acceptance, in cents.
        deposit_cents: i64,
    },
    OrientationCompleted {
        term: String,
    },
    CoursesRegistered {
        term: String,
        courses: Vec<String>,
    },
    Enrolled {
        term: String,
    },
    Withdrawn {
        term: String,
        reason: String,
    },
    Reinstated {
        term: String,
    },
    /// What a legacy system knew of this enrollment, brought in by `heyboss import enrollments`:
    /// its record's id and status as the legacy system wrote them, and the stage that status maps
    /// to. The steps before it are not invented; the decider takes over from that stage.
    EnrollmentImported {
        term: String,
        legacy_id: String,
        legacy_status: String,
        /// When the legacy system last changed the record.
        legacy_updated_at: chrono::DateTime<chrono::Utc>,
        /// The file it came from.
        source: String,
        stage: Stage,
    },
}

impl DomainEvent for EnrollmentEvent {}

impl EnrollmentEvent {
    pub const TYPES: &'static [&'static str] = &[
        "Inquired",
        "ApplicationStarted",
        "ApplicationSubmitted",
        "DocumentReceived",
        "AdmissionDecided",
        "OfferAccepted",
        "OrientationCompleted",
        "CoursesRegistered",
        "Enrolled",
        "Withdrawn",
        "Reinstated",
        "EnrollmentImported",
    ];

    pub fn term(&self) -> &str {
        use EnrollmentEvent as E;
        match self {
            E::Inquired { term }
            | E::ApplicationStarted { term }
            | E::ApplicationSubmitted { term }
            | E::DocumentReceived { term, .. }
            | E::AdmissionDecided { term, .. }
            | E::OfferAccepted { term, .. }
            | E::OrientationCompleted { term }
            | E::CoursesRegistered { term, .. }
            | E::Enrolled { term }
            | E::Withdrawn { term, .. }
            | E::Reinstated { term }
            | E::EnrollmentImported { term, .. } => term,
        }
    }

    /// A sentence for the timeline.
    pub fn describe(&self) -> String {
        use EnrollmentEvent as E;
        match self {
            E::Inquired { term } => format!("Inquired about the {term} term"),
            E::ApplicationStarted { .. } => "Application started".into(),
            E::ApplicationSubmitted { .. } => "Application submitted".into(),
            E::DocumentReceived { document, .. } => {
                format!("Document received: {}", document.label())
            }
            E::AdmissionDecided { decision, .. } => {
                format!("Admission decided: {}", decision.as_str())
            }
            E::OfferAccepted { deposit_cents, .. } => format!(
                "Offer accepted with a deposit of {}",
                super::commands::format_cents(*deposit_cents)
            ),
            E::OrientationCompleted { .. } => "Orientation completed".into(),
            E::CoursesRegistered { courses, .. } => {
                format!("Courses registered: {}", courses.join(", "))
            }
            E::Enrolled { .. } => "Enrolled".into(),
            E::Withdrawn { reason, .. } => format!("Withdrawn: {reason}"),
            E::Reinstated { .. } => "Reinstated".into(),
            E::EnrollmentImported {
                legacy_id,
                legacy_status,
                stage,
                ..
            } => format!(
                "Imported from the legacy system (record {legacy_id}, status {legacy_status}): {}",
                stage.label()
            ),
        }
    }
}
