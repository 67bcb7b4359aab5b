//! The enrollment decider: which step may follow which, and who may take it.

use serde::{Deserialize, Serialize};

use super::commands::{Decision, Document, EnrollmentCommand, Term};
use super::events::EnrollmentEvent;
use crate::accounts::Role;
use crate::es::Decider;

/// The steps in order. A student's progress is the furthest step reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Inquiry,
    ApplicationStarted,
    ApplicationSubmitted,
    DocumentsReceived,
    AdmissionDecided,
    OfferAccepted,
    OrientationCompleted,
    CoursesRegistered,
    Enrolled,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Inquiry,
        Step::ApplicationStarted,
        Step::ApplicationSubmitted,
        Step::DocumentsReceived,
        Step::AdmissionDecided,
        Step::OfferAccepted,
        Step::OrientationCompleted,
        Step::CoursesRegistered,
        Step::Enrolled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Inquiry => "inquiry",
            Step::ApplicationStarted => "application_started",
            Step::ApplicationSubmitted => "application_submitted",
            Step::DocumentsReceived => "documents_received",
            Step::AdmissionDecided => "admission_decided",
            Step::OfferAccepted => "offer_accepted",
            Step::OrientationCompleted => "orientation_completed",
            Step::CoursesRegistered => "courses_registered",
            Step::Enrolled => "enrolled",
        }
    }

    pub fn parse(raw: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Step::Inquiry => "Inquiry",
            Step::ApplicationStarted => "Application started",
            Step::ApplicationSubmitted => "Application submitted",
            Step::DocumentsReceived => "Documents received",
            Step::AdmissionDecided => "Admission decided",
            Step::OfferAccepted => "Offer accepted",
            Step::OrientationCompleted => "Orientation completed",
            Step::CoursesRegistered => "Courses registered",
            Step::Enrolled => "Enrolled",
        }
    }

    pub fn rank(self) -> i16 {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) as i16
    }

    pub fn from_rank(rank: i16) -> Option<Step> {
        Step::ALL.get(usize::try_from(rank).ok()?).copied()
    }
}

/// One student's enrollment, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrollmentState {
    /// The furthest step reached; `None` before the inquiry.
    pub step: Option<Step>,
    pub term: String,
    pub transcript: bool,
    pub identification: bool,
    /// The latest admission decision.
    pub decision: Option<Decision>,
    pub deposit_cents: Option<i64>,
    pub courses: Vec<String>,
    /// Withdrawn and not reinstated. Progress is kept, so reinstatement returns to the same step.
    pub withdrawn: bool,
    /// The legacy record this enrollment was imported from, if it was.
    pub legacy_id: Option<String>,
}

/// Where a student stands in the pipeline: the step, refined by the decision, or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Inquiry,
    ApplicationStarted,
    ApplicationSubmitted,
    DocumentsReceived,
    Waitlisted,
    Admitted,
    Denied,
    OfferAccepted,
    OrientationCompleted,
    CoursesRegistered,
    Enrolled,
    Withdrawn,
}

impl Stage {
    pub const ALL: [Stage; 12] = [
        Stage::Inquiry,
        Stage::ApplicationStarted,
        Stage::ApplicationSubmitted,
        Stage::DocumentsReceived,
        Stage::Waitlisted,
        Stage::Admitted,
        Stage::Denied,
        Stage::OfferAccepted,
        Stage::OrientationCompleted,
        Stage::CoursesRegistered,
        Stage::Enrolled,
        Stage::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Inquiry => "inquiry",
            Stage::ApplicationStarted => "application_started",
            Stage::ApplicationSubmitted => "application_submitted",
            Stage::DocumentsReceived => "documents_received",
            Stage::Waitlisted => "waitlisted",
            Stage::Admitted => "admitted",
            Stage::Denied => "denied",
            Stage::OfferAccepted => "offer_accepted",
            Stage::OrientationCompleted => "orientation_completed",
            Stage::CoursesRegistered => "courses_registered",
            Stage::Enrolled => "enrolled",
            Stage::Withdrawn => "withdrawn",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::Inquiry => "Inquiry",
            Stage::ApplicationStarted => "Application started",
            Stage::ApplicationSubmitted => "Application submitted",
            Stage::DocumentsReceived => "Documents received",
            Stage::Waitlisted => "Waitlisted",
            Stage::Admitted => "Admitted",
            Stage::Denied => "Denied",
            Stage::OfferAccepted => "Offer accepted",
            Stage::OrientationCompleted => "Orientation completed",
            Stage::CoursesRegistered => "Courses registered",
            Stage::Enrolled => "Enrolled",
            Stage::Withdrawn => "Withdrawn",
        }
    }

    pub fn parse(raw: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Still moving: neither finished (enrolled, denied) nor withdrawn.
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Enrolled | Stage::Denied | Stage::Withdrawn)
    }
}

