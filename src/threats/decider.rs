//! Deciders of the threat-reports context: signatures, clearances and sensors. Sensor events are
//! validated as whole batches in `ingest` (a pure function over what the batch refers to).

use std::collections::BTreeSet;

use super::commands::{ClearanceCommand, SensorCommand, SignatureCommand, TriageCommand};
use super::events::{ClearanceEvent, SensorAdminEvent, SignatureEvent, TriageEvent};
use crate::es::Decider;

/// The group of signatures a sensor reported before an admin created them: admins only.
pub const RESTRICTED_GROUP: &str = "restricted";
pub const DEFAULT_SCORE: i32 = 50;

/// Why a threats command was refused: one variant per reason, worded for the admin who sees it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThreatsRejection {
    #[error("a visibility group has 1 to 40 characters")]
    GroupLength,
    #[error("a visibility group uses only letters, digits, - and _")]
    GroupCharacters,
    #[error("a signature name has 1 to 100 characters and no control characters")]
    SignatureName,
    #[error("score {0} is out of range: scores are 0 to 100")]
    ScoreOutOfRange(i64),
    #[error("The default score is a number from 0 to 100.")]
    ScoreNotANumber,
    #[error("a sensor name has 1 to 100 characters")]
    SensorName,
    /// A free-text field broke the one rule of `crate::text` (its message names the field).
    #[error("{0}")]
    Text(String),
    #[error("signature {0} is retired and cannot be revised")]
    SignatureRetired(String),
    #[error("there is no such signature")]
    NoSuchSignature,
    #[error("the signature is already retired")]
    SignatureAlreadyRetired,
    #[error("the restricted group is for admins only: classify the signature into another group instead")]
    RestrictedClearance,
    #[error("no signature is in the group {0:?}: choose one of the groups signatures are in")]
    UnknownGroup(String),
    #[error("the analyst already holds the {0} clearance")]
    ClearanceHeld(String),
    #[error("the analyst does not hold the {0} clearance")]
    ClearanceNotHeld(String),
    #[error("there is no user {0:?}")]
    NoSuchUser(String),
    #[error("{0} is not an analyst: clearances are for analysts (admins see everything)")]
    NotAnAnalyst(String),
    #[error("the sensor is already registered")]
    SensorAlreadyRegistered,
    #[error("the sensor is already revoked")]
    SensorAlreadyRevoked,
    #[error("there is no such sensor")]
    NoSuchSensor,
    #[error("A triage is about a hash or a session.")]
    TriageSubject,
    #[error("A file hash is an MD5: 32 hexadecimal digits.")]
    TriageHash,
    #[error("A session id has 1 to 200 characters.")]
    TriageSession,
    #[error("Choose a status: triaged, false positive or escalated.")]
    TriageStatus,
    #[error("Write a note: say what you found.")]
    TriageNoteMissing,
    #[error("You can triage only what you may see: this {0} has no hits in the signatures you are cleared for.")]
    TriageNotVisible(&'static str),
}

// ---------- signatures ----------

pub struct Signature;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignatureState {
    pub exists: bool,
    pub rule_text: String,
    pub group: String,
    pub default_score: i32,
    pub retired: bool,
}

impl Decider for Signature {
    const STREAM_TYPE: &'static str = "signature";
    type State = SignatureState;
    type Command = SignatureCommand;
    type Event = SignatureEvent;
    type Rejection = ThreatsRejection;

    fn decide(
        s: &SignatureState,
        c: &SignatureCommand,
    ) -> Result<Vec<SignatureEvent>, ThreatsRejection> {
        match c {
            SignatureCommand::Set {
                name,
                rule_text,
                group,
                default_score,
            } => {
                if !s.exists {
                    return Ok(vec![SignatureEvent::SignatureCreated {
                        name: name.clone(),
                        rule_text: rule_text.clone().unwrap_or_default(),
                        group: group.clone(),
                        default_score: default_score.unwrap_or(DEFAULT_SCORE),
                    }]);
                }
                if s.retired {
                    return Err(ThreatsRejection::SignatureRetired(name.clone()));
                }
                let rule_text = rule_text.clone().unwrap_or_else(|| s.rule_text.clone());
                let default_score = default_score.unwrap_or(s.default_score);
                if rule_text == s.rule_text && *group == s.group && default_score == s.default_score
                {
                    return Ok(vec![]);
                }
                Ok(vec![SignatureEvent::SignatureRevised {
                    rule_text,
                    group: group.clone(),
                    default_score,
                }])
            }
            SignatureCommand::RegisterRestricted { name } => {
                if s.exists {
                    return Ok(vec![]);
                }
                Ok(vec![SignatureEvent::SignatureRegisteredRestricted {
                    name: name.clone(),
                }])
            }
            SignatureCommand::Retire => {
                if !s.exists {
                    return Err(ThreatsRejection::NoSuchSignature);
                }
                if s.retired {
                    return Err(ThreatsRejection::SignatureAlreadyRetired);
                }
                Ok(vec![SignatureEvent::SignatureRetired {}])
            }
        }
    }

