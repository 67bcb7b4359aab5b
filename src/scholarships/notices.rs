//! What a student is told on their next page about their applications, and a reviewer about
//! their assignments (the notifications feed).

use diesel::prelude::*;
use uuid::Uuid;

use super::events::{ApplicationEvent, FundEvent, ReviewEvent};
use crate::es::subscriber::HandlerError;
use crate::es::RecordedEvent;
use crate::ops::notifications::{Notice, NotificationRule};
use crate::schema::{scholarship_applications, scholarship_funds};

/// "Your application was decided", and what became of an award afterwards.
pub struct DecisionNotices;

impl NotificationRule for DecisionNotices {
    fn handles(&self) -> &'static [&'static str] {
        &[
            "AwardGranted",
            "ApplicationDeclined",
            "ApplicationWaitlisted",
            "AwardDisbursed",
            "AwardRevoked",
            "AwardAccepted",
            "AwardRefused",
        ]
    }

    /// An award offer asks "accept or decline" until the student answers (or it is revoked).
    fn done(&self, event: &RecordedEvent) -> Result<Vec<(Uuid, String)>, HandlerError> {
        if event.stream_type != "fund" {
            return Ok(vec![]);
        }
        Ok(match event.decode::<FundEvent>()? {
            FundEvent::AwardAccepted {
                application_id,
                student_id,
            }
            | FundEvent::AwardRefused {
                application_id,
                student_id,
                ..
            }
            | FundEvent::AwardRevoked {
                application_id,
                student_id,
                ..
            } => vec![(student_id, award_action(application_id))],
            _ => vec![],
        })
    }

    fn notify(
        &self,
        _: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<Notice>, HandlerError> {
        if event.stream_type != "fund" {
            return Ok(vec![]);
        }
        let money = crate::web::format::money;
        let (student_id, message) = match event.decode::<FundEvent>()? {
            FundEvent::AwardGranted {
                application_id,
                student_id,
                amount_cents,
                ..
            } => {
                let message = format!("Your scholarship application was decided: you are offered an award of {}. Accept or decline it.", money(amount_cents));
                return Ok(vec![Notice::new(student_id, message, "/scholarships")
                    .asking(award_action(application_id))]);
            }
            FundEvent::ApplicationDeclined {
                student_id, reason, ..
            } => (
                student_id,
                format!("Your scholarship application was decided: declined ({reason})."),
            ),
            FundEvent::ApplicationWaitlisted {
                student_id, reason, ..
            } => (
                student_id,
                format!("Your scholarship application was waitlisted ({reason})."),
            ),
            FundEvent::AwardDisbursed {
                student_id,
                amount_cents,
                ..
            } => (
                student_id,
                format!("Your award of {} was disbursed.", money(amount_cents)),
            ),
            FundEvent::AwardRevoked {
                student_id, reason, ..
            } => (student_id, format!("Your award was revoked: {reason}.")),
            _ => return Ok(vec![]),
        };
        Ok(vec![Notice::new(student_id, message, "/scholarships")])
    }
}

fn award_action(application_id: Uuid) -> String {
    format!("award:{application_id}")
}

/// A reviewer hears of each application assigned to them, until they have reviewed it.
pub struct ReviewNotices;

impl NotificationRule for ReviewNotices {
    fn handles(&self) -> &'static [&'static str] {
        &["ReviewerAssigned", "ReviewSubmitted"]
    }

    fn notify(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<Notice>, HandlerError> {
        if event.stream_type != "scholarship_application" {
            return Ok(vec![]);
        }
        let ApplicationEvent::ReviewerAssigned { reviewer_id } = event.decode()? else {
            return Ok(vec![]);
        };
        let Ok(application_id) = Uuid::parse_str(&event.stream_id) else {
            return Ok(vec![]);
        };
        let fund: Option<String> = scholarship_applications::table
            .inner_join(
                scholarship_funds::table
                    .on(scholarship_funds::id.eq(scholarship_applications::fund_id)),
            )
            .filter(scholarship_applications::id.eq(application_id))
            .select(scholarship_funds::name)
            .first(conn)
            .optional()?;
        let message = match fund {
            Some(name) => format!("You were assigned to review an application to {name}."),
            None => "You were assigned to review a scholarship application.".to_owned(),
        };
        let link = format!("/scholarships/applications/{application_id}/review");
        Ok(vec![
            Notice::new(reviewer_id, message, &link).asking(review_action(application_id))
        ])
    }

    fn done(&self, event: &RecordedEvent) -> Result<Vec<(Uuid, String)>, HandlerError> {
        if event.stream_type != "scholarship_review" {
            return Ok(vec![]);
        }
        Ok(match event.decode::<ReviewEvent>()? {
            ReviewEvent::ReviewSubmitted {
                application_id,
                reviewer_id,
                ..
            } => vec![(reviewer_id, review_action(application_id))],
            ReviewEvent::ReviewRevised { .. } => vec![],
        })
    }
}

fn review_action(application_id: Uuid) -> String {
    format!("review:{application_id}")
}
