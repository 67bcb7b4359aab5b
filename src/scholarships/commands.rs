//! Commands of the scholarships context and the domain values they carry, parsed at the edge.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Money in cents. Parsed from what a person types ("1,250.50", "$300"); never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Amount(i64);

/// The largest amount accepted anywhere: ten million (in cents).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

impl Amount {
    pub fn parse(raw: &str) -> Result<Amount, String> {
        let cleaned: String = raw
            .trim()
            .trim_start_matches('$')
            .chars()
            .filter(|c| *c != ',' && *c != '_' && !c.is_whitespace())
            .collect();
        let bad = || {
            format!(
                "{:?} is not an amount: write it like 1500 or 1,500.00",
                raw.trim()
            )
        };
        if cleaned.is_empty() {
            return Err("an amount is required".into());
        }
        let (whole, frac) = match cleaned.split_once('.') {
            Some((w, f)) => (w, f),
            None => (cleaned.as_str(), ""),
        };
        if whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !frac.chars().all(|c| c.is_ascii_digit())
            || frac.len() > 2
            || whole.len() > 12
        {
            return Err(bad());
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        let cents = whole
            .checked_mul(100)
            .and_then(|c| c.checked_add(frac))
            .ok_or_else(bad)?;
        if cents <= 0 {
            return Err("an amount must be more than zero".into());
        }
        if cents > MAX_AMOUNT_CENTS {
            return Err("an amount must be at most 10,000,000.00".into());
        }
        Ok(Amount(cents))
    }

    pub fn from_cents(cents: i64) -> Amount {
        Amount(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_cents(self.0))
    }
}

/// "$1,234.56": the one money format of every page (`web::format::money`).
pub use crate::web::format::money as format_cents;

/// The review rubric: every criterion is scored 1 to 5.
pub struct Rubric;

impl Rubric {
    /// (form field, label)
    pub const CRITERIA: [(&'static str, &'static str); 4] = [
        ("merit", "Academic merit"),
        ("need", "Financial need"),
        ("statement", "Personal statement"),
        ("community", "Community contribution"),
    ];
    /// What each criterion looks at, in the order of `CRITERIA` (shown on the review form).
    pub const DESCRIPTIONS: [&'static str; 4] = [
        "Grades, the courses taken and the academic record so far.",
        "How far the student's means fall short of the cost of study.",
        "How clearly and convincingly the statement makes the case.",
        "Service, leadership and involvement beyond the classroom.",
    ];
    /// What each score means, from `MIN` to `MAX`.
    pub const SCALE: [&'static str; 5] = [
        "does not meet the criterion",
        "weak",
        "meets the criterion",
        "strong",
        "exceptional",
    ];
    pub const MIN: i32 = 1;
    pub const MAX: i32 = 5;

    /// What a score means on the rubric's scale ("exceptional"); empty off the scale.
    pub fn meaning(score: i32) -> &'static str {
        usize::try_from(score - Rubric::MIN)
            .ok()
            .and_then(|i| Rubric::SCALE.get(i))
            .copied()
            .unwrap_or("")
    }

    /// The criteria's labels with one review's scores and what they mean, "Academic merit 5
    /// (exceptional)".
    pub fn labelled(scores: &[i32]) -> Vec<LabelledScore> {
        scores
            .iter()
            .zip(Rubric::CRITERIA)
            .map(|(score, (_, label))| LabelledScore {
                label,
                score: *score,
                meaning: Rubric::meaning(*score),
            })
            .collect()
    }
}

/// One criterion's score, with the criterion's name.
#[derive(Debug, Clone, Serialize)]
pub struct LabelledScore {
    pub label: &'static str,
    pub score: i32,
    /// What the score means on the rubric's scale.
    pub meaning: &'static str,
}

/// One score per rubric criterion, in the rubric's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scores(Vec<i32>);

impl Scores {
    /// Parse one raw value per criterion, in the rubric's order.
    pub fn parse(raw: &[&str]) -> Result<Scores, String> {
        if raw.len() != Rubric::CRITERIA.len() {
            return Err(format!(
                "score every criterion of the rubric ({} of them)",
                Rubric::CRITERIA.len()
            ));
        }
        let mut out = Vec::with_capacity(raw.len());
        for (value, (_, label)) in raw.iter().zip(Rubric::CRITERIA) {
            out.push(Scores::parse_one(value).map_err(|e| format!("{label}: {e}"))?);
        }
        Ok(Scores(out))
    }

