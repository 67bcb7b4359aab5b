//! `heyboss import enrollments FILE.csv`: a legacy system's enrollment records.
//!
//! Columns (a header row names them, in any order; other columns are ignored):
//! `legacy_id` (the record's id, unique), `student_number` (the legacy student id), `name`,
//! `email`, `term` (`2027-fall`, or the legacy `FA2027` / `SP2027` / `SU2027`), `status` (see
//! [`map_status`]) and `updated_at` (`2026-08-14T09:30:00Z`, `2026-08-14 09:30[:00]` in UTC, or
//! `2026-08-14`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::{fingerprint, row, row_metadata, ImportError, Report, Skipped};
use crate::enrollment::{Enrollment, EnrollmentCommand, LegacyEnrollment, Stage, Term};
use crate::es::{CommandContext, CommandError, EventStore};

pub const COLUMNS: [&str; 7] = [
    "legacy_id",
    "student_number",
    "name",
    "email",
    "term",
    "status",
    "updated_at",
];

/// The legacy statuses and the stage each maps to (the README's table).
pub const STATUSES: &[(&str, Stage)] = &[
    ("PROSPECT", Stage::Inquiry),
    ("INQUIRY", Stage::Inquiry),
    ("APP_STARTED", Stage::ApplicationStarted),
    ("APP_SUBMITTED", Stage::ApplicationSubmitted),
    ("APPLIED", Stage::ApplicationSubmitted),
    ("DOCS_COMPLETE", Stage::DocumentsReceived),
    ("WAITLISTED", Stage::Waitlisted),
    ("ADMITTED", Stage::Admitted),
    ("DENIED", Stage::Denied),
    ("REJECTED", Stage::Denied),
    ("DEPOSIT_PAID", Stage::OfferAccepted),
    ("ORIENTED", Stage::OrientationCompleted),
    ("REGISTERED", Stage::CoursesRegistered),
    ("ENROLLED", Stage::Enrolled),
    ("MATRICULATED", Stage::Enrolled),
    ("WITHDRAWN", Stage::Withdrawn),
];

/// A legacy status (any letter case, spaces or hyphens for underscores) and its step.
pub fn map_status(raw: &str) -> Result<(String, Stage), String> {
    super::map_status(raw, STATUSES, "step")
}

/// A term as heyboss writes it or as legacy systems often do (`FA2027`).
pub fn parse_term(raw: &str) -> Result<Term, String> {
    let t = raw.trim().to_ascii_uppercase();
    let legacy = match (t.get(..2), t.get(2..)) {
        (Some("FA"), Some(y)) => Some(format!("{y}-fall")),
        (Some("SP"), Some(y)) => Some(format!("{y}-spring")),
        (Some("SU"), Some(y)) => Some(format!("{y}-summer")),
        _ => None,
    };
    match legacy {
        Some(l) if t.len() == 6 => Term::parse(&l),
        _ => Term::parse(raw),
    }
}

/// `updated_at` in the formats legacy exports use, read as UTC.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    let s = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    Err(format!(
        "bad date {:?} in updated_at: write 2026-08-14, 2026-08-14 09:30 or 2026-08-14T09:30:00Z",
        s.chars().take(40).collect::<String>()
    ))
}

/// One row, parsed.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    student_number: String,
    name: String,
    email: String,
    legacy: LegacyEnrollment,
    fingerprint: String,
}

fn parse_row(line: u64, get: impl Fn(&str) -> String, source: &str) -> Result<Row, Skipped> {
    let legacy_id = get("legacy_id");
    let skipped = |reasons: Vec<String>| Skipped {
        line,
        legacy_id: legacy_id.clone(),
        reason: reasons.join("; "),
    };
    let mut reasons = Vec::new();
    let (student_number, name, email) = super::student_columns(&legacy_id, &get, &mut reasons);
    let term = parse_term(&get("term")).map_err(|e| reasons.push(e));
    let status = map_status(&get("status")).map_err(|e| reasons.push(e));
    let updated_at = parse_time(&get("updated_at")).map_err(|e| reasons.push(e));
    let (Ok(term), Ok((legacy_status, stage)), Ok(legacy_updated_at)) = (term, status, updated_at)
    else {
        return Err(skipped(reasons));
    };
    if !reasons.is_empty() {
        return Err(skipped(reasons));
    }
    let fingerprint = fingerprint(&[
        &student_number.to_ascii_lowercase(),
        term.as_str(),
        &legacy_status,
        &legacy_updated_at.to_rfc3339(),
    ]);
    Ok(Row {
        line,
        student_number,
        name,
        email,
        legacy: LegacyEnrollment {
            term,
            legacy_id,
            legacy_status,
            legacy_updated_at,
            source: source.to_owned(),
            stage,
        },
        fingerprint,
    })
}

