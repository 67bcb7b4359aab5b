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