    fn evolve(mut s: SignatureState, e: &SignatureEvent) -> SignatureState {
        match e {
            SignatureEvent::SignatureCreated {
                rule_text,
                group,
                default_score,
                ..
            }
            | SignatureEvent::SignatureRevised {
                rule_text,
                group,
                default_score,
            } => {
                s.exists = true;
                s.rule_text = rule_text.clone();
                s.group = group.clone();
                s.default_score = *default_score;
            }
            SignatureEvent::SignatureRegisteredRestricted { .. } => {
                s.exists = true;
                s.group = RESTRICTED_GROUP.to_owned();
                s.default_score = DEFAULT_SCORE;
            }
            SignatureEvent::SignatureRetired {} => s.retired = true,
        }
        s
    }
}

// ---------- clearances ----------

pub struct Clearances;

impl Decider for Clearances {
    const STREAM_TYPE: &'static str = "clearance";
    type State = BTreeSet<String>;
    type Command = ClearanceCommand;
    type Event = ClearanceEvent;
    type Rejection = ThreatsRejection;

    fn decide(
        held: &BTreeSet<String>,
        c: &ClearanceCommand,
    ) -> Result<Vec<ClearanceEvent>, ThreatsRejection> {
        match c {
            ClearanceCommand::Grant {
                group,
                group_exists,
            } => {
                if group == RESTRICTED_GROUP {
                    return Err(ThreatsRejection::RestrictedClearance);
                }
                if held.contains(group) {
                    return Err(ThreatsRejection::ClearanceHeld(group.clone()));
                }
                if !group_exists {
                    return Err(ThreatsRejection::UnknownGroup(group.clone()));
                }
                Ok(vec![ClearanceEvent::ClearanceGranted {
                    group: group.clone(),
                }])
            }
            ClearanceCommand::Revoke { group } => {
                if !held.contains(group) {
                    return Err(ThreatsRejection::ClearanceNotHeld(group.clone()));
                }
                Ok(vec![ClearanceEvent::ClearanceRevoked {
                    group: group.clone(),
                }])
            }
        }
    }

    fn evolve(mut held: BTreeSet<String>, e: &ClearanceEvent) -> BTreeSet<String> {
        match e {
            ClearanceEvent::ClearanceGranted { group } => {
                held.insert(group.clone());
            }
            ClearanceEvent::ClearanceRevoked { group } => {
                held.remove(group);
            }
        }
        held
    }
}

// ---------- sensors ----------

pub struct Sensor;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum SensorState {
    #[default]
    Unknown,
    Active,
    Revoked,
}

impl Decider for Sensor {
    const STREAM_TYPE: &'static str = "sensor";
    type State = SensorState;
    type Command = SensorCommand;
    type Event = SensorAdminEvent;
    type Rejection = ThreatsRejection;

    fn decide(
        s: &SensorState,
        c: &SensorCommand,
    ) -> Result<Vec<SensorAdminEvent>, ThreatsRejection> {
        match (s, c) {
            (SensorState::Unknown, SensorCommand::Register { name }) => {
                Ok(vec![SensorAdminEvent::SensorRegistered {
                    name: name.clone(),
                }])
            }
            (_, SensorCommand::Register { .. }) => Err(ThreatsRejection::SensorAlreadyRegistered),
            (SensorState::Active, SensorCommand::Revoke) => {
                Ok(vec![SensorAdminEvent::SensorRevoked {}])
            }
            (SensorState::Revoked, SensorCommand::Revoke) => {
                Err(ThreatsRejection::SensorAlreadyRevoked)
            }
            (SensorState::Unknown, SensorCommand::Revoke) => Err(ThreatsRejection::NoSuchSensor),
        }
    }

    fn evolve(_: SensorState, e: &SensorAdminEvent) -> SensorState {
        match e {
            SensorAdminEvent::SensorRegistered { .. } => SensorState::Active,
            SensorAdminEvent::SensorRevoked {} => SensorState::Revoked,
        }
    }
}

// ---------- triage ----------

/// One subject's triage: every mark is kept (its history); the decision needs only what the
/// command carries (whether the analyst sees any of the subject's hits).
pub struct Triage;

impl Decider for Triage {
    const STREAM_TYPE: &'static str = "threat_triage";
    /// How many times the subject was marked.
    type State = u64;
    type Command = TriageCommand;
    type Event = TriageEvent;
    type Rejection = ThreatsRejection;

