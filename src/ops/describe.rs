//! Events in the words of the domain: each context describes its own events
//! (`BoundedContext::describe`, beside its event enum); any event no context describes is read
//! generically (its type and payload keys as words). Histories and the audit log show these
//! sentences with labelled fields and actors by name, never the stored type names or JSON.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::audit::humanize;
use crate::es::{Actor, RecordedEvent};

/// One event as a sentence ("Admission decided: admitted") and labelled fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDescription {
    pub summary: String,
    pub fields: Vec<DescribedField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescribedField {
    pub label: String,
    pub value: String,
}

impl EventDescription {
    pub fn new(summary: impl Into<String>) -> EventDescription {
        EventDescription {
            summary: summary.into(),
            fields: Vec::new(),
        }
    }

    pub fn field(mut self, label: &str, value: impl ToString) -> EventDescription {
        let value = value.to_string();
        if !value.trim().is_empty() {
            self.fields.push(DescribedField {
                label: label.to_owned(),
                value,
            });
        }
        self
    }

    /// An event no context describes: its type as words and its payload's keys as labels.
    pub fn generic(event_type: &str, payload: &Value) -> EventDescription {
        let mut d = EventDescription::new(humanize(event_type));
        if let Value::Object(map) = payload {
            for (key, value) in map {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Bool(true) => "yes".into(),
                    Value::Bool(false) => "no".into(),
                    Value::Null => continue,
                    Value::Array(items) => items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                d = d.field(&humanize(key), value);
            }
        }
        d
    }
}

/// The words for `event`: its context's, else the generic reading.
pub fn describe(event: &RecordedEvent) -> EventDescription {
    crate::startup::contexts()
        .iter()
        .find_map(|c| c.describe(event))
        .unwrap_or_else(|| EventDescription::generic(&event.event_type, &event.payload))
}

/// Who did it, as a person reads it: a user's name, "the command line", "the system" (a
/// reaction of the application), "a sensor".
pub fn actor_label(actor: Option<Actor>, names: &HashMap<Uuid, String>) -> String {
    match actor {
        Some(Actor::User(id)) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "a former user".into()),
        Some(Actor::Cli) => "the command line".into(),
        Some(Actor::System(_)) => "the system".into(),
        Some(Actor::Sensor(_)) => "a sensor".into(),
        None => "unknown".into(),
    }
}

/// Display names (the username when a user has none) of the users who caused `events`.
pub fn actor_names(
    conn: &mut PgConnection,
    events: &[RecordedEvent],
) -> QueryResult<HashMap<Uuid, String>> {
    use crate::schema::users;
    let ids: Vec<Uuid> = events
        .iter()
        .filter_map(|e| e.actor().and_then(|a| a.user_id()))
        .collect();
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::display_name, users::username))
        .load::<(Uuid, String, String)>(conn)?
        .into_iter()
        .map(|(id, name, username)| {
            let name = if name.trim().is_empty() {
                username
            } else {
                name
            };
            (id, name)
        })
        .collect())
}

/// One entry of a history (`templates/_history.html`).
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    pub description: EventDescription,
    pub who: String,
    pub at: DateTime<Utc>,
    pub version: i64,
    /// The event's position: its own page is `/events/{position}`.
    pub position: i64,
}

/// A stream's events as its history shows them.
pub fn history(
    conn: &mut PgConnection,
    events: &[RecordedEvent],
) -> QueryResult<Vec<HistoryEntry>> {
    let names = actor_names(conn, events)?;
    Ok(events
        .iter()
        .map(|e| HistoryEntry {
            description: describe(e),
            who: actor_label(e.actor(), &names),
            at: e.recorded_at,
            position: e.position,
            version: e.stream_version,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undescribed_event_reads_as_words_with_labelled_fields() {
        let d = EventDescription::generic(
            "FileScored",
            &serde_json::json!({"file_id": "f1", "score": 90, "rescanned": false, "tags": ["a", "b"], "gone": null}),
        );
        assert_eq!(d.summary, "File scored");
        let fields: Vec<(String, String)> =
            d.fields.into_iter().map(|f| (f.label, f.value)).collect();
        assert_eq!(
            fields,
            [
                ("File id".to_owned(), "f1".to_owned()),
                ("Rescanned".into(), "no".into()),
                ("Score".into(), "90".into()),
                ("Tags".into(), "a, b".into()),
            ]
        );
    }
}
