//! Account commands as the web and the CLI issue them: validate at the edge, then one transaction.

use chrono::Utc;
use diesel::prelude::*;
use uuid::Uuid;

use super::decider::{Account, AccountCommand, Role};
use super::passwords::{self, Password};
use super::queries::{self, User};
use super::sessions;
use super::throttle::{self, Attempt};
use super::AccountError;
use crate::es::{CommandContext, CommandError, CommandOutcome, EventStore, Metadata};
use crate::schema::credentials;
use crate::web::form::FormErrors;

/// A new account, parsed from raw input.
#[derive(Debug)]
pub struct NewAccount {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub password: Password,
}

impl NewAccount {
    pub fn parse(
        username: &str,
        display_name: &str,
        email: &str,
        role: &str,
        password: &str,
    ) -> Result<NewAccount, AccountError> {
        let username = parse_username(username)?;
        let display_name = display_name.trim();
        let display_name = if display_name.is_empty() {
            username.clone()
        } else {
            parse_display_name(display_name)?
        };
        Ok(NewAccount {
            email: parse_email(email)?,
            role: Role::parse(role).map_err(AccountError::Invalid)?,
            password: Password::parse(password).map_err(AccountError::Invalid)?,
            username,
            display_name,
        })
    }

    /// Every field of an account form checked into `errors` (fields `username`, `name`, `email`,
    /// `role`, `password`), all mistakes at once; the account when none.
    pub fn check(
        errors: &mut FormErrors,
        username: &str,
        display_name: &str,
        email: &str,
        role: &str,
        password: &str,
    ) -> Option<NewAccount> {
        let username = errors.check("username", parse_username(username));
        let display_name = match display_name.trim() {
            "" => username.clone(),
            name => errors.check("name", parse_display_name(name)),
        };
        let email = errors.check("email", parse_email(email));
        let role = errors.check("role", Role::parse(role));
        let password = errors.check("password", Password::parse(password));
        Some(NewAccount {
            username: username?,
            display_name: display_name?,
            email: email?,
            role: role?,
            password: password?,
        })
    }

    /// A username already taken, as a mistake of the form (the transaction that registers
    /// checks again).
    pub fn check_free(
        conn: &mut PgConnection,
        errors: &mut FormErrors,
        username: &str,
    ) -> QueryResult<()> {
        if let Ok(u) = parse_username(username) {
            if queries::username_taken(conn, &u)? {
                errors.add("username", AccountError::UsernameTaken(u));
            }
        }
        Ok(())
    }
}

pub fn parse_username(raw: &str) -> Result<String, AccountError> {
    let u = raw.trim();
    let ok_chars = u
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if u.len() < 3 || u.len() > 32 || !ok_chars {
        return Err(AccountError::Invalid(
            "a username has 3 to 32 characters: letters, digits, '.', '_' or '-'".into(),
        ));
    }
    Ok(u.to_owned())
}

pub fn parse_display_name(raw: &str) -> Result<String, AccountError> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 100 {
        return Err(AccountError::Invalid(
            "a name has 1 to 100 characters and no control characters".into(),
        ));
    }
    crate::text::check("The name", n, 100, crate::text::Lines::One).map_err(AccountError::Invalid)
}

pub fn parse_email(raw: &str) -> Result<String, AccountError> {
    let e = raw.trim();
    if e.is_empty() {
        return Ok(String::new());
    }
    let valid = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.'));
    if !valid {
        return Err(AccountError::Invalid(format!(
            "{e:?} is not an email address"
        )));
    }
    Ok(e.to_owned())
}

/// Register an account and store its credentials in one transaction. `and_then` runs in the same
/// transaction, for contexts that start something for the new user (a student's enrollment).
pub fn register(
    conn: &mut PgConnection,
    store: &EventStore,
    metadata: Metadata,
    account: NewAccount,
    and_then: impl FnOnce(&mut PgConnection, Uuid) -> Result<(), AccountError>,
) -> Result<Uuid, AccountError> {
    // Hash before the transaction: argon2 is deliberately slow and must not hold locks.
    let password_hash = account.password.hash();
    let user_id = Uuid::new_v4();
    conn.transaction(|conn| {
        if queries::username_taken(conn, &account.username)? {
            return Err(AccountError::UsernameTaken(account.username.clone()));
        }
        let command = AccountCommand::Register {
            username: account.username.clone(),
            display_name: account.display_name.clone(),
            email: account.email.clone(),
            role: account.role,
        };
        let result = store.execute_in::<Account>(
            conn,
            &user_id.to_string(),
            &command,
            &CommandContext::new(metadata),
        );
        match result {
            // Two sign-ups racing for one username: the unique index decides.
            Err(CommandError::Projection(p)) if p.to_string().contains("users_username_key") => {
                return Err(AccountError::UsernameTaken(account.username.clone()))
            }
            other => other?,
        };
        diesel::insert_into(credentials::table)
            .values((
                credentials::user_id.eq(user_id),
                credentials::password_hash.eq(password_hash),
            ))
            .execute(conn)?;
        and_then(conn, user_id)?;
        Ok(user_id)
    })
}