    fn decide(_: &u64, c: &TriageCommand) -> Result<Vec<TriageEvent>, ThreatsRejection> {
        if c.visible_signatures.is_empty() {
            return Err(ThreatsRejection::TriageNotVisible(c.subject.as_str()));
        }
        if c.note.trim().is_empty() {
            return Err(ThreatsRejection::TriageNoteMissing);
        }
        let mut signatures = c.visible_signatures.clone();
        signatures.sort();
        signatures.dedup();
        Ok(vec![TriageEvent::ThreatTriaged {
            subject_kind: c.subject.as_str().to_owned(),
            subject: c.id.clone(),
            status: c.status.as_str().to_owned(),
            note: c.note.clone(),
            signatures,
        }])
    }

    fn evolve(marks: u64, _: &TriageEvent) -> u64 {
        marks + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::decider::given;

    fn set(group: &str, score: Option<i32>) -> SignatureCommand {
        SignatureCommand::Set {
            name: "ET-1".into(),
            rule_text: None,
            group: group.into(),
            default_score: score,
        }
    }

    #[test]
    fn setting_a_new_signature_creates_it_and_again_revises_it() {
        given::<Signature>(&[])
            .when(set("malware", Some(70)))
            .then(&[SignatureEvent::SignatureCreated {
                name: "ET-1".into(),
                rule_text: String::new(),
                group: "malware".into(),
                default_score: 70,
            }]);
        let created = SignatureEvent::SignatureCreated {
            name: "ET-1".into(),
            rule_text: "r".into(),
            group: "malware".into(),
            default_score: 70,
        };
        given::<Signature>(std::slice::from_ref(&created))
            .when(set("phishing", None))
            .then(&[SignatureEvent::SignatureRevised {
                rule_text: "r".into(),
                group: "phishing".into(),
                default_score: 70,
            }]);
        given::<Signature>(std::slice::from_ref(&created))
            .when(set("malware", Some(70)))
            .then(&[]);
        given::<Signature>(&[created, SignatureEvent::SignatureRetired {}])
            .when(set("x", None))
            .then_rejected("retired");
    }

    #[test]
    fn unknown_names_register_as_restricted_once() {
        let reg = SignatureCommand::RegisterRestricted { name: "new".into() };
        given::<Signature>(&[])
            .when(reg.clone())
            .then(&[SignatureEvent::SignatureRegisteredRestricted { name: "new".into() }]);
        given::<Signature>(&[SignatureEvent::SignatureRegisteredRestricted { name: "new".into() }])
            .when(reg)
            .then(&[]);
    }

    #[test]
    fn clearances_are_granted_once_and_revoked_only_when_held() {
        let grant = |g: &str| ClearanceCommand::Grant {
            group: g.into(),
            group_exists: true,
        };
        // A misspelled group (no signature is in it) is refused, not granted.
        given::<Clearances>(&[])
            .when(ClearanceCommand::Grant {
                group: "phishng".into(),
                group_exists: false,
            })
            .then_rejected("no signature is in the group \"phishng\"");
        given::<Clearances>(&[])
            .when(grant("malware"))
            .then(&[ClearanceEvent::ClearanceGranted {
                group: "malware".into(),
            }]);
        given::<Clearances>(&[ClearanceEvent::ClearanceGranted {
            group: "malware".into(),
        }])
        .when(grant("malware"))
        .then_rejected("already holds");
        given::<Clearances>(&[])
            .when(grant(RESTRICTED_GROUP))
            .then_rejected("admins only");
        given::<Clearances>(&[])
            .when(ClearanceCommand::Revoke {
                group: "malware".into(),
            })
            .then_rejected("does not hold");
    }

    #[test]
    fn a_triage_needs_a_visible_hit_and_a_note() {
        use super::super::commands::{TriageStatus, TriageSubject};
        let mark = |signatures: &[&str], note: &str| TriageCommand {
            subject: TriageSubject::Hash,
            id: "aa".into(),
            status: TriageStatus::FalsePositive,
            note: note.into(),
            visible_signatures: signatures.iter().map(|s| s.to_string()).collect(),
        };
        given::<Triage>(&[])
            .when(mark(&[], "benign"))
            .then_rejected("only what you may see");
        given::<Triage>(&[])
            .when(mark(&["sig-b", "sig-a", "sig-b"], "  "))
            .then_rejected("Write a note");
        given::<Triage>(&[])
            .when(mark(&["sig-b", "sig-a", "sig-b"], "benign installer"))
            .then(&[TriageEvent::ThreatTriaged {
                subject_kind: "hash".into(),
                subject: "aa".into(),
                status: "false-positive".into(),
                note: "benign installer".into(),
                signatures: vec!["sig-a".into(), "sig-b".into()],
            }]);
    }

    #[test]
    fn sensors_are_revoked_once() {
        let reg = SensorAdminEvent::SensorRegistered { name: "s".into() };
        given::<Sensor>(std::slice::from_ref(&reg))
            .when(SensorCommand::Revoke)
            .then(&[SensorAdminEvent::SensorRevoked {}]);
        given::<Sensor>(&[reg, SensorAdminEvent::SensorRevoked {}])
            .when(SensorCommand::Revoke)
            .then_rejected("already revoked");
    }
}
