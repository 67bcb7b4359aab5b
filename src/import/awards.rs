//! `heyboss import awards FILE.csv`: a legacy system's scholarship awards.
//!
//! Columns (a header row names them, in any order; other columns are ignored): `legacy_id` (the
//! award's id, unique), `student_number`, `name`, `email` (the student, as for enrollments),
//! `fund_name` and `term` (the fund), optional `fund_id` (the legacy fund id: names the fund
//! instead of name and term) and `fund_budget` (the fund's budget: needed to create a fund
//! heyboss does not know), `amount`, `status` (see [`map_status`]) and `updated_at`.
//!
//! Each row becomes, through the fund decider, an `AwardImported` event on the fund's stream:
//! the legacy id and status as written, when the legacy system last changed it, the file and the
//! award state that status maps to. The fund decider checks it like any award: once per
//! application and student in the fund, and (when it still holds money) within the remaining
//! budget. The fund's read models count it as they count any award, so budget, awarded and
//! remaining stay the fold of the log (`projections verify`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::enrollments::{parse_term, parse_time};
use super::{
    find_or_create_student, fingerprint, legacy_uuid, row, row_metadata, ImportError,
    LegacyStudent, Report, Skipped,
};
use crate::enrollment::Term;
use crate::es::{CommandContext, CommandError, EventStore};
use crate::schema::{scholarship_applications as apps, scholarship_funds as funds};
use crate::scholarships::commands::{format_cents, Amount, FundCommand, LegacyAward};
use crate::scholarships::decider::{AwardStatus, Fund};

/// The columns a file must have (values of `name` and `email` may be empty).
pub const COLUMNS: [&str; 9] = [
    "legacy_id",
    "student_number",
    "name",
    "email",
    "fund_name",
    "term",
    "amount",
    "status",
    "updated_at",
];

/// Columns a file may have.
pub const OPTIONAL: [&str; 2] = ["fund_id", "fund_budget"];

/// The legacy statuses and the award state each maps to (the README's table).
pub const STATUSES: &[(&str, AwardStatus)] = &[
    ("OFFERED", AwardStatus::Offered),
    ("AWARDED", AwardStatus::Offered),
    ("PENDING_ACCEPTANCE", AwardStatus::Offered),
    ("ACCEPTED", AwardStatus::Accepted),
    ("DECLINED", AwardStatus::Refused),
    ("REFUSED", AwardStatus::Refused),
    ("DISBURSED", AwardStatus::Disbursed),
    ("PAID", AwardStatus::Disbursed),
    ("REVOKED", AwardStatus::Revoked),
    ("RESCINDED", AwardStatus::Revoked),
    ("CANCELLED", AwardStatus::Revoked),
    ("CANCELED", AwardStatus::Revoked),
];

/// A legacy status (any letter case, spaces or hyphens for underscores) and its award state.
pub fn map_status(raw: &str) -> Result<(String, AwardStatus), String> {
    super::map_status(raw, STATUSES, "award state")
}

/// How a row names its fund: the legacy fund id, or its name and term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FundKey {
    legacy_id: Option<String>,
    name: String,
    term: Term,
}

impl FundKey {
    /// The stream id of a fund this import creates (the same every run).
    fn stream_id(&self) -> Uuid {
        match &self.legacy_id {
            Some(id) => legacy_uuid("fund", id),
            None => legacy_uuid(
                "fund",
                &format!("{}\0{}", self.name.to_lowercase(), self.term.as_str()),
            ),
        }
    }

    fn words(&self) -> String {
        match &self.legacy_id {
            Some(id) => format!("{} ({}, legacy fund {id})", self.name, self.term.as_str()),
            None => format!("{} ({})", self.name, self.term.as_str()),
        }
    }
}

/// One row, parsed.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    student_number: String,
    name: String,
    email: String,
    fund: FundKey,
    budget: Option<Amount>,
    amount: Amount,
    status: AwardStatus,
    legacy_id: String,
    legacy_status: String,
    legacy_updated_at: DateTime<Utc>,
    fingerprint: String,
}