    /// One criterion's score (the message says what is wrong, not which criterion).
    pub fn parse_one(raw: &str) -> Result<i32, String> {
        let v: i32 = raw
            .trim()
            .parse()
            .map_err(|_| format!("choose a score from {} to {}", Rubric::MIN, Rubric::MAX))?;
        if !(Rubric::MIN..=Rubric::MAX).contains(&v) {
            return Err(format!(
                "a score is from {} to {}, not {v}",
                Rubric::MIN,
                Rubric::MAX
            ));
        }
        Ok(v)
    }

    /// Scores already checked one by one with [`Scores::parse_one`], in the rubric's order.
    pub fn from_checked(values: Vec<i32>) -> Option<Scores> {
        (values.len() == Rubric::CRITERIA.len()).then_some(Scores(values))
    }

    pub fn values(&self) -> &[i32] {
        &self.0
    }

    /// The review's overall score: the mean of its criteria (display and ranking only).
    pub fn mean(&self) -> f64 {
        mean(&self.0)
    }
}

pub fn mean(values: &[i32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|v| f64::from(*v)).sum::<f64>() / values.len() as f64
}

/// What the committee decides about an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Award(Amount),
    Decline,
    Waitlist,
}

/// The fund's application window as an application needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FundWindow {
    pub exists: bool,
    pub is_open: bool,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
}

#[derive(Debug, Clone)]
pub enum FundCommand {
    CreateFund {
        name: String,
        term: crate::enrollment::commands::Term,
        budget: Amount,
        criteria: String,
        opens_on: NaiveDate,
        closes_on: NaiveDate,
    },
    OpenFund,
    CloseFund,
    Decide {
        application_id: Uuid,
        student_id: Uuid,
        decision: Decision,
        reason: String,
    },
    AcceptAward {
        application_id: Uuid,
        student_id: Uuid,
        /// Whether the enrollment context records the student as enrolled now.
        enrolled: bool,
    },
    RefuseAward {
        application_id: Uuid,
        student_id: Uuid,
    },
    DisburseAward {
        application_id: Uuid,
        reason: String,
    },
    RevokeAward {
        application_id: Uuid,
        reason: String,
    },
    /// Record an award a legacy system made (`heyboss import awards`).
    ImportAward(LegacyAward),
}

/// A legacy award, parsed at the edge (`crate::import::awards`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyAward {
    /// The application the award is for (derived from the legacy id: one per legacy award).
    pub application_id: Uuid,
    pub student_id: Uuid,
    pub amount: Amount,
    /// The state the legacy status maps to.
    pub status: super::decider::AwardStatus,
    pub legacy_id: String,
    pub legacy_status: String,
    pub legacy_updated_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
}

#[derive(Debug, Clone)]
pub enum ApplicationCommand {
    Submit {
        fund_id: Uuid,
        student_id: Uuid,
        statement: String,
        fund: FundWindow,
        today: NaiveDate,
    },
    AssignReviewer {
        reviewer_id: Uuid,
    },
}

#[derive(Debug, Clone)]
pub enum ReviewCommand {
    Submit {
        application_id: Uuid,
        reviewer_id: Uuid,
        scores: Scores,
        comment: String,
        /// Whether the committee assigned this reviewer to the application.
        assigned: bool,
        /// Whether the committee has made a final decision (award or decline).
        decided: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_to_cents() {
        assert_eq!(Amount::parse("1500").unwrap().cents(), 150_000);
        assert_eq!(Amount::parse("$1,250.5").unwrap().cents(), 125_050);
        assert_eq!(Amount::parse(" 0.07 ").unwrap().cents(), 7);
        assert!(Amount::parse("").is_err());
        assert!(Amount::parse("-5").is_err());
        assert!(Amount::parse("0").is_err());
        assert!(Amount::parse("1.234").is_err());
        assert!(Amount::parse("1e5").is_err());
        assert!(Amount::parse("99999999999999").is_err());
        assert!(Amount::parse("NaN").is_err());
    }

    #[test]
    fn amounts_display_with_grouping() {
        assert_eq!(format_cents(123_456_789), "$1,234,567.89");
        assert_eq!(format_cents(5), "$0.05");
        assert_eq!(format_cents(100_000), "$1,000.00");
        assert_eq!(format_cents(-2_500), "-$25.00");
    }

    #[test]
    fn scores_cover_the_rubric_within_range() {
        assert_eq!(Scores::parse(&["5", "4", "3", "4"]).unwrap().mean(), 4.0);
        assert!(Scores::parse(&["5", "4", "3"]).is_err());
        assert!(Scores::parse(&["6", "4", "3", "4"])
            .unwrap_err()
            .contains("Academic merit"));
        assert!(Scores::parse(&["x", "4", "3", "4"]).is_err());
    }
}
