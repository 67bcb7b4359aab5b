//! What a student is told on their next page about their applications (the notifications feed).

use diesel::PgConnection;

use super::events::FundEvent;
use crate::es::subscriber::HandlerError;
use crate::es::RecordedEvent;
use crate::ops::notifications::{Notice, NotificationRule};

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
        ]
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
            FundEvent::AwardGranted { student_id, amount_cents, .. } => (
                student_id,
                format!("Your scholarship application was decided: you are offered an award of {}. Accept or decline it.", money(amount_cents)),
            ),
            FundEvent::ApplicationDeclined { student_id, reason, .. } => (
                student_id,
                format!("Your scholarship application was decided: declined ({reason})."),
            ),
            FundEvent::ApplicationWaitlisted { student_id, reason, .. } => (
                student_id,
                format!("Your scholarship application was waitlisted ({reason})."),
            ),
            FundEvent::AwardDisbursed { student_id, amount_cents, .. } => {
                (student_id, format!("Your award of {} was disbursed.", money(amount_cents)))
            }
            FundEvent::AwardRevoked { student_id, reason, .. } => {
                (student_id, format!("Your award was revoked: {reason}."))
            }
            _ => return Ok(vec![]),
        };
        Ok(vec![Notice {
            user_id: student_id,
            message,
            link: "/scholarships".into(),
        }])
    }
}
