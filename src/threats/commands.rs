//! Commands of the threat-reports context and the valid values they carry, parsed at the edge
//! (the admin forms, the CLI, the sensor API).

use super::decider::ThreatsRejection;

/// A visibility group name: lowercase letters, digits, `-` and `_`, 1 to 40 characters.
pub fn parse_group(raw: &str) -> Result<String, ThreatsRejection> {
    let g = raw.trim().to_lowercase();
    if g.is_empty() || g.len() > 40 {
        return Err(ThreatsRejection::GroupLength);
    }
    if !g
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(ThreatsRejection::GroupCharacters);
    }
    Ok(g)
}

/// A signature name as sensors report it: 1 to 100 characters, no control characters.
pub fn parse_signature_name(raw: &str) -> Result<String, ThreatsRejection> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(ThreatsRejection::SignatureName);
    }
    Ok(n.to_owned())
}

pub fn parse_score(raw: i64) -> Result<i32, ThreatsRejection> {
    if !(0..=100).contains(&raw) {
        return Err(ThreatsRejection::ScoreOutOfRange(raw));
    }
    Ok(raw as i32)
}

#[derive(Debug, Clone)]
pub enum SignatureCommand {
    /// Create, or revise what is given (the CLI's `signatures set`, the admin form).
    Set {
        name: String,
        rule_text: Option<String>,
        group: String,
        default_score: Option<i32>,
    },
    RegisterRestricted {
        name: String,
    },
    Retire,
}

#[derive(Debug, Clone)]
pub enum ClearanceCommand {
    /// `group_exists`: whether some signature is in the group (a misspelled group is refused,
    /// not granted).
    Grant {
        group: String,
        group_exists: bool,
    },
    Revoke {
        group: String,
    },
}

#[derive(Debug, Clone)]
pub enum SensorCommand {
    Register { name: String },
    Revoke,
}

/// What an analyst triages: a file hash (md5) or a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TriageSubject {
    Hash,
    Session,
}

impl TriageSubject {
    pub fn parse(raw: &str) -> Result<TriageSubject, ThreatsRejection> {
        match raw {
            "hash" => Ok(TriageSubject::Hash),
            "session" => Ok(TriageSubject::Session),
            _ => Err(ThreatsRejection::TriageSubject),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TriageSubject::Hash => "hash",
            TriageSubject::Session => "session",
        }
    }
    /// The subject's id as its stream and pages name it: a hash lower-cased (32 hex digits), a
    /// session id as sensors report it (1 to 200 characters).
    pub fn parse_id(self, raw: &str) -> Result<String, ThreatsRejection> {
        let id = raw.trim();
        match self {
            TriageSubject::Hash => {
                let md5 = id.to_ascii_lowercase();
                if md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(md5)
                } else {
                    Err(ThreatsRejection::TriageHash)
                }
            }
            TriageSubject::Session => {
                if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
                    Err(ThreatsRejection::TriageSession)
                } else {
                    Ok(id.to_owned())
                }
            }
        }
    }
    /// The stream of a subject's triage.
    pub fn stream_id(self, id: &str) -> String {
        format!("{}:{id}", self.as_str())
    }
}

/// A triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriageStatus {
    Triaged,
    FalsePositive,
    Escalated,
}

impl TriageStatus {
    pub const ALL: [TriageStatus; 3] = [
        TriageStatus::Triaged,
        TriageStatus::FalsePositive,
        TriageStatus::Escalated,
    ];
    pub fn parse(raw: &str) -> Result<TriageStatus, ThreatsRejection> {
        TriageStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or(ThreatsRejection::TriageStatus)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TriageStatus::Triaged => "triaged",
            TriageStatus::FalsePositive => "false-positive",
            TriageStatus::Escalated => "escalated",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            TriageStatus::Triaged => "Triaged",
            TriageStatus::FalsePositive => "False positive",
            TriageStatus::Escalated => "Escalated",
        }
    }
    /// Hidden by "hide triaged": dealt with (an escalated subject still needs someone).
    pub fn is_settled(self) -> bool {
        self != TriageStatus::Escalated
    }
}

/// Mark a subject: `visible_signatures` are the signatures of the subject's hits the analyst may
/// see now (read by the service; none means they may not triage it).
#[derive(Debug, Clone)]
pub struct TriageCommand {
    pub subject: TriageSubject,
    pub id: String,
    pub status: TriageStatus,
    pub note: String,
    pub visible_signatures: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_scores_are_parsed() {
        assert_eq!(parse_group(" Malware ").unwrap(), "malware");
        assert!(parse_group("a b").is_err());
        assert!(parse_score(101).is_err());
        assert_eq!(parse_score(0).unwrap(), 0);
    }
}