fn parse_row(line: u64, get: impl Fn(&str) -> String) -> Result<Row, Skipped> {
    let legacy_id = get("legacy_id");
    let mut reasons = Vec::new();
    let (student_number, name, email) = super::student_columns(&legacy_id, &get, &mut reasons);
    let fund_name = get("fund_name");
    let fund_name =
        match crate::text::check("The fund name", &fund_name, 120, crate::text::Lines::One) {
            Ok(n) if !n.is_empty() => Some(n),
            Ok(_) => {
                reasons.push("the fund is missing (no fund_name)".to_owned());
                None
            }
            Err(e) => {
                reasons.push(e);
                None
            }
        };
    let fund_id = get("fund_id");
    let term = parse_term(&get("term")).map_err(|e| reasons.push(e)).ok();
    let budget = match get("fund_budget").as_str() {
        "" => None,
        raw => Amount::parse(raw)
            .map_err(|e| reasons.push(format!("fund_budget: {e}")))
            .ok(),
    };
    let amount = Amount::parse(&get("amount"))
        .map_err(|e| reasons.push(format!("amount: {e}")))
        .ok();
    let status = map_status(&get("status")).map_err(|e| reasons.push(e)).ok();
    let updated_at = parse_time(&get("updated_at"))
        .map_err(|e| reasons.push(e))
        .ok();
    let (Some(fund_name), Some(term), Some(amount), Some((legacy_status, status)), Some(at)) =
        (fund_name, term, amount, status, updated_at)
    else {
        return Err(Skipped {
            line,
            legacy_id,
            reason: reasons.join("; "),
        });
    };
    if !reasons.is_empty() {
        return Err(Skipped {
            line,
            legacy_id,
            reason: reasons.join("; "),
        });
    }
    let fund = FundKey {
        legacy_id: (!fund_id.is_empty()).then_some(fund_id),
        name: fund_name,
        term,
    };
    let fingerprint = fingerprint(&[
        &student_number.to_ascii_lowercase(),
        &fund.stream_id().to_string(),
        &amount.cents().to_string(),
        &legacy_status,
        &at.to_rfc3339(),
    ]);
    Ok(Row {
        line,
        student_number,
        name,
        email,
        fund,
        budget,
        amount,
        status,
        legacy_id,
        legacy_status,
        legacy_updated_at: at,
        fingerprint,
    })
}