/// Any account command; sessions end when the account is deactivated.
pub fn execute(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    user_id: Uuid,
    command: AccountCommand,
) -> Result<CommandOutcome, AccountError> {
    if !matches!(command, AccountCommand::Deactivate) {
        // Nothing to write beside the stream and its projections: the store's own transaction,
        // which decides on the account's state as this process last wrote it (no load).
        return Ok(store.execute::<Account>(conn, &user_id.to_string(), &command, ctx)?);
    }
    conn.transaction(|conn| {
        let outcome = store.execute_in::<Account>(conn, &user_id.to_string(), &command, ctx)?;
        if matches!(command, AccountCommand::Deactivate) {
            sessions::end_all(conn, user_id, None)?;
        }
        Ok(outcome)
    })
}

/// Set a new password (an admin's reset, or the user's own change): records the event, stores
/// the hash, and ends the user's sessions except `keep_session`.
pub fn set_password(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    user_id: Uuid,
    password: &Password,
    reset_by_admin: bool,
    keep_session: Option<&str>,
) -> Result<(), AccountError> {
    let password_hash = password.hash();
    conn.transaction(|conn| {
        store.execute_in::<Account>(
            conn,
            &user_id.to_string(),
            &AccountCommand::RecordPasswordChange { reset_by_admin },
            ctx,
        )?;
        diesel::insert_into(credentials::table)
            .values((
                credentials::user_id.eq(user_id),
                credentials::password_hash.eq(&password_hash),
            ))
            .on_conflict(credentials::user_id)
            .do_update()
            .set((
                credentials::password_hash.eq(&password_hash),
                credentials::updated_at.eq(Utc::now()),
            ))
            .execute(conn)?;
        sessions::end_all(conn, user_id, keep_session)?;
        Ok(())
    })
}

pub fn verify_password(
    conn: &mut PgConnection,
    user_id: Uuid,
    password: &str,
) -> QueryResult<bool> {
    let phc: Option<String> = credentials::table
        .find(user_id)
        .select(credentials::password_hash)
        .first(conn)
        .optional()?;
    Ok(match phc {
        Some(phc) => passwords::verify(password, &phc),
        None => {
            passwords::verify_dummy(password);
            false
        }
    })
}

/// Check a username and password for a sign-in, throttled per username and per client address.
pub fn authenticate(
    conn: &mut PgConnection,
    username: &str,
    password: &str,
    client_ip: &str,
) -> Result<User, AccountError> {
    throttle::reserve_password_check(conn, Attempt::SignIn, username, client_ip)?;
    let user = queries::find_by_username(conn, username)?;
    let ok = match &user {
        Some(u) => verify_password(conn, u.id, password)? && u.active,
        None => {
            passwords::verify_dummy(password);
            false
        }
    };
    match user {
        Some(u) if ok => {
            throttle::password_accepted(conn, username)?;
            Ok(u)
        }
        _ => Err(AccountError::WrongCredentials),
    }
}

/// The viewer's current password checked (throttled like a sign-in), for a form that has other
/// mistakes too: every one of them is shown at once.
pub fn check_current_password(
    conn: &mut PgConnection,
    viewer: &super::Viewer,
    current: &str,
    client_ip: &str,
) -> Result<(), AccountError> {
    throttle::reserve_password_check(conn, Attempt::PasswordChange, &viewer.username, client_ip)?;
    if !verify_password(conn, viewer.user_id, current)? {
        return Err(AccountError::WrongCurrentPassword);
    }
    throttle::password_accepted(conn, &viewer.username)?;
    Ok(())
}

/// A user changes their own password: the current one is checked under the same throttle as a
/// sign-in (a stolen session must not be a way to guess it), then the new one is set and every
/// other session of the user ends.
pub fn change_own_password(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &super::Viewer,
    current: &str,
    new: &Password,
    client_ip: &str,
) -> Result<(), AccountError> {
    check_current_password(conn, viewer, current, client_ip)?;
    set_password(
        conn,
        store,
        ctx,
        viewer.user_id,
        new,
        false,
        Some(&viewer.session_digest),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_emails_are_checked() {
        assert!(parse_username("ab").is_err());
        assert!(parse_username("ada lovelace").is_err());
        assert_eq!(parse_username(" ada.l ").unwrap(), "ada.l");
        assert!(parse_email("nope").is_err());
        assert!(parse_email("a@b").is_err());
        assert_eq!(parse_email("a@b.edu").unwrap(), "a@b.edu");
        assert_eq!(parse_email("").unwrap(), "");
        assert!(parse_display_name(&"x".repeat(101)).is_err());
    }
}