/// Read the file's rows: those that parse, and every row that does not with its reasons. Two
/// rows of one legacy id with different values are both refused (which one is true is for a
/// person to say).
fn read(text: &[u8], source: &str) -> Result<(Vec<Row>, Vec<Skipped>, u64), ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let headers: Vec<String> = reader
        .headers()?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !headers.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the header row lacks the column(s) {}: an enrollments file has {}",
            missing.join(", "),
            COLUMNS.join(",")
        )
        .into());
    }
    let index: HashMap<&str, usize> = COLUMNS
        .iter()
        .map(|c| (*c, headers.iter().position(|h| h == c).expect("checked")))
        .collect();
    let (mut rows, mut skipped, mut count) = (Vec::new(), Vec::new(), 0);
    for record in reader.records() {
        count += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                skipped.push(Skipped {
                    line,
                    legacy_id: String::new(),
                    reason: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |c: &str| record.get(index[c]).unwrap_or("").to_owned();
        match parse_row(line, get, source) {
            Ok(r) => rows.push(r),
            Err(s) => skipped.push(s),
        }
    }
    // Conflicting duplicates: every row of such a legacy id is refused.
    let mut first: HashMap<&str, (u64, &str, &str)> = HashMap::new();
    let mut conflicts: HashMap<String, Vec<u64>> = HashMap::new();
    for r in &rows {
        let id = r.legacy.legacy_id.as_str();
        match first.get(id) {
            Some((_, fp, _)) if *fp == r.fingerprint => {}
            Some((line, _, status)) => {
                let lines = conflicts
                    .entry(id.to_owned())
                    .or_insert_with(|| vec![*line]);
                lines.push(r.line);
                let _ = status;
            }
            None => {
                first.insert(id, (r.line, &r.fingerprint, &r.legacy.legacy_status));
            }
        }
    }
    let (rows, refused): (Vec<Row>, Vec<Row>) = rows
        .into_iter()
        .partition(|r| !conflicts.contains_key(&r.legacy.legacy_id));
    for r in refused {
        let lines = &conflicts[&r.legacy.legacy_id];
        skipped.push(Skipped {
            line: r.line,
            legacy_id: r.legacy.legacy_id.clone(),
            reason: format!(
                "the legacy id appears with different values on lines {} (this row: status {}, term {}): keep the one that is right",
                lines.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                r.legacy.legacy_status,
                r.legacy.term.as_str()
            ),
        });
    }
    skipped.sort_by_key(|s| s.line);
    Ok((rows, skipped, count))
}

/// Import (or, with `dry_run`, check) a legacy enrollments file.
pub fn import(
    conn: &mut PgConnection,
    store: &EventStore,
    text: &[u8],
    source: &str,
    dry_run: bool,
) -> Result<Report, ImportError> {
    let (rows, skipped, count) = read(text, source)?;
    let run = Uuid::new_v4();
    super::in_transaction(conn, dry_run, |conn| {
        let mut report = Report {
            rows: count,
            skipped,
            ..Report::default()
        };
        for r in &rows {
            match row(conn, |conn| import_row(conn, store, run, r)) {
                Ok(done) => {
                    report.accounts_created += u64::from(done.created_account);
                    if done.wrote {
                        report.imported += 1;
                    } else {
                        report.unchanged += 1;
                    }
                }
                Err(reason) => report.skipped.push(Skipped {
                    line: r.line,
                    legacy_id: r.legacy.legacy_id.clone(),
                    reason,
                }),
            }
        }
        report.skipped.sort_by_key(|s| s.line);
        Ok(report)
    })
}

struct Done {
    wrote: bool,
    created_account: bool,
}

fn import_row(
    conn: &mut PgConnection,
    store: &EventStore,
    run: Uuid,
    r: &Row,
) -> Result<Done, String> {
    let db = |e: diesel::result::Error| format!("database error: {e}");
    let (student_id, created_account) = super::find_or_create_student(
        conn,
        store,
        run,
        &super::LegacyStudent {
            number: &r.student_number,
            name: &r.name,
            email: &r.email,
        },
    )?;
    let ctx = CommandContext::new(row_metadata(run))
        .idempotency_key(format!("legacy-enrollment:{}", r.legacy.legacy_id))
        .fingerprint(r.fingerprint.clone());
    let outcome = store
        .execute_in::<Enrollment>(
            conn,
            &student_id.to_string(),
            &EnrollmentCommand::Import(r.legacy.clone()),
            &ctx,
        )
        .map_err(|e| match e {
            CommandError::KeyReused => {
                "this legacy id was imported before with other values (student, term, status or updated_at): \
                 the first import stands; record later changes through heyboss".to_owned()
            }
            CommandError::Database(d) => db(d),
            other => other.to_string(),
        })?;
    Ok(Done {
        wrote: !outcome.duplicate && !outcome.positions.is_empty(),
        created_account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::legacy_uuid;

    #[test]
    fn statuses_terms_and_dates_are_read_as_legacy_exports_write_them() {
        assert_eq!(map_status(" admitted ").unwrap().1, Stage::Admitted);
        assert_eq!(
            map_status("Deposit Paid").unwrap(),
            ("DEPOSIT_PAID".into(), Stage::OfferAccepted)
        );
        assert!(map_status("PENDING_REVIEW")
            .unwrap_err()
            .contains("unknown status"));
        assert!(map_status("").is_err());
        assert_eq!(parse_term("FA2026").unwrap().as_str(), "2026-fall");
        assert_eq!(parse_term("sp2027").unwrap().as_str(), "2027-spring");
        assert_eq!(parse_term("2027-fall").unwrap().as_str(), "2027-fall");
        assert!(parse_term("WI2027").is_err());
        assert_eq!(
            parse_time("2026-08-14").unwrap().to_rfc3339(),
            "2026-08-14T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2026-08-14 09:30").unwrap().to_rfc3339(),
            "2026-08-14T09:30:00+00:00"
        );
        assert!(parse_time("2026-02-30").is_err());
        assert!(parse_time("14/08/2026").is_err());
    }

    #[test]
    fn a_legacy_id_is_the_same_uuid_every_time() {
        assert_eq!(legacy_uuid("student", "s1"), legacy_uuid("student", "s1"));
        assert_ne!(legacy_uuid("student", "s1"), legacy_uuid("student", "s2"));
    }
}
