//! Bringing a legacy system in, in pieces: `heyboss import enrollments FILE.csv [--dry-run]` and
//! `heyboss import awards FILE.csv [--dry-run]`.
//!
//! A legacy export is a CSV file of records with a status column. Each row becomes what is known
//! of it, as events through the deciders (never written into read models): an account for a
//! student heyboss does not know yet, then an `EnrollmentImported` event holding the legacy id,
//! the legacy status as written, when the legacy system last changed it, the file it came from
//! and the stage that status maps to. The enrollment decider takes over from there. Awards are
//! the same on the fund's stream ([`awards`]: `AwardImported`, a fund created when unknown).
//!
//! Idempotent by legacy id: a created student's user id is derived from the legacy student number
//! ([`legacy_uuid`]), and each row's command carries the idempotency key
//! `legacy-enrollment:<legacy id>` bound to a digest of the row's values. The same row imported
//! again returns its first outcome and writes nothing; the same legacy id with other values is
//! refused (the executor's `KeyReused`), never recorded twice.
//!
//! All rows run in one transaction, each in a savepoint: a row that cannot be imported is
//! reported with its line number and reason and leaves no trace; `--dry-run` rolls the whole
//! transaction back, so it reports exactly what a real run would do and changes nothing.

pub mod awards;
pub mod enrollments;

use diesel::prelude::*;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::accounts::{self, Account, AccountCommand, Role};
use crate::es::{Actor, CommandContext, EventStore, Metadata};
use crate::schema::users;

pub type ImportError = Box<dyn std::error::Error + Send + Sync>;

/// A row that was not imported: its line in the file and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: u64,
    pub legacy_id: String,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.legacy_id.is_empty() {
            write!(f, "line {}: {}", self.line, self.reason)
        } else {
            write!(
                f,
                "line {} ({}): {}",
                self.line, self.legacy_id, self.reason
            )
        }
    }
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub rows: u64,
    pub imported: u64,
    /// Rows imported before (same legacy id, same values): nothing written.
    pub unchanged: u64,
    pub accounts_created: u64,
    /// Funds created for the rows (awards only; `None` for imports that create none).
    pub funds_created: Option<u64>,
    pub skipped: Vec<Skipped>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.skipped {
            writeln!(f, "{s}")?;
        }
        write!(
            f,
            "{} rows: {} imported, {} unchanged (imported before), {} not imported; {} student accounts created",
            self.rows,
            self.imported,
            self.unchanged,
            self.skipped.len(),
            self.accounts_created
        )?;
        if let Some(n) = self.funds_created {
            write!(f, "; {n} funds created")?;
        }
        Ok(())
    }
}

/// A stable id for something the legacy system names (`kind` and its legacy key): the same row
/// The columns every legacy import shares, checked: `legacy_id` present, `student_number` usable
/// as a username, `name` and `email` acceptable. Each problem is added to `reasons`; returns the
/// student number, name and email as given.
pub fn student_columns(
    legacy_id: &str,
    get: &impl Fn(&str) -> String,
    reasons: &mut Vec<String>,
) -> (String, String, String) {
    if legacy_id.is_empty() {
        reasons.push("the legacy id is missing".to_owned());
    }
    let student_number = get("student_number");
    if student_number.is_empty() {
        reasons.push("the student is missing (no student_number)".to_owned());
    } else if crate::accounts::service::parse_username(&student_number).is_err() {
        reasons.push(format!(
            "student number {student_number:?} cannot be a username (3 to 32 letters, digits, '.', '_' or '-')"
        ));
    }
    let name = get("name");
    if !name.is_empty() {
        if let Err(e) = crate::accounts::service::parse_display_name(&name) {
            reasons.push(e.to_string());
        }
    }
    let email = get("email");
    if let Err(e) = crate::accounts::service::parse_email(&email) {
        reasons.push(e.to_string());
    }
    (student_number, name, email)
}

/// A legacy status looked up in an import's mapping table (`table`: the legacy names, upper case
/// with underscores, and what each maps to), in any letter case with spaces or hyphens for
/// underscores. The error names the status, says it maps to no `what`, and lists the known ones.
pub fn map_status<T: Copy>(
    raw: &str,
    table: &[(&str, T)],
    what: &str,
) -> Result<(String, T), String> {
    let normal = raw.trim().to_ascii_uppercase().replace([' ', '-'], "_");
    if normal.is_empty() {
        return Err("the status is missing".into());
    }
    table
        .iter()
        .find(|(s, _)| *s == normal)
        .map(|(s, mapped)| ((*s).to_owned(), *mapped))
        .ok_or_else(|| {
            format!(
                "unknown status {:?}: it maps to no {what} (known: {})",
                raw.trim(),
                table.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
            )
        })
}