/// Read the file's rows: those that parse, and every row that does not with its reasons. Two
/// rows of one legacy id with different values are both refused.
fn read(text: &[u8]) -> Result<(Vec<Row>, Vec<Skipped>, u64), ImportError> {
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
            "the header row lacks the column(s) {}: an awards file has {} (and may have {})",
            missing.join(", "),
            COLUMNS.join(","),
            OPTIONAL.join(",")
        )
        .into());
    }
    let index: HashMap<&str, usize> = COLUMNS
        .iter()
        .chain(OPTIONAL.iter())
        .filter_map(|c| Some((*c, headers.iter().position(|h| h == c)?)))
        .collect();
    let (mut rows, mut skipped, mut count) = (Vec::new(), Vec::new(), 0);
    for record in reader.records() {
        count += 1;
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                skipped.push(Skipped {
                    line: e.position().map_or(0, |p| p.line()),
                    legacy_id: String::new(),
                    reason: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |c: &str| {
            index
                .get(c)
                .and_then(|i| record.get(*i))
                .unwrap_or("")
                .to_owned()
        };
        match parse_row(line, get) {
            Ok(r) => rows.push(r),
            Err(s) => skipped.push(s),
        }
    }
    // Conflicting duplicates: every row of such a legacy id is refused; an exact repeat is
    // imported once (the second answers "unchanged").
    let mut lines: HashMap<&str, Vec<(u64, &str)>> = HashMap::new();
    for r in &rows {
        lines
            .entry(r.legacy_id.as_str())
            .or_default()
            .push((r.line, r.fingerprint.as_str()));
    }
    let conflicts: HashMap<String, Vec<u64>> = lines
        .into_iter()
        .filter(|(_, v)| v.iter().any(|(_, fp)| *fp != v[0].1))
        .map(|(id, v)| (id.to_owned(), v.into_iter().map(|(l, _)| l).collect()))
        .collect();
    let (rows, refused): (Vec<Row>, Vec<Row>) = rows
        .into_iter()
        .partition(|r| !conflicts.contains_key(&r.legacy_id));
    for r in refused {
        skipped.push(Skipped {
            line: r.line,
            legacy_id: r.legacy_id.clone(),
            reason: format!(
                "the legacy id appears with different values on lines {} (this row: {} {} for {}): keep the one that is right",
                conflicts[&r.legacy_id]
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                r.amount,
                r.legacy_status,
                r.student_number
            ),
        });
    }
    skipped.sort_by_key(|s| s.line);
    Ok((rows, skipped, count))
}

/// Import (or, with `dry_run`, check) a legacy awards file.
pub fn import(
    conn: &mut PgConnection,
    store: &EventStore,
    text: &[u8],
    source: &str,
    dry_run: bool,
) -> Result<Report, ImportError> {
    let (rows, skipped, count) = read(text)?;
    let run = Uuid::new_v4();
    super::in_transaction(conn, dry_run, |conn| {
        let mut report = Report {
            rows: count,
            skipped,
            funds_created: Some(0),
            ..Report::default()
        };
        for r in &rows {
            match row(conn, |conn| import_row(conn, store, run, source, r)) {
                Ok(done) => {
                    report.accounts_created += u64::from(done.created_account);
                    if done.created_fund {
                        report.funds_created = report.funds_created.map(|n| n + 1);
                    }
                    if done.wrote {
                        report.imported += 1;
                    } else {
                        report.unchanged += 1;
                    }
                }
                Err(reason) => report.skipped.push(Skipped {
                    line: r.line,
                    legacy_id: r.legacy_id.clone(),
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
    created_fund: bool,
}

fn import_row(
    conn: &mut PgConnection,
    store: &EventStore,
    run: Uuid,
    source: &str,
    r: &Row,
) -> Result<Done, String> {
    let db = |e: diesel::result::Error| format!("database error: {e}");
    let (fund_id, created_fund) = find_or_create_fund(conn, store, run, source, r)?;
    let (student_id, created_account) = find_or_create_student(
        conn,
        store,
        run,
        &LegacyStudent {
            number: &r.student_number,
            name: &r.name,
            email: &r.email,
        },
    )?;
    let application_id = legacy_uuid("award", &r.legacy_id);
    // A student who applied to the fund in heyboss: the legacy award does not replace that.
    let other: Option<Uuid> = apps::table
        .filter(apps::fund_id.eq(fund_id))
        .filter(apps::student_id.eq(student_id))
        .filter(apps::id.ne(application_id))
        .select(apps::id)
        .first(conn)
        .optional()
        .map_err(db)?;
    if other.is_some() {
        return Err(format!(
            "the student {} already has an application or award in the fund {} in heyboss (one per student and fund)",
            r.student_number,
            r.fund.words()
        ));
    }
    let ctx = CommandContext::new(row_metadata(run))
        .idempotency_key(format!("legacy-award:{}", r.legacy_id))
        .fingerprint(r.fingerprint.clone());
    let command = FundCommand::ImportAward(LegacyAward {
        application_id,
        student_id,
        amount: r.amount,
        status: r.status,
        legacy_id: r.legacy_id.clone(),
        legacy_status: r.legacy_status.clone(),
        legacy_updated_at: r.legacy_updated_at,
        source: source.to_owned(),
    });
    let outcome = store
        .execute_in::<Fund>(conn, &fund_id.to_string(), &command, &ctx)
        .map_err(|e| match e {
            CommandError::KeyReused => {
                "this legacy id was imported before with other values (student, fund, amount, status or updated_at): \
                 the first import stands; record later changes through heyboss"
                    .to_owned()
            }
            CommandError::Database(d) => db(d),
            CommandError::Rejected(rejection) => {
                format!("the fund {} refuses it: {rejection}", r.fund.words())
            }
            other => other.to_string(),
        })?;
    Ok(Done {
        wrote: !outcome.duplicate && !outcome.positions.is_empty(),
        created_account,
        created_fund,
    })
}

/// The fund a row names: one this import created before (by the legacy fund id, or by name and
/// term), else the one fund heyboss has with that name (any letter case) and term; else a new
/// fund with the row's `fund_budget` (closed, its window the day of the row's `updated_at`).
/// A row whose `fund_budget` differs from the budget of the fund it names is refused.
fn find_or_create_fund(
    conn: &mut PgConnection,
    store: &EventStore,
    run: Uuid,
    source: &str,
    r: &Row,
) -> Result<(Uuid, bool), String> {
    let db = |e: diesel::result::Error| format!("database error: {e}");
    let id = r.fund.stream_id();
    let mut found: Vec<(Uuid, i64)> = funds::table
        .find(id)
        .select((funds::id, funds::budget_cents))
        .load(conn)
        .map_err(db)?;
    if found.is_empty() && r.fund.legacy_id.is_none() {
        found = funds::table
            .filter(crate::db::lower(funds::name).eq(r.fund.name.to_lowercase()))
            .filter(funds::term.eq(r.fund.term.as_str()))
            .select((funds::id, funds::budget_cents))
            .load(conn)
            .map_err(db)?;
    }
    match (found.as_slice(), r.budget) {
        ([(_, budget)], Some(given)) if *budget != given.cents() => Err(format!(
            "the fund {} has a budget of {} in heyboss, and this row says {given}",
            r.fund.words(),
            format_cents(*budget)
        )),
        ([(id, _)], _) => Ok((*id, false)),
        ([], None) => Err(format!(
            "unknown fund {}: give its budget in fund_budget to create it, or create it in heyboss first",
            r.fund.words()
        )),
        ([], Some(budget)) => {
            let day = r.legacy_updated_at.date_naive();
            store
                .execute_in::<Fund>(
                    conn,
                    &id.to_string(),
                    &FundCommand::CreateFund {
                        name: r.fund.name.clone(),
                        term: r.fund.term.clone(),
                        budget,
                        criteria: format!("Imported from the legacy system ({source})."),
                        opens_on: day,
                        closes_on: day,
                    },
                    &CommandContext::new(row_metadata(run)),
                )
                .map_err(|e| format!("the fund could not be created: {e}"))?;
            Ok((id, true))
        }
        (_, _) => Err(format!(
            "several funds are named {} in heyboss: name the fund by its legacy fund_id",
            r.fund.words()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_statuses_map_to_award_states() {
        assert_eq!(map_status(" accepted ").unwrap().1, AwardStatus::Accepted);
        assert_eq!(
            map_status("Pending Acceptance").unwrap(),
            ("PENDING_ACCEPTANCE".into(), AwardStatus::Offered)
        );
        assert_eq!(map_status("paid").unwrap().1, AwardStatus::Disbursed);
        assert_eq!(map_status("declined").unwrap().1, AwardStatus::Refused);
        assert!(map_status("ON_HOLD")
            .unwrap_err()
            .contains("maps to no award state"));
        assert!(map_status("").is_err());
    }
}
