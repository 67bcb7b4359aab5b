//! Enrollment commands as the web, the demo and sign-up issue them.

use diesel::PgConnection;
use uuid::Uuid;

use super::commands::{EnrollmentCommand, Term};
use super::decider::Enrollment;
use super::error::EnrollmentError;
use crate::accounts::service as accounts;
use crate::accounts::AccountError;
use crate::accounts::{NewAccount, Role, Viewer};
use crate::es::{Actor, CommandContext, CommandError, CommandOutcome, EventStore, Metadata};

/// Run one command on a student's enrollment stream in its own transaction.
pub fn execute(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    student_id: Uuid,
    command: &EnrollmentCommand,
) -> Result<CommandOutcome, EnrollmentError> {
    Ok(store.execute::<Enrollment>(conn, &student_id.to_string(), command, ctx)?)
}

/// A command a viewer issues from a page: the scope is checked again with the write, not only
/// on the page that showed the form.
pub fn act(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    viewer: &Viewer,
    student_id: Uuid,
    command: &EnrollmentCommand,
) -> Result<CommandOutcome, EnrollmentError> {
    if !super::queries::may_see(viewer, student_id) {
        return Err(EnrollmentError::NotFound);
    }
    execute(conn, store, ctx, student_id, command)
}

/// Create a student account whose enrollment begins with an inquiry for `term`, in one transaction:
/// there is never a student without an enrollment, nor an enrollment without its account.
pub fn sign_up(
    conn: &mut PgConnection,
    store: &EventStore,
    metadata: Metadata,
    account: NewAccount,
    term: &Term,
) -> Result<Uuid, EnrollmentError> {
    let account = NewAccount {
        role: Role::Student,
        ..account
    };
    let signup = metadata.clone();
    let created = accounts::register(conn, store, metadata, account, |conn, user_id| {
        // The inquiry is the new student's own act, in the same correlation as the account.
        let ctx = CommandContext::new(Metadata {
            actor: Actor::User(user_id),
            command_id: Uuid::new_v4(),
            causation_id: Some(signup.command_id),
            ..signup
        });
        store
            .execute_in::<Enrollment>(
                conn,
                &user_id.to_string(),
                &EnrollmentCommand::Inquire { term: term.clone() },
                &ctx,
            )
            .map(|_| ())
            .map_err(|e| match e {
                CommandError::Database(d) => AccountError::Database(d),
                other => AccountError::Invalid(other.to_string()),
            })
    });
    Ok(created?)
}