/// imported twice addresses the same stream. (Custom-version UUID from SHA-256.)
pub fn legacy_uuid(kind: &str, key: &str) -> Uuid {
    let digest = Sha256::digest(format!("heyboss-legacy\0{kind}\0{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A digest of a row's values, binding the idempotency key to them.
pub fn fingerprint(values: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for v in values {
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Metadata of one row's command: the CLI as actor, every row of one run in one correlation.
pub fn row_metadata(run: Uuid) -> Metadata {
    Metadata {
        correlation_id: run,
        ..Metadata::new(Actor::Cli)
    }
}

/// Run `rows` in one transaction, committed unless `dry_run`.
pub fn in_transaction(
    conn: &mut PgConnection,
    dry_run: bool,
    rows: impl FnOnce(&mut PgConnection) -> Result<Report, ImportError>,
) -> Result<Report, ImportError> {
    #[derive(Debug, thiserror::Error)]
    #[error("dry run")]
    struct DryRun(Report);
    let result = conn.transaction(|conn| {
        let report = rows(conn)?;
        if dry_run {
            return Err(Box::new(DryRun(report)) as ImportError);
        }
        Ok(report)
    });
    match result {
        Err(e) => match e.downcast::<DryRun>() {
            Ok(dry) => Ok(dry.0),
            Err(e) => Err(e),
        },
        ok => ok,
    }
}

/// Run a row's work in a savepoint: its error rolls back only what it wrote.
pub fn row<T>(
    conn: &mut PgConnection,
    work: impl FnOnce(&mut PgConnection) -> Result<T, String>,
) -> Result<T, String> {
    #[derive(Debug)]
    enum E {
        Row(String),
        Db(diesel::result::Error),
    }
    impl From<diesel::result::Error> for E {
        fn from(e: diesel::result::Error) -> Self {
            E::Db(e)
        }
    }
    conn.transaction(|conn| work(conn).map_err(E::Row))
        .map_err(|e| match e {
            E::Row(r) => r,
            E::Db(d) => format!("database error: {d}"),
        })
}

/// A student as a legacy row names them.
pub struct LegacyStudent<'a> {
    /// The legacy student id.
    pub number: &'a str,
    pub name: &'a str,
    pub email: &'a str,
}

/// The student's account: one an earlier import created, a student with the row's email or
/// with the student number as username; else a new student account (no password: it cannot
/// sign in until an admin resets the password on /admin/accounts).
pub fn find_or_create_student(
    conn: &mut PgConnection,
    store: &EventStore,
    run: Uuid,
    r: &LegacyStudent,
) -> Result<(Uuid, bool), String> {
    let db = |e: diesel::result::Error| format!("database error: {e}");
    let id = legacy_uuid("student", &r.number.to_ascii_lowercase());
    let known: Option<Uuid> = users::table
        .find(id)
        .select(users::id)
        .first(conn)
        .optional()
        .map_err(db)?;
    if let Some(id) = known {
        return Ok((id, false));
    }
    if !r.email.is_empty() {
        let by_email: Vec<(Uuid, String)> = users::table
            .filter(crate::db::lower(users::email).eq(r.email.to_lowercase()))
            .select((users::id, users::role))
            .load(conn)
            .map_err(db)?;
        match by_email.as_slice() {
            [(id, role)] if role == Role::Student.as_str() => return Ok((*id, false)),
            [(_, role)] => {
                return Err(format!(
                    "the email {} belongs to a {role} account, not a student's",
                    r.email
                ))
            }
            [] => {}
            _ => return Err(format!("several accounts have the email {}", r.email)),
        }
    }
    if let Some(user) = accounts::queries::find_by_username(conn, r.number).map_err(db)? {
        return if user.role() == Role::Student {
            Ok((user.id, false))
        } else {
            Err(format!(
                "the username {} belongs to a {} account, not a student's",
                user.username, user.role
            ))
        };
    }
    let name = if r.name.is_empty() {
        r.number.to_owned()
    } else {
        r.name.to_owned()
    };
    store
        .execute_in::<Account>(
            conn,
            &id.to_string(),
            &AccountCommand::Register {
                username: r.number.to_ascii_lowercase(),
                display_name: name,
                email: r.email.to_owned(),
                role: Role::Student,
            },
            &CommandContext::new(row_metadata(run)),
        )
        .map_err(|e| format!("the student's account could not be created: {e}"))?;
    Ok((id, true))
}

/// `heyboss import ...`.
pub fn run(
    database: &crate::db::Database,
    command: crate::cli::ImportCommand,
) -> Result<bool, ImportError> {
    use crate::cli::ImportCommand;
    let pool = crate::db::pool(&database.url, 1)?;
    let mut conn = pool.get()?;
    crate::db::migrate(&mut conn)?;
    let store = crate::startup::event_store();
    let (file, dry_run) = match &command {
        ImportCommand::Enrollments { file, dry_run } | ImportCommand::Awards { file, dry_run } => {
            (file, *dry_run)
        }
    };
    let text = std::fs::read(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let source = std::path::Path::new(file)
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let report = match command {
        ImportCommand::Enrollments { .. } => {
            enrollments::import(&mut conn, &store, &text, &source, dry_run)?
        }
        ImportCommand::Awards { .. } => awards::import(&mut conn, &store, &text, &source, dry_run)?,
    };
    println!("{report}");
    if dry_run {
        println!("dry run: nothing was changed");
    }
    Ok(report.skipped.is_empty())
}
