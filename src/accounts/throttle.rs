//! Limits on guessing: every password check (sign-in and the current password on
//! `/account/password`) and every sign-up counts against its username and its client address.
//!
//! Counting and recording are one step. An attempt is recorded as a failure *before* the slow
//! password check, under transaction-scoped advisory locks on its username and address, so 30
//! parallel guesses get exactly as many checks as the limit allows; a correct password then
//! removes the username's failures again.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::error::AccountError;
use crate::db::lower;
use crate::schema::{login_failures, signup_attempts};

/// Failed password checks within the window that lock a username.
pub const MAX_FAILURES_PER_USERNAME: i64 = 5;
/// Failed sign-ins within the window that lock a client address. Higher than per username,
/// since an office behind one NAT address shares it.
pub const MAX_FAILURES_PER_IP: i64 = 20;
/// Sign-up attempts within the window from one client address (a lab of new students behind
/// one address signs up over an afternoon, not in a burst).
pub const MAX_SIGNUPS_PER_IP: i64 = 20;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;

/// Longer usernames cannot exist; the stored key is cut so that counting and recording agree.
const USERNAME_KEY_CHARS: usize = 64;

fn username_key(username: &str) -> String {
    username
        .chars()
        .take(USERNAME_KEY_CHARS)
        .collect::<String>()
        .to_lowercase()
}

/// Serialize attempts on one key until the transaction ends. Callers lock usernames before
/// addresses, always, so two attempts never wait on each other in a cycle.
fn lock(conn: &mut PgConnection, key: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(key)
        .execute(conn)
        .map(drop)
}

/// What was attempted too often, as the refusal names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    SignIn,
    PasswordChange,
    SignUp,
}

impl Attempt {
    /// As stored in `login_failures.attempt`.
    fn as_str(self) -> &'static str {
        match self {
            Attempt::SignIn => "sign-in",
            Attempt::PasswordChange => "password-change",
            Attempt::SignUp => "sign-up",
        }
    }
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Attempt::SignIn => "failed sign-in attempts",
            Attempt::PasswordChange => "wrong passwords",
            Attempt::SignUp => "sign-ups from your address",
        })
    }
}

fn throttled(attempt: Attempt) -> AccountError {
    AccountError::Throttled {
        attempt,
        minutes: THROTTLE_WINDOW_MINUTES,
    }
}

/// Reserve one password check for `username` from `client_ip`: refused when either is over its
/// limit, otherwise recorded as a failure until [`password_accepted`] says otherwise.
pub fn reserve_password_check(
    conn: &mut PgConnection,
    attempt: Attempt,
    username: &str,
    client_ip: &str,
) -> Result<(), AccountError> {
    let key = username_key(username);
    // Only sign-ins count against the address: a password change is one signed-in user guessing
    // at one account, which the username's limit covers.
    let per_address = attempt == Attempt::SignIn;
    conn.transaction(|conn| {
        lock(conn, &format!("heyboss.password.user:{key}"))?;
        if per_address {
            lock(conn, &format!("heyboss.password.ip:{client_ip}"))?;
        }
        let since = Utc::now() - Duration::minutes(THROTTLE_WINDOW_MINUTES);
        let by_user: i64 = login_failures::table
            .filter(lower(login_failures::username).eq(&key))
            .filter(login_failures::failed_at.gt(since))
            .count()
            .get_result(conn)?;
        let by_ip: i64 = if per_address {
            login_failures::table
                .filter(login_failures::client_ip.eq(client_ip))
                .filter(login_failures::attempt.eq(attempt.as_str()))
                .filter(login_failures::failed_at.gt(since))
                .count()
                .get_result(conn)?
        } else {
            0
        };
        if by_user >= MAX_FAILURES_PER_USERNAME || by_ip >= MAX_FAILURES_PER_IP {
            return Err(throttled(attempt));
        }
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::username.eq(&key),
                login_failures::client_ip.eq(client_ip),
                login_failures::attempt.eq(attempt.as_str()),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// The password was right: the username's failures are forgiven (the address keeps its count,
/// so one good account does not open the address to guessing at others).
pub fn password_accepted(conn: &mut PgConnection, username: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table)
        .filter(lower(login_failures::username).eq(username_key(username)))
        .execute(conn)
        .map(drop)
}

/// Count one sign-up attempt from `client_ip`, refused when the address is over its limit.
/// Every attempt counts, successful or not: probing which usernames are taken is what it limits.
pub fn reserve_sign_up(conn: &mut PgConnection, client_ip: &str) -> Result<(), AccountError> {
    conn.transaction(|conn| {
        lock(conn, &format!("heyboss.signup.ip:{client_ip}"))?;
        let since = Utc::now() - Duration::minutes(THROTTLE_WINDOW_MINUTES);
        // Old attempts only ever matter inside the window.
        diesel::delete(signup_attempts::table)
            .filter(signup_attempts::client_ip.eq(client_ip))
            .filter(signup_attempts::attempted_at.le(since))
            .execute(conn)?;
        let recent: i64 = signup_attempts::table
            .filter(signup_attempts::client_ip.eq(client_ip))
            .count()
            .get_result(conn)?;
        if recent >= MAX_SIGNUPS_PER_IP {
            return Err(throttled(Attempt::SignUp));
        }
        diesel::insert_into(signup_attempts::table)
            .values(signup_attempts::client_ip.eq(client_ip))
            .execute(conn)?;
        Ok(())
    })
}
