//! Commands of the threat-reports context used by the web pages and the CLI alike.

use diesel::prelude::*;
use uuid::Uuid;

use super::commands::{
    parse_group, parse_score, parse_signature_name, ClearanceCommand, SensorCommand,
    SignatureCommand,
};
use super::decider::{Clearances, Sensor, Signature, ThreatsRejection, RESTRICTED_GROUP};
use super::error::ThreatsError;
use crate::accounts::{queries as accounts, Role};
use crate::es::{CommandContext, CommandError, CommandOutcome, EventStore};
use crate::schema::{sensor_tokens, threat_signatures};
use crate::text::{self, Lines};
use crate::web::form::FormErrors;

pub type Result<T> = std::result::Result<T, ThreatsError>;

/// Register a sensor and return (its id, its API token). Only the token's digest is stored.
pub fn create_sensor(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    name: &str,
) -> Result<(Uuid, String)> {
    let name = match text::check("The sensor name", name, 100, Lines::One) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return Err(ThreatsRejection::SensorName.into()),
        Err(message) => return Err(ThreatsRejection::Text(message).into()),
    };
    let name = name.as_str();
    let id = Uuid::new_v4();
    let token = crate::secrets::random_token();
    conn.transaction(
        |conn| -> std::result::Result<_, CommandError<ThreatsRejection>> {
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
        },
    )
    .map_err(ThreatsError::from)
}

pub fn revoke_sensor(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    id: Uuid,
) -> Result<CommandOutcome> {
    Ok(store.execute::<Sensor>(conn, &id.to_string(), &SensorCommand::Revoke, ctx)?)
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
    let name = parse_signature_name(name)?;
    text::check("The signature name", &name, 100, Lines::One).map_err(ThreatsRejection::Text)?;
    let group = parse_group(group)?;
    let default_score = score.map(parse_score).transpose()?;
    let rule_text = rule_text
        .map(|r| text::check("The rule text", r, 4000, Lines::Many))
        .transpose()
        .map_err(ThreatsRejection::Text)?;
    Ok(store.execute::<Signature>(
        conn,
        &name.clone(),
        &SignatureCommand::Set {
            name,
            rule_text,
            group,
            default_score,
        },
        ctx,
    )?)
}

pub fn retire_signature(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    name: &str,
) -> Result<CommandOutcome> {
    Ok(store.execute::<Signature>(conn, name, &SignatureCommand::Retire, ctx)?)
}

/// The clearance form's analyst (`user`) and group checked against what exists, every mistake
/// at once: a user who is no analyst, a group no signature is in (to grant), the restricted group.
/// `change_clearance` refuses the same, one at a time, for the CLI.
pub fn check_clearance(
    conn: &mut PgConnection,
    errors: &mut FormErrors,
    username: &str,
    group: &str,
    grant: bool,
) -> Result<()> {
    match parse_group(group) {
        Err(e) => errors.add("group", e),
        Ok(g) if grant && g == RESTRICTED_GROUP => {
            errors.add("group", ThreatsRejection::RestrictedClearance)
        }
        Ok(g) if grant => {
            let exists: bool = diesel::select(diesel::dsl::exists(
                threat_signatures::table.filter(threat_signatures::group_name.eq(&g)),
            ))
            .get_result(conn)?;
            if !exists {
                errors.add("group", ThreatsRejection::UnknownGroup(g));
            }
        }
        Ok(_) => {}
    }
    match accounts::find_by_username(conn, username.trim())? {
        None => errors.add(
            "user",
            ThreatsRejection::NoSuchUser(username.trim().to_owned()),
        ),
        // Quoted: a message must not capitalize a username.
        Some(u) if u.role() != Role::Analyst => errors.add(
            "user",
            format!(
                "{:?} is not an analyst: clearances are for analysts",
                u.username
            ),
        ),
        Some(_) => {}
    }
    Ok(())
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
    let group = parse_group(group)?;
    let Some(user) = accounts::find_by_username(conn, username.trim())? else {
        return Err(ThreatsRejection::NoSuchUser(username.trim().to_owned()).into());
    };
    if user.role() != Role::Analyst {
        return Err(ThreatsRejection::NotAnAnalyst(user.username).into());
    }
    let command = if grant {
        let group_exists = diesel::select(diesel::dsl::exists(
            threat_signatures::table.filter(threat_signatures::group_name.eq(&group)),
        ))
        .get_result(conn)?;
        ClearanceCommand::Grant {
            group,
            group_exists,
        }
    } else {
        ClearanceCommand::Revoke { group }
    };
    Ok(store.execute::<Clearances>(conn, &user.id.to_string(), &command, ctx)?)
}
