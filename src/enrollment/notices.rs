//! What a student is told about the steps the office records for them (the notifications feed).

use uuid::Uuid;

use super::commands::Decision;
use super::events::EnrollmentEvent;
use crate::es::subscriber::HandlerError;
use crate::es::RecordedEvent;
use crate::ops::notifications::{Notice, NotificationRule};

/// Documents received, the admission decision, orientation, the confirmed enrollment,
/// withdrawal and reinstatement: every step someone else took on the student's enrollment.
pub struct EnrollmentNotices;

impl NotificationRule for EnrollmentNotices {
    fn handles(&self) -> &'static [&'static str] {
        &[
            "DocumentReceived",
            "AdmissionDecided",
            "OfferAccepted",
            "OrientationCompleted",
            "Enrolled",
            "Withdrawn",
            "Reinstated",
        ]
    }

    fn notify(
        &self,
        _: &mut diesel::PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<Notice>, HandlerError> {
        let Some(student_id) = student(event) else {
            return Ok(vec![]);
        };
        let by_someone_else = event.actor().and_then(|a| a.user_id()) != Some(student_id);
        use EnrollmentEvent as E;
        let message = match event.decode::<EnrollmentEvent>()? {
            E::DocumentReceived { document, .. } if by_someone_else => format!(
                "The admissions office received your {}.",
                document.label().to_lowercase()
            ),
            E::AdmissionDecided { term, decision } if by_someone_else => {
                let message = match decision {
                    Decision::Admitted => format!(
                        "You are admitted for the {term} term. Accept the offer on your enrollment page."
                    ),
                    Decision::Waitlisted => {
                        format!("You are on the waitlist for the {term} term.")
                    }
                    Decision::Denied => format!("You were not admitted for the {term} term."),
                };
                let notice = Notice::new(student_id, message, "/enrollment");
                return Ok(vec![if decision == Decision::Admitted {
                    notice.asking(offer_action(&term))
                } else {
                    notice
                }]);
            }
            E::OrientationCompleted { .. } if by_someone_else => {
                "Your orientation is recorded as completed.".to_owned()
            }
            E::Enrolled { term } if by_someone_else => {
                format!("Your enrollment for the {term} term is confirmed.")
            }
            E::Withdrawn { reason, .. } if by_someone_else => {
                format!("Your enrollment was withdrawn: {reason}.")
            }
            E::Reinstated { .. } if by_someone_else => "Your enrollment was reinstated.".to_owned(),
            _ => return Ok(vec![]),
        };
        Ok(vec![Notice::new(student_id, message, "/enrollment")])
    }

    /// An admission asks the student to accept the offer, until they do or withdraw.
    fn done(&self, event: &RecordedEvent) -> Result<Vec<(Uuid, String)>, HandlerError> {
        let Some(student_id) = student(event) else {
            return Ok(vec![]);
        };
        Ok(match event.decode::<EnrollmentEvent>()? {
            EnrollmentEvent::OfferAccepted { term, .. }
            | EnrollmentEvent::Withdrawn { term, .. } => vec![(student_id, offer_action(&term))],
            _ => vec![],
        })
    }
}

/// The student of an `enrollment` stream (its id).
fn student(event: &RecordedEvent) -> Option<Uuid> {
    if event.stream_type != "enrollment" {
        return None;
    }
    Uuid::parse_str(&event.stream_id).ok()
}

fn offer_action(term: &str) -> String {
    format!("offer:{term}")
}
