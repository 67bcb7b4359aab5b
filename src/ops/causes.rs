//! One event's page (`/events/{position}`): what caused what. Its metadata (command, actor by
//! name, request id, correlation and causation), the other events of its command, the events that
//! caused it, the events it caused (an `Enrolled` and the `AwardDisbursed` the scholarships
//! reaction recorded for it), and the whole chain of its correlation, each linked to its own page.
//!
//! Causation names a command, not an event (events have no uuid of their own: see
//! `Metadata::caused_by`), so "caused by" lists the events of the causing command, and "caused"
//! the events whose causation is this event's command.
//!
//! Scoped like the history: an event the viewer may not see on its history is "not found", and
//! so is every related event they may not see.

use actix_web::{get, web, HttpRequest, HttpResponse};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::Serialize;
use tera::Context;

use super::audit::{to_rows, visible_to, AuditRow};
use super::Registry;
use crate::accounts::Viewer;
use crate::es::{Actor, RecordedEvent};
use crate::schema::{events, users};
use crate::web::render::state;
use crate::web::{render, AppError};

/// At most this many events of one chain are listed.
pub const CHAIN_LIMIT: i64 = 200;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(event_page);
}

/// The event page's content.
#[derive(Debug, Serialize)]
pub struct EventPage {
    pub event: AuditRow,
    pub actor_kind: String,
    /// The actor's display name and username, for a user.
    pub actor_name: Option<String>,
    pub command_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub request_id: Option<String>,
    pub schema_version: i32,
    /// Its step in the replay of its history (the replay counts the events the viewer may see).
    pub replay_step: i64,
    /// The other events of its command, its causes, what it caused, and its chain.
    pub sections: Vec<Related>,
    pub chain_truncated: bool,
}

/// A list of related events, oldest first.
#[derive(Debug, Serialize)]
pub struct Related {
    pub id: &'static str,
    pub title: &'static str,
    pub empty: &'static str,
    pub rows: Vec<AuditRow>,
}

fn meta(e: &RecordedEvent, key: &str) -> Option<String> {
    e.metadata
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// Visible events whose metadata `key` is `value`, oldest first.
fn related(
    conn: &mut PgConnection,
    viewer: &Viewer,
    registry: &Registry,
    key: &'static str,
    value: &str,
    limit: i64,
) -> QueryResult<Vec<RecordedEvent>> {
    // The expression matches the indexes of migration 2026-12-06-600000.
    let condition = match key {
        "command_id" => "(metadata ->> 'command_id') = ",
        "causation_id" => "(metadata ->> 'causation_id') = ",
        _ => "(metadata ->> 'correlation_id') = ",
    };
    events::table
        .filter(sql::<Bool>(condition).bind::<Text, _>(value.to_owned()))
        .filter(visible_to(viewer, &registry.audit_scopes))
        .order(events::position.asc())
        .limit(limit)
        .select(RecordedEvent::as_select())
        .load(conn)
}

/// The page of the event at `position`, if the viewer may see it.
pub fn load(
    conn: &mut PgConnection,
    viewer: &Viewer,
    registry: &Registry,
    position: i64,
) -> QueryResult<Option<EventPage>> {
    let Some(event) = events::table
        .filter(events::position.eq(position))
        .filter(visible_to(viewer, &registry.audit_scopes))
        .select(RecordedEvent::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let command_id = meta(&event, "command_id");
    let correlation_id = meta(&event, "correlation_id");
    let causation_id = meta(&event, "causation_id");
    let mut load_rows = |key, value: &Option<String>, limit| -> QueryResult<Vec<RecordedEvent>> {
        match value {
            Some(v) => related(conn, viewer, registry, key, v, limit),
            None => Ok(Vec::new()),
        }
    };
    let same_command: Vec<RecordedEvent> = load_rows("command_id", &command_id, CHAIN_LIMIT)?
        .into_iter()
        .filter(|e| e.position != position)
        .collect();
    let caused_by = load_rows("command_id", &causation_id, CHAIN_LIMIT)?;
    let caused = load_rows("causation_id", &command_id, CHAIN_LIMIT)?;
    let chain = load_rows("correlation_id", &correlation_id, CHAIN_LIMIT + 1)?;
    let chain_truncated = chain.len() as i64 > CHAIN_LIMIT;
    let (actor_kind, actor_name) = match event.actor() {
        Some(Actor::User(id)) => (
            "user".to_owned(),
            users::table
                .find(id)
                .select((users::display_name, users::username))
                .first::<(String, String)>(conn)
                .optional()?
                .map(|(name, username)| format!("{name} ({username})")),
        ),
        Some(Actor::Sensor(_)) => ("sensor".into(), None),
        Some(Actor::Cli) => ("the command line".into(), None),
        Some(Actor::System(name)) => (format!("the system ({name})"), None),
        None => ("unknown".into(), None),
    };
    let schema_version = event.schema_version;
    let replay_step: i64 = events::table
        .filter(events::stream_type.eq(&event.stream_type))
        .filter(events::stream_id.eq(&event.stream_id))
        .filter(events::stream_version.le(event.stream_version))
        .filter(visible_to(viewer, &registry.audit_scopes))
        .count()
        .get_result(conn)?;
    let request_id = meta(&event, "request_id");
    let mut chain = to_rows(conn, chain)?;
    chain.truncate(CHAIN_LIMIT as usize);
    Ok(Some(EventPage {
        event: to_rows(conn, vec![event])?.remove(0),
        actor_kind,
        actor_name,
        command_id,
        correlation_id,
        causation_id,
        request_id,
        schema_version,
        replay_step,
        sections: vec![
            Related {
                id: "caused-by",
                title: "Caused by",
                empty: "Nothing you may see caused it: a person or a sensor did.",
                rows: to_rows(conn, caused_by)?,
            },
            Related {
                id: "same-command",
                title: "Recorded by the same command",
                empty: "It is the only event of its command.",
                rows: to_rows(conn, same_command)?,
            },
            Related {
                id: "caused",
                title: "What it caused",
                empty: "Nothing you may see.",
                rows: to_rows(conn, caused)?,
            },
            Related {
                id: "chain",
                title: "The whole chain (same correlation)",
                empty: "Nothing you may see.",
                rows: chain,
            },
        ],
        chain_truncated,
    }))
}

#[tracing::instrument(skip_all, fields(user_id = %viewer.user_id, position = %path))]
#[get("/events/{position}")]
async fn event_page(
    req: HttpRequest,
    viewer: Viewer,
    registry: web::Data<Registry>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    // A position that is not a number names no event.
    let position: i64 = path.parse().map_err(|_| AppError::NotFound)?;
    let registry = registry.into_inner();
    let page = state(&req)
        .read_query(&req, move |conn| load(conn, &viewer, &registry, position))
        .await?
        // Not visible and not there look the same, as on the history page.
        .ok_or(AppError::NotFound)?;
    let mut ctx = Context::new();
    ctx.insert("page", &page);
    render(&req, "ops/event.html", "ops/event.html", ctx)
}
