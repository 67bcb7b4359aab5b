//! The three deciders of the scholarships context: pure `decide` and `evolve`, tested
//! given/when/then without a database.

use std::collections::HashMap;

use chrono::NaiveDate;
use uuid::Uuid;

use super::commands::{
    format_cents, ApplicationCommand, Decision, FundCommand, LegacyAward, ReviewCommand,
};
use super::events::{ApplicationEvent, FundEvent, ReviewEvent};
use crate::es::Decider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AwardStatus {
    Offered,
    Accepted,
    Refused,
    Disbursed,
    Revoked,
}

impl AwardStatus {
    /// Whether the award still holds money of the budget.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            AwardStatus::Offered | AwardStatus::Accepted | AwardStatus::Disbursed
        )
    }

    /// The word the pages and the read models use ("offered").
    pub fn as_str(self) -> &'static str {
        status_word(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Awarded {
        amount_cents: i64,
        status: AwardStatus,
    },
    Declined,
    Waitlisted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub student_id: Uuid,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
pub struct FundState {
    pub created: bool,
    pub is_open: bool,
    pub budget_cents: i64,
    /// The sum of live awards (offered, accepted, disbursed).
    pub committed_cents: i64,
    pub opens_on: Option<NaiveDate>,
    pub closes_on: Option<NaiveDate>,
    pub decisions: HashMap<Uuid, Decided>,
}

impl FundState {
    pub fn remaining_cents(&self) -> i64 {
        self.budget_cents - self.committed_cents
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FundRejection {
    #[error("this fund already exists")]
    AlreadyCreated,
    #[error("there is no such fund")]
    Unknown,
    #[error("the application window must close on or after the day it opens")]
    WindowBackwards,
    #[error("the fund is already open for applications")]
    AlreadyOpen,
    #[error("the fund is already closed")]
    AlreadyClosed,
    #[error("a decision needs a reason")]
    ReasonRequired,
    #[error("this application was already decided ({0}); only a waitlisted application can be decided again")]
    AlreadyDecided(&'static str),
    #[error("the award of {award} exceeds the remaining budget {remaining}")]
    OverBudget { award: String, remaining: String },
    #[error("there is no award for this application")]
    NoAward,
    #[error("this award is not yours")]
    NotYours,
    #[error("this award is already {0}")]
    AwardNotOffered(&'static str),
    #[error("only an accepted award can be disbursed (this one is {0})")]
    NotAccepted(&'static str),
    #[error("this award is {0} and cannot be revoked")]
    NotRevocable(&'static str),
    #[error("this fund already has a decision for this application ({0})")]
    AlreadyImported(&'static str),
    #[error("the student already has a decision in this fund ({0})")]
    StudentAlreadyDecided(&'static str),
}

fn status_word(s: AwardStatus) -> &'static str {
    match s {
        AwardStatus::Offered => "offered",
        AwardStatus::Accepted => "accepted",
        AwardStatus::Refused => "refused",
        AwardStatus::Disbursed => "disbursed",
        AwardStatus::Revoked => "revoked",
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Awarded { .. } => "awarded",
        Outcome::Declined => "declined",
        Outcome::Waitlisted => "waitlisted",
    }
}

/// A fund: its budget and the ledger of its awards, so the budget invariant is decided here.
pub struct Fund;

impl Fund {
    fn award(
        state: &FundState,
        application_id: Uuid,
    ) -> Result<(Uuid, i64, AwardStatus), FundRejection> {
        match state.decisions.get(&application_id) {
            Some(Decided {
                student_id,
                outcome:
                    Outcome::Awarded {
                        amount_cents,
                        status,
                    },
            }) => Ok((*student_id, *amount_cents, *status)),
            _ => Err(FundRejection::NoAward),
        }
    }

    /// A legacy award: recorded as it stands, once per application and student, and (when it
    /// still holds money) only within the remaining budget.
    fn import(state: &FundState, legacy: &LegacyAward) -> Result<Vec<FundEvent>, FundRejection> {
        if let Some(d) = state.decisions.get(&legacy.application_id) {
            return Err(FundRejection::AlreadyImported(outcome_word(d.outcome)));
        }
        if let Some(d) = state
            .decisions
            .values()
            .find(|d| d.student_id == legacy.student_id)
        {
            return Err(FundRejection::StudentAlreadyDecided(outcome_word(
                d.outcome,
            )));
        }
        if legacy.status.is_live() && legacy.amount.cents() > state.remaining_cents() {
            return Err(FundRejection::OverBudget {
                award: legacy.amount.to_string(),
                remaining: format_cents(state.remaining_cents()),
            });
        }
        Ok(vec![FundEvent::AwardImported {
            application_id: legacy.application_id,
            student_id: legacy.student_id,
            amount_cents: legacy.amount.cents(),
            status: legacy.status,
            legacy_id: legacy.legacy_id.clone(),
            legacy_status: legacy.legacy_status.clone(),
            legacy_updated_at: legacy.legacy_updated_at,
            source: legacy.source.clone(),
        }])
    }
}

impl Decider for Fund {
    const STREAM_TYPE: &'static str = "fund";
    type State = FundState;
    type Command = FundCommand;
    type Event = FundEvent;
    type Rejection = FundRejection;

    fn decide(state: &FundState, command: &FundCommand) -> Result<Vec<FundEvent>, FundRejection> {
        use FundCommand as C;
        use FundRejection as R;
        match command {
            C::CreateFund {
                name,
                term,
                budget,
                criteria,
                opens_on,
                closes_on,
            } => {
                if state.created {
                    return Err(R::AlreadyCreated);
                }
                if closes_on < opens_on {
                    return Err(R::WindowBackwards);
                }
                Ok(vec![FundEvent::FundCreated {
                    name: name.clone(),
                    term: term.as_str().to_owned(),
                    budget_cents: budget.cents(),
                    criteria: criteria.clone(),
                    opens_on: *opens_on,
                    closes_on: *closes_on,
                }])
            }
            _ if !state.created => Err(R::Unknown),
            C::OpenFund if state.is_open => Err(R::AlreadyOpen),
            C::OpenFund => Ok(vec![FundEvent::FundOpened {}]),
            C::CloseFund if !state.is_open => Err(R::AlreadyClosed),
            C::CloseFund => Ok(vec![FundEvent::FundClosed {}]),
            C::Decide {
                application_id,
                student_id,
                decision,
                reason,
            } => {
                if reason.trim().is_empty() {
                    return Err(R::ReasonRequired);
                }
                if let Some(previous) = state.decisions.get(application_id) {
                    if previous.outcome != Outcome::Waitlisted {
                        return Err(R::AlreadyDecided(outcome_word(previous.outcome)));
                    }
                }
                let (application_id, student_id, reason) =
                    (*application_id, *student_id, reason.clone());
                Ok(vec![match decision {
                    Decision::Award(amount) => {
                        if amount.cents() > state.remaining_cents() {
                            return Err(R::OverBudget {
                                award: amount.to_string(),
                                remaining: format_cents(state.remaining_cents()),
                            });
                        }
                        FundEvent::AwardGranted {
                            application_id,
                            student_id,
                            amount_cents: amount.cents(),
                            reason,
                        }
                    }
                    Decision::Decline => FundEvent::ApplicationDeclined {
                        application_id,
                        student_id,
                        reason,
                    },
                    Decision::Waitlist if state.decisions.contains_key(&application_id) => {
                        return Err(R::AlreadyDecided("waitlisted"))
                    }
                    Decision::Waitlist => FundEvent::ApplicationWaitlisted {
                        application_id,
                        student_id,
                        reason,
                    },
                }])
            }
            C::AcceptAward {
                application_id,
                student_id,
                enrolled,
            } => {
                let (owner, amount_cents, status) = Fund::award(state, *application_id)?;
                if owner != *student_id {
                    return Err(R::NotYours);
                }
                if status != AwardStatus::Offered {
                    return Err(R::AwardNotOffered(status_word(status)));
                }
                let mut events = vec![FundEvent::AwardAccepted {
                    application_id: *application_id,
                    student_id: owner,
                }];
                if *enrolled {
                    events.push(FundEvent::AwardDisbursed {
                        application_id: *application_id,
                        student_id: owner,
                        amount_cents,
                        reason: "accepted while enrolled".into(),
                    });
                }
                Ok(events)
            }
            C::RefuseAward {
                application_id,
                student_id,
            } => {
                let (owner, amount_cents, status) = Fund::award(state, *application_id)?;
                if owner != *student_id {
                    return Err(R::NotYours);
                }
                if status != AwardStatus::Offered {
                    return Err(R::AwardNotOffered(status_word(status)));
                }
                Ok(vec![FundEvent::AwardRefused {
                    application_id: *application_id,
                    student_id: owner,
                    amount_cents,
                }])
            }
            C::DisburseAward {
                application_id,
                reason,
            } => {
                let (owner, amount_cents, status) = Fund::award(state, *application_id)?;
                if status != AwardStatus::Accepted {
                    return Err(R::NotAccepted(status_word(status)));
                }
                Ok(vec![FundEvent::AwardDisbursed {
                    application_id: *application_id,
                    student_id: owner,
                    amount_cents,
                    reason: reason.clone(),
                }])
            }
            C::ImportAward(legacy) => Fund::import(state, legacy),
            C::RevokeAward {
                application_id,
                reason,
            } => {
                let (owner, amount_cents, status) = Fund::award(state, *application_id)?;
                if !status.is_live() {
                    return Err(R::NotRevocable(status_word(status)));
                }
                if reason.trim().is_empty() {
                    return Err(R::ReasonRequired);
                }
                Ok(vec![FundEvent::AwardRevoked {
                    application_id: *application_id,
                    student_id: owner,
                    amount_cents,
                    reason: reason.clone(),
                }])
            }
        }
    }

    fn evolve(mut state: FundState, event: &FundEvent) -> FundState {
        use FundEvent as E;
        let set_status = |state: &mut FundState, id: &Uuid, to: AwardStatus| {
            if let Some(Decided {
                outcome:
                    Outcome::Awarded {
                        status,
                        amount_cents,
                    },
                ..
            }) = state.decisions.get_mut(id)
            {
                let was_live = status.is_live();
                *status = to;
                match (was_live, to.is_live()) {
                    (true, false) => state.committed_cents -= *amount_cents,
                    (false, true) => state.committed_cents += *amount_cents,
                    _ => {}
                }
            }
        };
        match event {
            E::FundCreated {
                budget_cents,
                opens_on,
                closes_on,
                ..
            } => {
                state.created = true;
                state.budget_cents = *budget_cents;
                state.opens_on = Some(*opens_on);
                state.closes_on = Some(*closes_on);
            }
            E::FundOpened {} => state.is_open = true,
            E::FundClosed {} => state.is_open = false,
            E::AwardGranted {
                application_id,
                student_id,
                amount_cents,
                ..
            } => {
                state.committed_cents += amount_cents;
                state.decisions.insert(
                    *application_id,
                    Decided {
                        student_id: *student_id,
                        outcome: Outcome::Awarded {
                            amount_cents: *amount_cents,
                            status: AwardStatus::Offered,
                        },
                    },
                );
            }
            E::ApplicationDeclined {
                application_id,
                student_id,
                ..
            } => {
                state.decisions.insert(
                    *application_id,
                    Decided {
                        student_id: *student_id,
                        outcome: Outcome::Declined,
                    },
                );
            }
            E::ApplicationWaitlisted {
                application_id,
                student_id,
                ..
            } => {
                state.decisions.insert(
                    *application_id,
                    Decided {
                        student_id: *student_id,
                        outcome: Outcome::Waitlisted,
                    },
                );
            }
            E::AwardAccepted { application_id, .. } => {
                set_status(&mut state, application_id, AwardStatus::Accepted)
            }
            E::AwardRefused { application_id, .. } => {
                set_status(&mut state, application_id, AwardStatus::Refused)
            }
            E::AwardDisbursed { application_id, .. } => {
                set_status(&mut state, application_id, AwardStatus::Disbursed)
            }
            E::AwardRevoked { application_id, .. } => {
                set_status(&mut state, application_id, AwardStatus::Revoked)
            }
            E::AwardImported {
                application_id,
                student_id,
                amount_cents,
                status,
                ..
            } => {
                if status.is_live() {
                    state.committed_cents += amount_cents;
                }
                state.decisions.insert(
                    *application_id,
                    Decided {
                        student_id: *student_id,
                        outcome: Outcome::Awarded {
                            amount_cents: *amount_cents,
                            status: *status,
                        },
                    },
                );
            }
        }
        state
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApplicationState {
    pub submitted: bool,
    pub student_id: Option<Uuid>,
    pub fund_id: Option<Uuid>,
    pub reviewers: Vec<Uuid>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplicationRejection {
    #[error("you have already applied to this fund")]
    AlreadyApplied,
    #[error("there is no such fund")]
    UnknownFund,
    #[error("this fund is not taking applications now (its window is {opens_on} to {closes_on}, and it must be open)")]
    WindowClosed {
        opens_on: NaiveDate,
        closes_on: NaiveDate,
    },
    #[error("a statement is required")]
    StatementRequired,
    #[error("there is no such application")]
    Unknown,
    #[error("the applicant cannot review their own application: choose another reviewer")]
    OwnApplication,
    #[error("this reviewer is already assigned to the application: choose another reviewer")]
    AlreadyAssigned,
}

/// One student's application to one fund, and the reviewers assigned to it.
pub struct Application;

impl Decider for Application {
    const STREAM_TYPE: &'static str = "scholarship_application";
    type State = ApplicationState;
    type Command = ApplicationCommand;
    type Event = ApplicationEvent;
    type Rejection = ApplicationRejection;

    fn decide(
        state: &ApplicationState,
        command: &ApplicationCommand,
    ) -> Result<Vec<ApplicationEvent>, ApplicationRejection> {
        use ApplicationRejection as R;
        match command {
            ApplicationCommand::Submit {
                fund_id,
                student_id,
                statement,
                fund,
                today,
            } => {
                if state.submitted {
                    return Err(R::AlreadyApplied);
                }
                if !fund.exists {
                    return Err(R::UnknownFund);
                }
                if !fund.is_open || *today < fund.opens_on || *today > fund.closes_on {
                    return Err(R::WindowClosed {
                        opens_on: fund.opens_on,
                        closes_on: fund.closes_on,
                    });
                }
                if statement.trim().is_empty() {
                    return Err(R::StatementRequired);
                }
                Ok(vec![ApplicationEvent::ScholarshipApplied {
                    fund_id: *fund_id,
                    student_id: *student_id,
                    statement: statement.clone(),
                }])
            }
            ApplicationCommand::AssignReviewer { reviewer_id } => {
                if !state.submitted {
                    return Err(R::Unknown);
                }
                if state.student_id == Some(*reviewer_id) {
                    return Err(R::OwnApplication);
                }
                if state.reviewers.contains(reviewer_id) {
                    return Err(R::AlreadyAssigned);
                }
                Ok(vec![ApplicationEvent::ReviewerAssigned {
                    reviewer_id: *reviewer_id,
                }])
            }
        }
    }

    fn evolve(mut state: ApplicationState, event: &ApplicationEvent) -> ApplicationState {
        match event {
            ApplicationEvent::ScholarshipApplied {
                fund_id,
                student_id,
                ..
            } => {
                state.submitted = true;
                state.fund_id = Some(*fund_id);
                state.student_id = Some(*student_id);
            }
            ApplicationEvent::ReviewerAssigned { reviewer_id } => {
                state.reviewers.push(*reviewer_id)
            }
        }
        state
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReviewState {
    /// The latest revision number (0: not reviewed yet).
    pub revision: i32,
    pub scores: Vec<i32>,
    pub comment: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewRejection {
    #[error("you are not assigned to review this application")]
    NotAssigned,
    #[error("the committee has decided this application; reviews are closed")]
    Decided,
    #[error("this revision changes nothing: change a score or the comment")]
    Unchanged,
}

/// One reviewer's review of one application: submitted once, revised any number of times.
pub struct Review;

impl Decider for Review {
    const STREAM_TYPE: &'static str = "scholarship_review";
    type State = ReviewState;
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type Rejection = ReviewRejection;

    fn decide(
        state: &ReviewState,
        command: &ReviewCommand,
    ) -> Result<Vec<ReviewEvent>, ReviewRejection> {
        let ReviewCommand::Submit {
            application_id,
            reviewer_id,
            scores,
            comment,
            assigned,
            decided,
        } = command;
        if !assigned {
            return Err(ReviewRejection::NotAssigned);
        }
        if *decided {
            return Err(ReviewRejection::Decided);
        }
        let (application_id, reviewer_id, scores, comment) = (
            *application_id,
            *reviewer_id,
            scores.values().to_vec(),
            comment.clone(),
        );
        if state.revision == 0 {
            return Ok(vec![ReviewEvent::ReviewSubmitted {
                application_id,
                reviewer_id,
                scores,
                comment,
                revision: 1,
            }]);
        }
        if state.scores == scores && state.comment == comment {
            return Err(ReviewRejection::Unchanged);
        }
        Ok(vec![ReviewEvent::ReviewRevised {
            application_id,
            reviewer_id,
            scores,
            comment,
            revision: state.revision + 1,
        }])
    }

    fn evolve(mut state: ReviewState, event: &ReviewEvent) -> ReviewState {
        match event {
            ReviewEvent::ReviewSubmitted {
                scores,
                comment,
                revision,
                ..
            }
            | ReviewEvent::ReviewRevised {
                scores,
                comment,
                revision,
                ..
            } => {
                state.revision = *revision;
                state.scores = scores.clone();
                state.comment = comment.clone();
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrollment::commands::Term;
    use crate::es::decider::given;
    use crate::scholarships::commands::{Amount, FundWindow, Scores};

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn created(budget: i64) -> FundEvent {
        FundEvent::FundCreated {
            name: "Merit".into(),
            term: "2027-fall".into(),
            budget_cents: budget,
            criteria: "GPA".into(),
            opens_on: day("2027-01-01"),
            closes_on: day("2027-03-01"),
        }
    }

    fn award(app: Uuid, student: Uuid, cents: i64) -> FundCommand {
        FundCommand::Decide {
            application_id: app,
            student_id: student,
            decision: Decision::Award(Amount::from_cents(cents)),
            reason: "strong".into(),
        }
    }

    fn granted(app: Uuid, student: Uuid, cents: i64) -> FundEvent {
        FundEvent::AwardGranted {
            application_id: app,
            student_id: student,
            amount_cents: cents,
            reason: "strong".into(),
        }
    }

    #[test]
    fn a_fund_is_created_once_with_a_forward_window() {
        given::<Fund>(&[])
            .when(FundCommand::CreateFund {
                name: "Merit".into(),
                term: Term::parse("2027-fall").unwrap(),
                budget: Amount::from_cents(100_000),
                criteria: "GPA".into(),
                opens_on: day("2027-01-01"),
                closes_on: day("2027-03-01"),
            })
            .then(&[created(100_000)]);
        given::<Fund>(&[])
            .when(FundCommand::CreateFund {
                name: "Merit".into(),
                term: Term::parse("2027-fall").unwrap(),
                budget: Amount::from_cents(100_000),
                criteria: "GPA".into(),
                opens_on: day("2027-03-01"),
                closes_on: day("2027-01-01"),
            })
            .then_rejected("must close on or after");
        given::<Fund>(&[created(1)])
            .when(FundCommand::OpenFund)
            .then(&[FundEvent::FundOpened {}]);
        given::<Fund>(&[created(1), FundEvent::FundOpened {}])
            .when(FundCommand::OpenFund)
            .then_rejected("already open");
        given::<Fund>(&[created(1)])
            .when(FundCommand::CloseFund)
            .then_rejected("already closed");
        given::<Fund>(&[])
            .when(FundCommand::OpenFund)
            .then_rejected("no such fund");
    }

    #[test]
    fn awards_never_exceed_the_budget() {
        let (a, b, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        given::<Fund>(&[created(100_000)])
            .when(award(a, s, 60_000))
            .then(&[granted(a, s, 60_000)]);
        given::<Fund>(&[created(100_000), granted(a, s, 60_000)])
            .when(award(b, s, 50_000))
            .then_rejected("the award of $500.00 exceeds the remaining budget $400.00");
        given::<Fund>(&[created(100_000), granted(a, s, 60_000)])
            .when(award(b, s, 40_000))
            .then(&[granted(b, s, 40_000)]);
    }

    #[test]
    fn refused_and_revoked_awards_return_to_the_budget() {
        let (a, b, s) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let refused = FundEvent::AwardRefused {
            application_id: a,
            student_id: s,
            amount_cents: 100_000,
        };
        given::<Fund>(&[created(100_000), granted(a, s, 100_000), refused])
            .when(award(b, s, 100_000))
            .then(&[granted(b, s, 100_000)]);
        let revoked = FundEvent::AwardRevoked {
            application_id: a,
            student_id: s,
            amount_cents: 100_000,
            reason: "withdrew".into(),
        };
        given::<Fund>(&[created(100_000), granted(a, s, 100_000), revoked])
            .when(award(b, s, 100_000))
            .then(&[granted(b, s, 100_000)]);
    }

    #[test]
    fn decisions_are_final_except_the_waitlist() {
        let (a, s) = (Uuid::new_v4(), Uuid::new_v4());
        let waitlisted = FundEvent::ApplicationWaitlisted {
            application_id: a,
            student_id: s,
            reason: "maybe".into(),
        };
        given::<Fund>(&[created(100_000), waitlisted.clone()])
            .when(award(a, s, 1_000))
            .then(&[granted(a, s, 1_000)]);
        given::<Fund>(&[created(100_000), granted(a, s, 1_000)])
            .when(FundCommand::Decide {
                application_id: a,
                student_id: s,
                decision: Decision::Decline,
                reason: "changed our minds".into(),
            })
            .then_rejected("already decided (awarded)");
        given::<Fund>(&[created(100_000), waitlisted])
            .when(FundCommand::Decide {
                application_id: a,
                student_id: s,
                decision: Decision::Waitlist,
                reason: "still".into(),
            })
            .then_rejected("already decided (waitlisted)");
        given::<Fund>(&[created(100_000)])
            .when(FundCommand::Decide {
                application_id: a,
                student_id: s,
                decision: Decision::Decline,
                reason: "  ".into(),
            })
            .then_rejected("needs a reason");
    }

    #[test]
    fn an_accepted_award_is_disbursed_at_once_when_enrolled_else_later() {
        let (a, s) = (Uuid::new_v4(), Uuid::new_v4());
        let accepted = FundEvent::AwardAccepted {
            application_id: a,
            student_id: s,
        };
        given::<Fund>(&[created(100_000), granted(a, s, 5_000)])
            .when(FundCommand::AcceptAward {
                application_id: a,
                student_id: s,
                enrolled: false,
            })
            .then(std::slice::from_ref(&accepted));
        given::<Fund>(&[created(100_000), granted(a, s, 5_000)])
            .when(FundCommand::AcceptAward {
                application_id: a,
                student_id: s,
                enrolled: true,
            })
            .then(&[
                accepted.clone(),
                FundEvent::AwardDisbursed {
                    application_id: a,
                    student_id: s,
                    amount_cents: 5_000,
                    reason: "accepted while enrolled".into(),
                },
            ]);
        given::<Fund>(&[created(100_000), granted(a, s, 5_000)])
            .when(FundCommand::DisburseAward {
                application_id: a,
                reason: "enrolled".into(),
            })
            .then_rejected("only an accepted award can be disbursed");
        given::<Fund>(&[created(100_000), granted(a, s, 5_000), accepted.clone()])
            .when(FundCommand::AcceptAward {
                application_id: a,
                student_id: s,
                enrolled: false,
            })
            .then_rejected("already accepted");
        given::<Fund>(&[created(100_000), granted(a, s, 5_000)])
            .when(FundCommand::AcceptAward {
                application_id: a,
                student_id: Uuid::new_v4(),
                enrolled: false,
            })
            .then_rejected("not yours");
        given::<Fund>(&[created(100_000), granted(a, s, 5_000), accepted])
            .when(FundCommand::RevokeAward {
                application_id: a,
                reason: "withdrew: moved away".into(),
            })
            .then(&[FundEvent::AwardRevoked {
                application_id: a,
                student_id: s,
                amount_cents: 5_000,
                reason: "withdrew: moved away".into(),
            }]);
    }

    #[test]
    fn a_legacy_award_is_recorded_once_and_only_live_ones_hold_budget() {
        use crate::scholarships::commands::LegacyAward;
        let (a, b, s, t) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let legacy = |app: Uuid, student: Uuid, cents: i64, status: AwardStatus| LegacyAward {
            application_id: app,
            student_id: student,
            amount: Amount::from_cents(cents),
            status,
            legacy_id: "AWD-1".into(),
            legacy_status: "ACCEPTED".into(),
            legacy_updated_at: "2026-06-01T10:00:00Z".parse().unwrap(),
            source: "awards.csv".into(),
        };
        let imported = |l: &LegacyAward| FundEvent::AwardImported {
            application_id: l.application_id,
            student_id: l.student_id,
            amount_cents: l.amount.cents(),
            status: l.status,
            legacy_id: l.legacy_id.clone(),
            legacy_status: l.legacy_status.clone(),
            legacy_updated_at: l.legacy_updated_at,
            source: l.source.clone(),
        };
        let accepted = legacy(a, s, 80_000, AwardStatus::Accepted);
        given::<Fund>(&[created(100_000)])
            .when(FundCommand::ImportAward(accepted.clone()))
            .then(&[imported(&accepted)]);
        // Live: it holds its amount, so the next one must fit in what remains.
        given::<Fund>(&[created(100_000), imported(&accepted)])
            .when(FundCommand::ImportAward(legacy(
                b,
                t,
                30_000,
                AwardStatus::Offered,
            )))
            .then_rejected("the award of $300.00 exceeds the remaining budget $200.00");
        // A refused award holds nothing.
        let refused = legacy(b, t, 30_000, AwardStatus::Refused);
        given::<Fund>(&[created(100_000), imported(&accepted)])
            .when(FundCommand::ImportAward(refused.clone()))
            .then(&[imported(&refused)]);
        given::<Fund>(&[created(100_000), imported(&accepted)])
            .when(FundCommand::ImportAward(accepted.clone()))
            .then_rejected("already has a decision for this application");
        given::<Fund>(&[created(100_000), imported(&accepted)])
            .when(FundCommand::ImportAward(legacy(
                b,
                s,
                1_000,
                AwardStatus::Offered,
            )))
            .then_rejected("the student already has a decision in this fund (awarded)");
        given::<Fund>(&[])
            .when(FundCommand::ImportAward(accepted.clone()))
            .then_rejected("no such fund");
        // The decider takes over: an imported accepted award is disbursed or revoked.
        given::<Fund>(&[created(100_000), imported(&accepted)])
            .when(FundCommand::DisburseAward {
                application_id: a,
                reason: "enrolled".into(),
            })
            .then(&[FundEvent::AwardDisbursed {
                application_id: a,
                student_id: s,
                amount_cents: 80_000,
                reason: "enrolled".into(),
            }]);
        given::<Fund>(&[created(100_000), imported(&refused)])
            .when(FundCommand::RevokeAward {
                application_id: b,
                reason: "no".into(),
            })
            .then_rejected("this award is refused and cannot be revoked");
    }

    fn window(open: bool) -> FundWindow {
        FundWindow {
            exists: true,
            is_open: open,
            opens_on: day("2027-01-01"),
            closes_on: day("2027-03-01"),
        }
    }

    #[test]
    fn students_apply_once_while_the_window_is_open() {
        let (f, s) = (Uuid::new_v4(), Uuid::new_v4());
        let submit = |open: bool, today: &str| ApplicationCommand::Submit {
            fund_id: f,
            student_id: s,
            statement: "I need it".into(),
            fund: window(open),
            today: day(today),
        };
        let applied = ApplicationEvent::ScholarshipApplied {
            fund_id: f,
            student_id: s,
            statement: "I need it".into(),
        };
        given::<Application>(&[])
            .when(submit(true, "2027-02-01"))
            .then(std::slice::from_ref(&applied));
        given::<Application>(&[])
            .when(submit(false, "2027-02-01"))
            .then_rejected("not taking applications");
        given::<Application>(&[])
            .when(submit(true, "2027-03-02"))
            .then_rejected("not taking applications");
        given::<Application>(std::slice::from_ref(&applied))
            .when(submit(true, "2027-02-01"))
            .then_rejected("already applied");
        given::<Application>(std::slice::from_ref(&applied))
            .when(ApplicationCommand::AssignReviewer { reviewer_id: s })
            .then_rejected("cannot review their own");
        let r = Uuid::new_v4();
        given::<Application>(&[
            applied.clone(),
            ApplicationEvent::ReviewerAssigned { reviewer_id: r },
        ])
        .when(ApplicationCommand::AssignReviewer { reviewer_id: r })
        .then_rejected("already assigned");
    }

    #[test]
    fn reviews_are_revised_with_every_revision_kept() {
        let (a, r) = (Uuid::new_v4(), Uuid::new_v4());
        let submit = |scores: &[&str], assigned, decided| ReviewCommand::Submit {
            application_id: a,
            reviewer_id: r,
            scores: Scores::parse(scores).unwrap(),
            comment: "ok".into(),
            assigned,
            decided,
        };
        let first = ReviewEvent::ReviewSubmitted {
            application_id: a,
            reviewer_id: r,
            scores: vec![3, 3, 3, 3],
            comment: "ok".into(),
            revision: 1,
        };
        given::<Review>(&[])
            .when(submit(&["3", "3", "3", "3"], true, false))
            .then(std::slice::from_ref(&first));
        given::<Review>(std::slice::from_ref(&first))
            .when(submit(&["4", "3", "3", "3"], true, false))
            .then(&[ReviewEvent::ReviewRevised {
                application_id: a,
                reviewer_id: r,
                scores: vec![4, 3, 3, 3],
                comment: "ok".into(),
                revision: 2,
            }]);
        given::<Review>(std::slice::from_ref(&first))
            .when(submit(&["3", "3", "3", "3"], true, false))
            .then_rejected("changes nothing");
        given::<Review>(&[])
            .when(submit(&["3", "3", "3", "3"], false, false))
            .then_rejected("not assigned");
        given::<Review>(&[first])
            .when(submit(&["4", "3", "3", "3"], true, true))
            .then_rejected("reviews are closed");
    }
}
