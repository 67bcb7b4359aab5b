//! Commands of the threat-reports context used by the web pages and the CLI alike.

use diesel::prelude::*;
use uuid::Uuid;

use super::decider::{
    parse_group, parse_score, parse_signature_name, ClearanceCommand, Clearances, Rejection,
    Sensor, SensorCommand, Signature, SignatureCommand,
};
use crate::accounts::{queries as accounts, Role};
use crate::es::{CommandContext, CommandError, CommandOutcome, EventStore};
use crate::schema::sensor_tokens;
use crate::text::{self, Lines};

pub type Result<T> = std::result::Result<T, CommandError<Rejection>>;

fn rejected<T>(message: impl Into<String>) -> Result<T> {
    Err(CommandError::Rejected(Rejection(message.into())))
}

/// Register a sensor and return (its id, its API token). Only the token's digest is stored.
pub fn create_sensor(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    name: &str,
) -> Result<(Uuid, String)> {
    let name = match text::check("The sensor name", name, 100, Lines::One) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return rejected("a sensor name has 1 to 100 characters"),
        Err(message) => return rejected(message),
    };
    let name = name.as_str();
    let id = Uuid::new_v4();
    let token = crate::secrets::random_token();
    conn.transaction(|conn| {
        store.execute_in::<Sensor>(
            conn,
            &id.to_string(),
            &SensorCommand::Register {
                name: name.to_owned(),
            },
            ctx,
        )?;
        diesel::insert_into(sensor_tokens::table)
            .values((
                sensor_tokens::token_digest.eq(crate::secrets::digest(&token)),
                sensor_tokens::sensor_id.eq(id),
            ))
            .execute(conn)?;
        Ok((id, token))
    })
}

pub fn revoke_sensor(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome> {
    store.execute::<Sensor>(conn, &id.to_string(), &SensorCommand::Revoke, ctx)
}

/// Create or revise a signature (`signatures set`, the admin form).
pub fn set_signature(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    name: &str,
    group: &str,
    score: Option<i64>,
    rule_text: Option<&str>,
) -> Result<CommandOutcome> {
    // Sensors may report any name (shown with its direction controls revealed); a person
    // typing one keeps to the rule of every text field.
    let name = parse_signature_name(name).map_err(CommandError::Rejected)?;
    if let Err(message) = text::check("The signature name", &name, 100, Lines::One) {
        return rejected(message);
    }
    let group = parse_group(group).map_err(CommandError::Rejected)?;
    let default_score = score
        .map(parse_score)
        .transpose()
        .map_err(CommandError::Rejected)?;
    let rule_text = match rule_text.map(|r| text::check("The rule text", r, 4000, Lines::Many)) {
        Some(Err(message)) => return rejected(message),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    store.execute::<Signature>(
        conn,
        &name.clone(),
        &SignatureCommand::Set {
            name,
            rule_text,
            group,
            default_score,
        },
        ctx,
    )
}

pub fn retire_signature(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    name: &str,
) -> Result<CommandOutcome> {
    store.execute::<Signature>(conn, name, &SignatureCommand::Retire, ctx)
}

/// Grant (or revoke) a visibility group to an analyst, by username.
pub fn change_clearance(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    username: &str,
    group: &str,
    grant: bool,
) -> Result<CommandOutcome> {
    let group = parse_group(group).map_err(CommandError::Rejected)?;
    let Some(user) = accounts::find_by_username(conn, username.trim())? else {
        return rejected(format!("there is no user {:?}", username.trim()));
    };
    if user.role() != Role::Analyst {
        return rejected(format!(
            "{} is not an analyst: clearances are for analysts (admins see everything)",
            user.username
        ));
    }
    let command = if grant {
        ClearanceCommand::Grant { group }
    } else {
        ClearanceCommand::Revoke { group }
    };
    store.execute::<Clearances>(conn, &user.id.to_string(), &command, ctx)
}
