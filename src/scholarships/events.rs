//! Facts of the scholarships context. Names are distinct from other contexts' event types
//! (enrollment has its own `ApplicationSubmitted`), so a projection never mistakes one for another.

use crate::ops::describe::EventDescription;
use crate::web::format::money;
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
    pub fn describe(&self) -> Option<EventDescription> {
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
                EventDescription::new(format!(
                    "Award imported from the legacy system: {} {}",
                    money(*amount_cents),
                    status.as_str()
                ))
                .field("Legacy award", legacy_id)
                .field("Legacy status", legacy_status)
                .field("Now", status.as_str())
                .field("Amount", money(*amount_cents))
                .field(
                    "Last changed in the legacy system",
                    legacy_updated_at.format("%Y-%m-%d %H:%M UTC"),
                )
                .field("From the file", source)
                .field("Student", student_id)
                .field("Application", application_id),
            ),
            FundEvent::FundCreated {
                name,
                term,
                budget_cents,
                criteria,
                opens_on,
                closes_on,
            } => Some(
                EventDescription::new(format!("Fund created: {name}, {term}"))
                    .field("Budget", money(*budget_cents))
                    .field("Applications", format!("{opens_on} to {closes_on}"))
                    .field("Criteria", criteria),
            ),
            FundEvent::FundOpened {} => Some(EventDescription::new("Fund opened to applications")),
            FundEvent::FundClosed {} => Some(EventDescription::new("Fund closed to applications")),
            FundEvent::AwardGranted {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => Some(
                EventDescription::new(format!("Award granted: {}", money(*amount_cents)))
                    .field("Reason", reason)
                    .field("Student", student_id)
                    .field("Application", application_id),
            ),
            FundEvent::ApplicationDeclined {
                application_id,
                student_id,
                reason,
            } => Some(
                EventDescription::new("Application declined")
                    .field("Reason", reason)
                    .field("Student", student_id)
                    .field("Application", application_id),
            ),
            FundEvent::ApplicationWaitlisted {
                application_id,
                student_id,
                reason,
            } => Some(
                EventDescription::new("Application waitlisted")
                    .field("Reason", reason)
                    .field("Student", student_id)
                    .field("Application", application_id),
            ),
            FundEvent::AwardAccepted {
                application_id,
                student_id,
            } => Some(
                EventDescription::new("Award accepted by the student")
                    .field("Student", student_id)
                    .field("Application", application_id),
            ),
            FundEvent::AwardRefused {
                application_id,
                student_id,
                amount_cents,
            } => Some(
                EventDescription::new(format!(
                    "Award declined by the student: {} back in the budget",
                    money(*amount_cents)
                ))
                .field("Student", student_id)
                .field("Application", application_id),
            ),
            FundEvent::AwardDisbursed {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => Some(
                EventDescription::new(format!("Award disbursed: {}", money(*amount_cents)))
                    .field("Reason", reason)
                    .field("Student", student_id)
                    .field("Application", application_id),
            ),
            FundEvent::AwardRevoked {
                application_id,
                student_id,
                amount_cents,
                reason,
            } => Some(
                EventDescription::new(format!(
                    "Award revoked: {} back in the budget",
                    money(*amount_cents)
                ))
                .field("Reason", reason)
                .field("Student", student_id)
                .field("Application", application_id),
            ),
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

    /// The event as the application's history says it.
    pub fn describe(&self) -> EventDescription {
        match self {
            ApplicationEvent::ScholarshipApplied {
                fund_id,
                student_id,
                statement,
            } => EventDescription::new("Applied for the scholarship")
                .field("Statement", statement)
                .field("Student", student_id)
                .field("Fund", fund_id),
            ApplicationEvent::ReviewerAssigned { reviewer_id } => {
                EventDescription::new("Reviewer assigned").field("Reviewer", reviewer_id)
            }
        }
    }
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

    /// The event as the review's history says it: each score with its criterion ("Academic merit:
    /// 4 of 5"), never the bare list.
    pub fn describe(&self) -> EventDescription {
        let (summary, scores, comment, revision) = match self {
            ReviewEvent::ReviewSubmitted {
                scores,
                comment,
                revision,
                ..
            } => ("Review submitted", scores, comment, revision),
            ReviewEvent::ReviewRevised {
                scores,
                comment,
                revision,
                ..
            } => ("Review revised", scores, comment, revision),
        };
        let mut d = EventDescription::new(format!("{summary} (revision {revision})"));
        for ((_, label), score) in super::commands::Rubric::CRITERIA.iter().zip(scores) {
            d = d.field(
                label,
                format!("{score} of {}", super::commands::Rubric::MAX),
            );
        }
        d.field("Comment", comment)
    }
}

/// The stream id of one reviewer's review of one application.
pub fn review_stream_id(application_id: Uuid, reviewer_id: Uuid) -> String {
    format!("{application_id}:{reviewer_id}")
}

#[cfg(test)]
mod describe_tests {
    use super::*;

    fn fields(d: &EventDescription) -> Vec<(String, String)> {
        d.fields
            .iter()
            .map(|f| (f.label.clone(), f.value.clone()))
            .collect()
    }

    #[test]
    fn awards_read_with_their_money_and_reviews_with_each_criterion() {
        let (app, student) = (Uuid::nil(), Uuid::nil());
        let granted = FundEvent::AwardGranted {
            application_id: app,
            student_id: student,
            amount_cents: 250_000,
            reason: "strong plan".into(),
        }
        .describe()
        .unwrap();
        assert_eq!(granted.summary, "Award granted: $2,500.00");
        assert!(fields(&granted).contains(&("Reason".into(), "strong plan".into())));
        let revoked = FundEvent::AwardRevoked {
            application_id: app,
            student_id: student,
            amount_cents: 120_000,
            reason: "withdrew".into(),
        }
        .describe()
        .unwrap();
        assert_eq!(
            revoked.summary,
            "Award revoked: $1,200.00 back in the budget"
        );

        let review = ReviewEvent::ReviewRevised {
            application_id: app,
            reviewer_id: student,
            scores: vec![4, 3, 5, 2],
            comment: "clear".into(),
            revision: 2,
        }
        .describe();
        assert_eq!(review.summary, "Review revised (revision 2)");
        let f = fields(&review);
        assert_eq!(f.len(), 5);
        assert_eq!(f[0].1, "4 of 5");
        assert_eq!(f[0].0, super::super::commands::Rubric::CRITERIA[0].1);
        assert_eq!(f[4], ("Comment".into(), "clear".into()));
    }
}