impl EnrollmentState {
    pub fn stage(&self) -> Option<Stage> {
        let step = self.step?;
        if self.withdrawn {
            return Some(Stage::Withdrawn);
        }
        Some(match step {
            Step::Inquiry => Stage::Inquiry,
            Step::ApplicationStarted => Stage::ApplicationStarted,
            Step::ApplicationSubmitted => Stage::ApplicationSubmitted,
            Step::DocumentsReceived => Stage::DocumentsReceived,
            Step::AdmissionDecided => match self.decision {
                Some(Decision::Admitted) => Stage::Admitted,
                Some(Decision::Denied) => Stage::Denied,
                _ => Stage::Waitlisted,
            },
            Step::OfferAccepted => Stage::OfferAccepted,
            Step::OrientationCompleted => Stage::OrientationCompleted,
            Step::CoursesRegistered => Stage::CoursesRegistered,
            Step::Enrolled => Stage::Enrolled,
        })
    }

    pub fn reached(&self, step: Step) -> bool {
        self.step.is_some_and(|s| s >= step)
    }

    pub fn has(&self, document: Document) -> bool {
        match document {
            Document::Transcript => self.transcript,
            Document::Identification => self.identification,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EnrollmentRejection {
    #[error("there is no enrollment yet: it begins with an inquiry")]
    NotStarted,
    #[error("the enrollment has already begun (inquiry for {0})")]
    AlreadyStarted(String),
    #[error("the student has withdrawn: staff must reinstate the enrollment before anything else can happen")]
    Withdrawn,
    #[error("the student is already enrolled: there are no further steps")]
    AlreadyEnrolled,
    #[error("admission was denied: the enrollment ends here")]
    Denied,
    #[error("{needed} before {wanted}")]
    TooEarly {
        needed: &'static str,
        wanted: &'static str,
    },
    #[error("{0} has already been done")]
    AlreadyDone(&'static str),
    #[error("the {0} has already been received")]
    DocumentAlreadyReceived(&'static str),
    #[error("the student is already waitlisted: decide admitted or denied instead")]
    AlreadyWaitlisted,
    #[error("only an admitted student can accept an offer (the decision is {0})")]
    NotAdmitted(&'static str),
    #[error("the student has already withdrawn")]
    AlreadyWithdrawn,
    #[error("only a withdrawn enrollment can be reinstated")]
    NotWithdrawn,
    #[error("give a reason for withdrawing (at most {max} characters)")]
    ReasonRequired { max: usize },
    #[error("the student's enrollment already has a history in heyboss ({0}): a legacy record is imported only into an enrollment that has not begun")]
    HistoryExists(String),
}

pub struct Enrollment;

impl Decider for Enrollment {
    const STREAM_TYPE: &'static str = "enrollment";
    type State = EnrollmentState;
    type Command = EnrollmentCommand;
    type Event = EnrollmentEvent;
    type Rejection = EnrollmentRejection;

    fn decide(
        state: &EnrollmentState,
        command: &EnrollmentCommand,
    ) -> Result<Vec<EnrollmentEvent>, EnrollmentRejection> {
        use EnrollmentCommand as C;
        use EnrollmentEvent as E;
        use EnrollmentRejection as R;

        let Some(step) = state.step else {
            return match command {
                C::Inquire { term } => Ok(vec![E::Inquired {
                    term: term.as_str().to_owned(),
                }]),
                C::Import(legacy) => Ok(vec![E::EnrollmentImported {
                    term: legacy.term.as_str().to_owned(),
                    legacy_id: legacy.legacy_id.clone(),
                    legacy_status: legacy.legacy_status.clone(),
                    legacy_updated_at: legacy.legacy_updated_at,
                    source: legacy.source.clone(),
                    stage: legacy.stage,
                }]),
                _ => Err(R::NotStarted),
            };
        };
        if let C::Import(legacy) = command {
            // The same legacy record again changes nothing; any other history stays as it is.
            return match &state.legacy_id {
                Some(id) if *id == legacy.legacy_id => Ok(vec![]),
                Some(id) => Err(R::HistoryExists(format!(
                    "imported from legacy record {id}"
                ))),
                None => Err(R::HistoryExists(format!(
                    "{} for {}",
                    state.stage().map_or("inquiry", Stage::as_str),
                    state.term
                ))),
            };
        }
        let term = state.term.clone();
        match command {
            C::Inquire { .. } => return Err(R::AlreadyStarted(term)),
            C::Reinstate if state.withdrawn => return Ok(vec![E::Reinstated { term }]),
            C::Reinstate => return Err(R::NotWithdrawn),
            _ if state.withdrawn => {
                return Err(if matches!(command, C::Withdraw { .. }) {
                    R::AlreadyWithdrawn
                } else {
                    R::Withdrawn
                })
            }
            _ if step == Step::Enrolled => return Err(R::AlreadyEnrolled),
            _ if state.decision == Some(Decision::Denied) => return Err(R::Denied),
            _ => {}
        }

        // A forward step: allowed right after `before`, refused when already reached.
        let next = |target: Step, wanted: &'static str, needed: &'static str, event: E| {
            if state.reached(target) {
                Err(R::AlreadyDone(wanted_done(target)))
            } else if step < Step::ALL[target.rank() as usize - 1] {
                Err(R::TooEarly { needed, wanted })
            } else {
                Ok(vec![event])
            }
        };

        match command {
            C::Inquire { .. } | C::Reinstate | C::Import(_) => unreachable!("handled above"),
            C::StartApplication => next(
                Step::ApplicationStarted,
                "starting an application",
                "an inquiry is needed",
                E::ApplicationStarted { term },
            ),
            C::SubmitApplication => next(
                Step::ApplicationSubmitted,
                "submitting it",
                "the application must be started",
                E::ApplicationSubmitted { term },
            ),
            C::RecordDocument { document } => {
                if state.has(*document) {
                    Err(R::DocumentAlreadyReceived(document.label()))
                } else if step < Step::ApplicationSubmitted {
                    Err(R::TooEarly {
                        needed: "the application must be submitted",
                        wanted: "documents are recorded",
                    })
                } else {
                    Ok(vec![E::DocumentReceived {
                        term,
                        document: *document,
                    }])
                }
            }
            C::DecideAdmission { decision } => {
                if step == Step::AdmissionDecided && state.decision == Some(Decision::Waitlisted) {
                    // A waitlisted student is decided again, once there is room or not.
                    if *decision == Decision::Waitlisted {
                        return Err(R::AlreadyWaitlisted);
                    }
                    return Ok(vec![E::AdmissionDecided {
                        term,
                        decision: *decision,
                    }]);
                }
                next(
                    Step::AdmissionDecided,
                    "an admission decision",
                    "both the transcript and the identification must be received",
                    E::AdmissionDecided {
                        term,
                        decision: *decision,
                    },
                )
            }
            C::AcceptOffer { deposit_cents } => {
                if step == Step::AdmissionDecided && state.decision != Some(Decision::Admitted) {
                    return Err(R::NotAdmitted(
                        state.decision.map_or("not made", Decision::as_str),
                    ));
                }
                next(
                    Step::OfferAccepted,
                    "accepting an offer",
                    "an admission decision is needed",
                    E::OfferAccepted {
                        term,
                        deposit_cents: *deposit_cents,
                    },
                )
            }
            C::CompleteOrientation => next(
                Step::OrientationCompleted,
                "orientation",
                "the offer must be accepted",
                E::OrientationCompleted { term },
            ),
            C::RegisterCourses { courses } => next(
                Step::CoursesRegistered,
                "registering courses",
                "orientation must be completed",
                E::CoursesRegistered {
                    term,
                    courses: courses.clone(),
                },
            ),
            C::ConfirmEnrollment => next(
                Step::Enrolled,
                "enrolling",
                "courses must be registered",
                E::Enrolled { term },
            ),
            C::Withdraw { reason } => {
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > super::commands::MAX_REASON {
                    return Err(R::ReasonRequired {
                        max: super::commands::MAX_REASON,
                    });
                }
                Ok(vec![E::Withdrawn {
                    term,
                    reason: reason.to_owned(),
                }])
            }
        }
    }

    fn evolve(mut state: EnrollmentState, event: &EnrollmentEvent) -> EnrollmentState {
        use EnrollmentEvent as E;
        let advance = |s: &mut EnrollmentState, to: Step| {
            if s.step.is_none_or(|cur| cur < to) {
                s.step = Some(to);
            }
        };
        match event {
            E::Inquired { term } => {
                state.term.clone_from(term);
                advance(&mut state, Step::Inquiry);
            }
            E::ApplicationStarted { .. } => advance(&mut state, Step::ApplicationStarted),
            E::ApplicationSubmitted { .. } => advance(&mut state, Step::ApplicationSubmitted),
            E::DocumentReceived { document, .. } => {
                match document {
                    Document::Transcript => state.transcript = true,
                    Document::Identification => state.identification = true,
                }
                if state.transcript && state.identification {
                    advance(&mut state, Step::DocumentsReceived);
                }
            }
            E::AdmissionDecided { decision, .. } => {
                state.decision = Some(*decision);
                advance(&mut state, Step::AdmissionDecided);
            }
            E::OfferAccepted { deposit_cents, .. } => {
                state.deposit_cents = Some(*deposit_cents);
                advance(&mut state, Step::OfferAccepted);
            }
            E::OrientationCompleted { .. } => advance(&mut state, Step::OrientationCompleted),
            E::CoursesRegistered { courses, .. } => {
                state.courses.clone_from(courses);
                advance(&mut state, Step::CoursesRegistered);
            }
            E::Enrolled { .. } => advance(&mut state, Step::Enrolled),
            E::Withdrawn { .. } => state.withdrawn = true,
            E::Reinstated { .. } => state.withdrawn = false,
            E::EnrollmentImported {
                term,
                legacy_id,
                stage,
                ..
            } => {
                state.term.clone_from(term);
                state.legacy_id = Some(legacy_id.clone());
                imported_stage(&mut state, *stage);
            }
        }
        state
    }
}

/// The state a legacy status's stage stands for: the step, the decision it implies, and the
/// documents an admission decision needs. A withdrawal in a status column keeps no step: the
/// enrollment is withdrawn at the inquiry (reinstating it returns there).
fn imported_stage(state: &mut EnrollmentState, stage: Stage) {
    let (step, decision) = match stage {
        Stage::Inquiry | Stage::Withdrawn => (Step::Inquiry, None),
        Stage::ApplicationStarted => (Step::ApplicationStarted, None),
        Stage::ApplicationSubmitted => (Step::ApplicationSubmitted, None),
        Stage::DocumentsReceived => (Step::DocumentsReceived, None),
        Stage::Waitlisted => (Step::AdmissionDecided, Some(Decision::Waitlisted)),
        Stage::Admitted => (Step::AdmissionDecided, Some(Decision::Admitted)),
        Stage::Denied => (Step::AdmissionDecided, Some(Decision::Denied)),
        Stage::OfferAccepted => (Step::OfferAccepted, Some(Decision::Admitted)),
        Stage::OrientationCompleted => (Step::OrientationCompleted, Some(Decision::Admitted)),
        Stage::CoursesRegistered => (Step::CoursesRegistered, Some(Decision::Admitted)),
        Stage::Enrolled => (Step::Enrolled, Some(Decision::Admitted)),
    };
    state.step = Some(step);
    state.decision = decision;
    state.transcript = step >= Step::DocumentsReceived;
    state.identification = step >= Step::DocumentsReceived;
    state.withdrawn = stage == Stage::Withdrawn;
}

fn wanted_done(step: Step) -> &'static str {
    match step {
        Step::Inquiry => "the inquiry",
        Step::ApplicationStarted => "starting the application",
        Step::ApplicationSubmitted => "submitting the application",
        Step::DocumentsReceived => "receiving the documents",
        Step::AdmissionDecided => "the admission decision",
        Step::OfferAccepted => "accepting the offer",
        Step::OrientationCompleted => "orientation",
        Step::CoursesRegistered => "registering courses",
        Step::Enrolled => "enrolling",
    }
}

/// An action a page may offer, and who takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Inquire,
    Start,
    Submit,
    Document,
    Decide,
    AcceptOffer,
    Orientation,
    RegisterCourses,
    Confirm,
    Withdraw,
    Reinstate,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Inquire,
        Action::Start,
        Action::Submit,
        Action::Document,
        Action::Decide,
        Action::AcceptOffer,
        Action::Orientation,
        Action::RegisterCourses,
        Action::Confirm,
        Action::Withdraw,
        Action::Reinstate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Inquire => "inquire",
            Action::Start => "start",
            Action::Submit => "submit",
            Action::Document => "document",
            Action::Decide => "decide",
            Action::AcceptOffer => "accept",
            Action::Orientation => "orientation",
            Action::RegisterCourses => "courses",
            Action::Confirm => "confirm",
            Action::Withdraw => "withdraw",
            Action::Reinstate => "reinstate",
        }
    }

    pub fn parse(raw: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// Students act for themselves; staff record what the office does.
    pub fn actor(self) -> Role {
        match self {
            Action::Inquire
            | Action::Start
            | Action::Submit
            | Action::AcceptOffer
            | Action::RegisterCourses
            | Action::Withdraw => Role::Student,
            Action::Document
            | Action::Decide
            | Action::Orientation
            | Action::Confirm
            | Action::Reinstate => Role::Staff,
        }
    }

    /// Sample commands of this action; the action is legal when the decider accepts any of them.
    fn samples(self) -> Vec<EnrollmentCommand> {
        use EnrollmentCommand as C;
        match self {
            Action::Inquire => vec![C::Inquire {
                term: Term::parse("2027-fall").expect("a valid term"),
            }],
            Action::Start => vec![C::StartApplication],
            Action::Submit => vec![C::SubmitApplication],
            Action::Document => Document::ALL
                .map(|document| C::RecordDocument { document })
                .to_vec(),
            Action::Decide => Decision::ALL
                .map(|decision| C::DecideAdmission { decision })
                .to_vec(),
            Action::AcceptOffer => vec![C::AcceptOffer { deposit_cents: 1 }],
            Action::Orientation => vec![C::CompleteOrientation],
            Action::RegisterCourses => vec![C::RegisterCourses {
                courses: vec!["CS101".into()],
            }],
            Action::Confirm => vec![C::ConfirmEnrollment],
            Action::Withdraw => vec![C::Withdraw {
                reason: "reason".into(),
            }],
            Action::Reinstate => vec![C::Reinstate],
        }
    }
}

/// The actions legal now for a role: exactly those the decider would accept.
pub fn legal_actions(state: &EnrollmentState, role: Role) -> Vec<Action> {
    Action::ALL
        .into_iter()
        .filter(|a| a.actor() == role)
        .filter(|a| {
            a.samples()
                .iter()
                .any(|c| Enrollment::decide(state, c).is_ok())
        })
        .collect()
}

/// Which documents may still be recorded, and which decisions may be made now.
pub fn missing_documents(state: &EnrollmentState) -> Vec<Document> {
    Document::ALL
        .into_iter()
        .filter(|d| !state.has(*d))
        .collect()
}

pub fn possible_decisions(state: &EnrollmentState) -> Vec<Decision> {
    Decision::ALL
        .into_iter()
        .filter(|decision| {
            Enrollment::decide(
                state,
                &EnrollmentCommand::DecideAdmission {
                    decision: *decision,
                },
            )
            .is_ok()
        })
        .collect()
}

pub fn inquire(term: &Term) -> EnrollmentCommand {
    EnrollmentCommand::Inquire { term: term.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::decider::given;
    use EnrollmentCommand as C;
    use EnrollmentEvent as E;

    const T: &str = "2027-fall";

    fn t() -> String {
        T.into()
    }

    /// The events of a student who has reached `step` (admitted when decided).
    fn history_to(step: Step) -> Vec<E> {
        let all = vec![
            E::Inquired { term: t() },
            E::ApplicationStarted { term: t() },
            E::ApplicationSubmitted { term: t() },
            E::DocumentReceived {
                term: t(),
                document: Document::Transcript,
            },
            E::DocumentReceived {
                term: t(),
                document: Document::Identification,
            },
            E::AdmissionDecided {
                term: t(),
                decision: Decision::Admitted,
            },
            E::OfferAccepted {
                term: t(),
                deposit_cents: 50_000,
            },
            E::OrientationCompleted { term: t() },
            E::CoursesRegistered {
                term: t(),
                courses: vec!["CS101".into()],
            },
            E::Enrolled { term: t() },
        ];
        let n = match step {
            Step::Inquiry => 1,
            Step::ApplicationStarted => 2,
            Step::ApplicationSubmitted => 3,
            Step::DocumentsReceived => 5,
            Step::AdmissionDecided => 6,
            Step::OfferAccepted => 7,
            Step::OrientationCompleted => 8,
            Step::CoursesRegistered => 9,
            Step::Enrolled => 10,
        };
        all.into_iter().take(n).collect()
    }

    fn with(mut events: Vec<E>, more: &[E]) -> Vec<E> {
        events.extend_from_slice(more);
        events
    }

    fn decided(decision: Decision) -> Vec<E> {
        with(
            history_to(Step::DocumentsReceived),
            &[E::AdmissionDecided {
                term: t(),
                decision,
            }],
        )
    }

    fn withdrawn() -> E {
        E::Withdrawn {
            term: t(),
            reason: "moving abroad".into(),
        }
    }

    // ---- legacy records ----

    fn legacy(id: &str, stage: Stage) -> super::super::commands::LegacyEnrollment {
        super::super::commands::LegacyEnrollment {
            term: Term::parse(T).unwrap(),
            legacy_id: id.into(),
            legacy_status: "ADMITTED".into(),
            legacy_updated_at: chrono::DateTime::UNIX_EPOCH,
            source: "legacy.csv".into(),
            stage,
        }
    }

    fn imported(id: &str, stage: Stage) -> E {
        E::EnrollmentImported {
            term: t(),
            legacy_id: id.into(),
            legacy_status: "ADMITTED".into(),
            legacy_updated_at: chrono::DateTime::UNIX_EPOCH,
            source: "legacy.csv".into(),
            stage,
        }
    }

    #[test]
    fn a_legacy_record_begins_an_enrollment_at_its_stage_and_the_decider_takes_over() {
        given::<Enrollment>(&[])
            .when(C::Import(legacy("ENR-1", Stage::Admitted)))
            .then(&[imported("ENR-1", Stage::Admitted)]);
        given::<Enrollment>(&[imported("ENR-1", Stage::Admitted)])
            .when(C::AcceptOffer {
                deposit_cents: 25_000,
            })
            .then(&[E::OfferAccepted {
                term: t(),
                deposit_cents: 25_000,
            }]);
        given::<Enrollment>(&[imported("ENR-1", Stage::Waitlisted)])
            .when(C::DecideAdmission {
                decision: Decision::Admitted,
            })
            .then(&[E::AdmissionDecided {
                term: t(),
                decision: Decision::Admitted,
            }]);
        given::<Enrollment>(&[imported("ENR-1", Stage::Withdrawn)])
            .when(C::Reinstate)
            .then(&[E::Reinstated { term: t() }]);
        given::<Enrollment>(&[imported("ENR-1", Stage::Denied)])
            .when(C::AcceptOffer { deposit_cents: 1 })
            .then_rejected("admission was denied");
    }

    #[test]
    fn a_legacy_record_imported_again_changes_nothing_and_never_overwrites_a_history() {
        given::<Enrollment>(&[imported("ENR-1", Stage::Admitted)])
            .when(C::Import(legacy("ENR-1", Stage::Admitted)))
            .then(&[]);
        given::<Enrollment>(&[imported("ENR-1", Stage::Admitted)])
            .when(C::Import(legacy("ENR-2", Stage::Enrolled)))
            .then_rejected("imported from legacy record ENR-1");
        given::<Enrollment>(&history_to(Step::ApplicationStarted))
            .when(C::Import(legacy("ENR-1", Stage::Admitted)))
            .then_rejected("already has a history in heyboss (application_started for 2027-fall)");
    }

    // ---- every legal step ----

    #[test]
    fn an_inquiry_begins_the_enrollment() {
        given::<Enrollment>(&[])
            .when(C::Inquire {
                term: Term::parse(T).unwrap(),
            })
            .then(&[E::Inquired { term: t() }]);
    }

    #[test]
    fn the_student_starts_and_submits_the_application() {
        given::<Enrollment>(&history_to(Step::Inquiry))
            .when(C::StartApplication)
            .then(&[E::ApplicationStarted { term: t() }]);
        given::<Enrollment>(&history_to(Step::ApplicationStarted))
            .when(C::SubmitApplication)
            .then(&[E::ApplicationSubmitted { term: t() }]);
    }

    #[test]
    fn documents_are_recorded_one_at_a_time_in_any_order() {
        given::<Enrollment>(&history_to(Step::ApplicationSubmitted))
            .when(C::RecordDocument {
                document: Document::Identification,
            })
            .then(&[E::DocumentReceived {
                term: t(),
                document: Document::Identification,
            }]);
        let only_id = with(
            history_to(Step::ApplicationSubmitted),
            &[E::DocumentReceived {
                term: t(),
                document: Document::Identification,
            }],
        );
        given::<Enrollment>(&only_id)
            .when(C::RecordDocument {
                document: Document::Transcript,
            })
            .then(&[E::DocumentReceived {
                term: t(),
                document: Document::Transcript,
            }]);
        let state = Enrollment::fold(&only_id);
        assert_eq!(
            state.step,
            Some(Step::ApplicationSubmitted),
            "one document is not enough"
        );
        let both = Enrollment::fold(&history_to(Step::DocumentsReceived));
        assert_eq!(both.step, Some(Step::DocumentsReceived));
    }

    #[test]
    fn staff_decide_admission_once_both_documents_are_in() {
        for decision in Decision::ALL {
            given::<Enrollment>(&history_to(Step::DocumentsReceived))
                .when(C::DecideAdmission { decision })
                .then(&[E::AdmissionDecided {
                    term: t(),
                    decision,
                }]);
        }
    }

    #[test]
    fn a_waitlisted_student_is_decided_again() {
        for decision in [Decision::Admitted, Decision::Denied] {
            given::<Enrollment>(&decided(Decision::Waitlisted))
                .when(C::DecideAdmission { decision })
                .then(&[E::AdmissionDecided {
                    term: t(),
                    decision,
                }]);
        }
        let admitted_later = with(
            decided(Decision::Waitlisted),
            &[E::AdmissionDecided {
                term: t(),
                decision: Decision::Admitted,
            }],
        );
        given::<Enrollment>(&admitted_later)
            .when(C::AcceptOffer { deposit_cents: 100 })
            .then(&[E::OfferAccepted {
                term: t(),
                deposit_cents: 100,
            }]);
    }

    #[test]
    fn the_rest_of_the_path_to_enrolled() {
        given::<Enrollment>(&decided(Decision::Admitted))
            .when(C::AcceptOffer {
                deposit_cents: 25_000,
            })
            .then(&[E::OfferAccepted {
                term: t(),
                deposit_cents: 25_000,
            }]);
        given::<Enrollment>(&history_to(Step::OfferAccepted))
            .when(C::CompleteOrientation)
            .then(&[E::OrientationCompleted { term: t() }]);
        given::<Enrollment>(&history_to(Step::OrientationCompleted))
            .when(C::RegisterCourses {
                courses: vec!["CS101".into(), "MATH201".into()],
            })
            .then(&[E::CoursesRegistered {
                term: t(),
                courses: vec!["CS101".into(), "MATH201".into()],
            }]);
        given::<Enrollment>(&history_to(Step::CoursesRegistered))
            .when(C::ConfirmEnrollment)
            .then(&[E::Enrolled { term: t() }]);
        let state = Enrollment::fold(&history_to(Step::Enrolled));
        assert_eq!(state.stage(), Some(Stage::Enrolled));
        assert_eq!(state.deposit_cents, Some(50_000));
    }

    #[test]
    fn a_student_withdraws_at_any_step_before_enrolled() {
        for step in Step::ALL.into_iter().filter(|s| *s != Step::Enrolled) {
            given::<Enrollment>(&history_to(step))
                .when(C::Withdraw {
                    reason: "  moving abroad ".into(),
                })
                .then(&[withdrawn()]);
        }
        given::<Enrollment>(&decided(Decision::Waitlisted))
            .when(C::Withdraw {
                reason: "moving abroad".into(),
            })
            .then(&[withdrawn()]);
    }

    #[test]
    fn reinstatement_returns_to_the_step_the_student_was_at() {
        let h = with(history_to(Step::AdmissionDecided), &[withdrawn()]);
        given::<Enrollment>(&h)
            .when(C::Reinstate)
            .then(&[E::Reinstated { term: t() }]);
        let back = Enrollment::fold(&with(h, &[E::Reinstated { term: t() }]));
        assert_eq!(back.stage(), Some(Stage::Admitted));
        given::<Enrollment>(&with(
            history_to(Step::AdmissionDecided),
            &[withdrawn(), E::Reinstated { term: t() }],
        ))
        .when(C::AcceptOffer { deposit_cents: 10 })
        .then(&[E::OfferAccepted {
            term: t(),
            deposit_cents: 10,
        }]);
    }

    // ---- every kind of illegal transition ----

    #[test]
    fn nothing_happens_before_the_inquiry() {
        given::<Enrollment>(&[])
            .when(C::StartApplication)
            .then_rejected("begins with an inquiry");
        given::<Enrollment>(&[])
            .when(C::Reinstate)
            .then_rejected("begins with an inquiry");
        given::<Enrollment>(&history_to(Step::Inquiry))
            .when(C::Inquire {
                term: Term::parse("2028-spring").unwrap(),
            })
            .then_rejected("already begun (inquiry for 2027-fall)");
    }

    #[test]
    fn steps_cannot_be_skipped() {
        given::<Enrollment>(&history_to(Step::Inquiry))
            .when(C::SubmitApplication)
            .then_rejected("the application must be started before submitting it");
        given::<Enrollment>(&history_to(Step::ApplicationStarted))
            .when(C::RecordDocument {
                document: Document::Transcript,
            })
            .then_rejected("the application must be submitted before documents are recorded");
        given::<Enrollment>(&history_to(Step::ApplicationSubmitted))
            .when(C::DecideAdmission {
                decision: Decision::Admitted,
            })
            .then_rejected(
                "both the transcript and the identification must be received before an admission decision",
            );
        given::<Enrollment>(&history_to(Step::DocumentsReceived))
            .when(C::AcceptOffer { deposit_cents: 1 })
            .then_rejected("an admission decision is needed before accepting an offer");
        given::<Enrollment>(&history_to(Step::AdmissionDecided))
            .when(C::RegisterCourses {
                courses: vec!["CS101".into()],
            })
            .then_rejected("orientation must be completed before registering courses");
        given::<Enrollment>(&history_to(Step::AdmissionDecided))
            .when(C::CompleteOrientation)
            .then_rejected("the offer must be accepted before orientation");
        given::<Enrollment>(&history_to(Step::OrientationCompleted))
            .when(C::ConfirmEnrollment)
            .then_rejected("courses must be registered before enrolling");
    }

    #[test]
    fn steps_are_taken_once() {
        given::<Enrollment>(&history_to(Step::ApplicationSubmitted))
            .when(C::StartApplication)
            .then_rejected("starting the application has already been done");
        given::<Enrollment>(&history_to(Step::ApplicationSubmitted))
            .when(C::SubmitApplication)
            .then_rejected("submitting the application has already been done");
        given::<Enrollment>(&history_to(Step::DocumentsReceived))
            .when(C::RecordDocument {
                document: Document::Transcript,
            })
            .then_rejected("the transcript has already been received");
        given::<Enrollment>(&decided(Decision::Admitted))
            .when(C::DecideAdmission {
                decision: Decision::Denied,
            })
            .then_rejected("the admission decision has already been done");
        given::<Enrollment>(&history_to(Step::OfferAccepted))
            .when(C::AcceptOffer { deposit_cents: 1 })
            .then_rejected("accepting the offer has already been done");
        given::<Enrollment>(&history_to(Step::CoursesRegistered))
            .when(C::RegisterCourses {
                courses: vec!["CS101".into()],
            })
            .then_rejected("registering courses has already been done");
    }

    #[test]
    fn waitlisting_is_not_repeated_and_does_not_open_the_offer() {
        given::<Enrollment>(&decided(Decision::Waitlisted))
            .when(C::DecideAdmission {
                decision: Decision::Waitlisted,
            })
            .then_rejected("already waitlisted");
        given::<Enrollment>(&decided(Decision::Waitlisted))
            .when(C::AcceptOffer { deposit_cents: 1 })
            .then_rejected(
                "only an admitted student can accept an offer (the decision is waitlisted)",
            );
    }

    #[test]
    fn a_denial_ends_the_enrollment() {
        for command in [
            C::AcceptOffer { deposit_cents: 1 },
            C::DecideAdmission {
                decision: Decision::Admitted,
            },
            C::Withdraw { reason: "x".into() },
        ] {
            given::<Enrollment>(&decided(Decision::Denied))
                .when(command)
                .then_rejected("admission was denied");
        }
        assert_eq!(
            Enrollment::fold(&decided(Decision::Denied)).stage(),
            Some(Stage::Denied)
        );
    }

    #[test]
    fn an_enrolled_student_has_no_further_steps() {
        for command in [
            C::Withdraw { reason: "x".into() },
            C::ConfirmEnrollment,
            C::StartApplication,
        ] {
            given::<Enrollment>(&history_to(Step::Enrolled))
                .when(command)
                .then_rejected("already enrolled");
        }
    }

    #[test]
    fn a_withdrawn_student_must_be_reinstated_first() {
        let h = with(history_to(Step::ApplicationSubmitted), &[withdrawn()]);
        given::<Enrollment>(&h)
            .when(C::RecordDocument {
                document: Document::Transcript,
            })
            .then_rejected("staff must reinstate the enrollment");
        given::<Enrollment>(&h)
            .when(C::Withdraw {
                reason: "again".into(),
            })
            .then_rejected("already withdrawn");
        given::<Enrollment>(&history_to(Step::ApplicationSubmitted))
            .when(C::Reinstate)
            .then_rejected("only a withdrawn enrollment can be reinstated");
    }

    #[test]
    fn withdrawing_needs_a_reason() {
        given::<Enrollment>(&history_to(Step::Inquiry))
            .when(C::Withdraw {
                reason: "   ".into(),
            })
            .then_rejected("give a reason");
        given::<Enrollment>(&history_to(Step::Inquiry))
            .when(C::Withdraw {
                reason: "x".repeat(501),
            })
            .then_rejected("at most 500 characters");
    }

    // ---- the actions a page offers ----

    #[test]
    fn pages_offer_exactly_the_legal_actions_per_role() {
        let s = |events: &[E]| Enrollment::fold(events);
        assert_eq!(
            legal_actions(&s(&history_to(Step::Inquiry)), Role::Student),
            [Action::Start, Action::Withdraw]
        );
        assert!(legal_actions(&s(&history_to(Step::Inquiry)), Role::Staff).is_empty());
        assert_eq!(
            legal_actions(&s(&history_to(Step::ApplicationSubmitted)), Role::Staff),
            [Action::Document]
        );
        assert_eq!(
            legal_actions(&s(&history_to(Step::DocumentsReceived)), Role::Staff),
            [Action::Decide]
        );
        assert_eq!(
            possible_decisions(&s(&decided(Decision::Waitlisted))),
            [Decision::Admitted, Decision::Denied]
        );
        assert_eq!(
            legal_actions(&s(&decided(Decision::Admitted)), Role::Student),
            [Action::AcceptOffer, Action::Withdraw]
        );
        assert!(legal_actions(&s(&decided(Decision::Denied)), Role::Student).is_empty());
        let w = with(history_to(Step::OfferAccepted), &[withdrawn()]);
        assert!(legal_actions(&s(&w), Role::Student).is_empty());
        assert_eq!(legal_actions(&s(&w), Role::Staff), [Action::Reinstate]);
        assert_eq!(
            legal_actions(&s(&history_to(Step::CoursesRegistered)), Role::Staff),
            [Action::Confirm]
        );
        assert!(legal_actions(&s(&history_to(Step::Enrolled)), Role::Student).is_empty());
        // A student account made by an admin has no enrollment yet: the student may inquire.
        assert_eq!(legal_actions(&s(&[]), Role::Student), [Action::Inquire]);
        assert!(legal_actions(&s(&[]), Role::Staff).is_empty());
    }
}
