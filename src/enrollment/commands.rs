//! Enrollment commands and the valid values they carry, parsed at the edge.

use serde::{Deserialize, Serialize};

/// An academic term such as `2027-fall`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term(String);

pub const SEASONS: [&str; 3] = ["spring", "summer", "fall"];

impl Term {
    pub fn parse(raw: &str) -> Result<Term, String> {
        let t = raw.trim().to_ascii_lowercase();
        let valid = match t.split_once('-') {
            Some((year, season)) => {
                year.len() == 4
                    && year
                        .parse::<u32>()
                        .is_ok_and(|y| (2000..=2100).contains(&y))
                    && SEASONS.contains(&season)
            }
            None => false,
        };
        if valid {
            Ok(Term(t))
        } else {
            Err(format!(
                "{:?} is not a term: write it as year-season, e.g. 2027-fall (seasons: spring, summer, fall)",
                raw.chars().take(40).collect::<String>()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The next `n` terms starting with the one after `today`'s season, for sign-up's choice.
    pub fn upcoming(today: chrono::NaiveDate, n: usize) -> Vec<String> {
        use chrono::Datelike;
        let (mut year, month) = (today.year(), today.month());
        // Seasons start in January (spring), May (summer) and September (fall).
        let mut season = match month {
            1..=4 => 1,
            5..=8 => 2,
            _ => {
                year += 1;
                0
            }
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(format!("{year}-{}", SEASONS[season]));
            season += 1;
            if season == SEASONS.len() {
                season = 0;
                year += 1;
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Document {
    Transcript,
    Identification,
}

impl Document {
    pub const ALL: [Document; 2] = [Document::Transcript, Document::Identification];

    pub fn parse(raw: &str) -> Result<Document, String> {
        match raw.trim() {
            "transcript" => Ok(Document::Transcript),
            "identification" => Ok(Document::Identification),
            other => Err(format!(
                "unknown document {:?}: choose transcript or identification",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Document::Transcript => "transcript",
            Document::Identification => "identification",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Document::Transcript => "transcript",
            Document::Identification => "identification",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Admitted,
    Waitlisted,
    Denied,
}

impl Decision {
    pub const ALL: [Decision; 3] = [Decision::Admitted, Decision::Waitlisted, Decision::Denied];

    pub fn parse(raw: &str) -> Result<Decision, String> {
        match raw.trim() {
            "admitted" => Ok(Decision::Admitted),
            "waitlisted" => Ok(Decision::Waitlisted),
            "denied" => Ok(Decision::Denied),
            other => Err(format!(
                "unknown decision {:?}: choose admitted, waitlisted or denied",
                other.chars().take(40).collect::<String>()
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Admitted => "admitted",
            Decision::Waitlisted => "waitlisted",
            Decision::Denied => "denied",
        }
    }
}

/// The largest deposit accepted: 10,000.00.
pub const MAX_DEPOSIT_CENTS: i64 = 1_000_000;

/// A deposit amount such as `250` or `250.50`, in cents; positive and at most 10,000.00.
pub fn parse_deposit(raw: &str) -> Result<i64, String> {
    let s = raw.trim().trim_start_matches('$').replace(',', "");
    let err = || {
        format!(
            "{:?} is not a deposit amount: write it like 250 or 250.00 (at most 10000.00)",
            raw.chars().take(40).collect::<String>()
        )
    };
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s.as_str(), ""),
    };
    if whole.is_empty()
        || whole.len() > 7
        || frac.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(err());
    }
    let cents = whole.parse::<i64>().map_err(|_| err())? * 100
        + match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| err())? * 10,
            _ => frac.parse::<i64>().map_err(|_| err())?,
        };
    if cents <= 0 {
        return Err("the deposit must be more than zero".into());
    }
    if cents > MAX_DEPOSIT_CENTS {
        return Err(err());
    }
    Ok(cents)
}

/// "$1,250.50": the one money format of every page (`web::format::money`).
pub use crate::web::format::money as format_cents;

/// At most this many courses in one registration.
pub const MAX_COURSES: usize = 8;

/// Course codes such as `CS101, MATH201`: 2 to 5 letters then 3 digits, separated by commas or spaces.
pub fn parse_courses(raw: &str) -> Result<Vec<String>, String> {
    let mut courses: Vec<String> = Vec::new();
    for code in raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|c| !c.is_empty())
    {
        let code = code.to_ascii_uppercase();
        let letters = code.chars().take_while(char::is_ascii_alphabetic).count();
        let rest = &code[letters..];
        if !(2..=5).contains(&letters)
            || rest.len() != 3
            || !rest.chars().all(|c| c.is_ascii_digit())
        {
            return Err(format!(
                "{:?} is not a course code: use 2 to 5 letters then 3 digits, e.g. CS101",
                code.chars().take(20).collect::<String>()
            ));
        }
        if !courses.contains(&code) {
            courses.push(code);
        }
    }
    if courses.is_empty() {
        return Err("list at least one course code, e.g. CS101, MATH201".into());
    }
    if courses.len() > MAX_COURSES {
        return Err(format!("register at most {MAX_COURSES} courses at once"));
    }
    Ok(courses)
}

/// The most characters of a withdrawal reason.
pub const MAX_REASON: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollmentCommand {
    /// The first step, recorded at sign-up.
    Inquire { term: Term },
    /// Student.
    StartApplication,
    /// Student.
    SubmitApplication,
    /// Staff.
    RecordDocument { document: Document },
    /// Staff.
    DecideAdmission { decision: Decision },
    /// Student.
    AcceptOffer { deposit_cents: i64 },
    /// Staff.
    CompleteOrientation,
    /// Student.
    RegisterCourses { courses: Vec<String> },
    /// Staff: the registrar confirms the enrollment once courses are registered.
    ConfirmEnrollment,
    /// Student.
    Withdraw { reason: String },
    /// Staff.
    Reinstate,
    /// The CLI: a legacy system's record (`heyboss import enrollments`), on an enrollment that
    /// has not begun in heyboss.
    Import(LegacyEnrollment),
}

/// A legacy enrollment record, parsed at the edge (`crate::import`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyEnrollment {
    pub term: Term,
    pub legacy_id: String,
    pub legacy_status: String,
    pub legacy_updated_at: chrono::DateTime<chrono::Utc>,
    pub source: String,
    pub stage: super::decider::Stage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_year_and_season() {
        assert_eq!(Term::parse(" 2027-Fall ").unwrap().as_str(), "2027-fall");
        assert!(Term::parse("2027").is_err());
        assert!(Term::parse("2027-winter").is_err());
        assert!(Term::parse("1999-fall").is_err());
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        assert_eq!(
            Term::upcoming(d, 3),
            ["2027-spring", "2027-summer", "2027-fall"]
        );
        let d = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(Term::upcoming(d, 2), ["2026-summer", "2026-fall"]);
    }

    #[test]
    fn deposits_are_positive_bounded_cents() {
        assert_eq!(parse_deposit("250").unwrap(), 25_000);
        assert_eq!(parse_deposit("$1,250.5").unwrap(), 125_050);
        assert_eq!(parse_deposit("0.01").unwrap(), 1);
        assert!(parse_deposit("0").is_err());
        assert!(parse_deposit("-5").is_err());
        assert!(parse_deposit("abc").is_err());
        assert!(parse_deposit("10000.01").is_err());
        assert!(parse_deposit("1.234").is_err());
        assert!(parse_deposit("").is_err());
        assert_eq!(format_cents(125_050), "$1,250.50");
    }

    #[test]
    fn course_codes_are_checked_and_deduplicated() {
        assert_eq!(
            parse_courses("cs101, MATH201 cs101").unwrap(),
            ["CS101", "MATH201"]
        );
        assert!(parse_courses("").is_err());
        assert!(parse_courses("C101").is_err());
        assert!(parse_courses("CS1011").is_err());
        assert!(parse_courses("CS10é").is_err());
        let many = (100..110)
            .map(|n| format!("CS{n}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_courses(&many).is_err());
    }
}
