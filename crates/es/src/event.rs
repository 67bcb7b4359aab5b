use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::projection::ProjectionError;
use crate::schema::events;

/// Who caused an event: recorded in every event's metadata, shown in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Actor {
    User(Uuid),
    Sensor(Uuid),
    Cli,
    /// A reaction of the application itself (a process manager), named.
    System(String),
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Actor::User(id) => Some(*id),
            _ => None,
        }
    }
}

/// Metadata stored beside every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub actor: Actor,
    pub command_id: Uuid,
    pub correlation_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Metadata {
    /// Metadata for a new command that starts its own correlation.
    pub fn new(actor: Actor) -> Self {
        let command_id = Uuid::new_v4();
        Metadata {
            actor,
            command_id,
            correlation_id: command_id,
            causation_id: None,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Metadata for a command caused by an earlier event: same correlation, the event as cause.
    pub fn caused_by(actor: Actor, cause: &RecordedEvent) -> Self {
        let cause_meta: Option<Metadata> = serde_json::from_value(cause.metadata.clone()).ok();
        Metadata {
            actor,
            command_id: Uuid::new_v4(),
            correlation_id: cause_meta
                .map(|m| m.correlation_id)
                .unwrap_or_else(Uuid::new_v4),
            causation_id: cause_meta_event_id(cause),
            request_id: None,
        }
    }
}

fn cause_meta_event_id(cause: &RecordedEvent) -> Option<Uuid> {
    // Events have no uuid of their own; the causing command's id identifies the cause.
    cause
        .metadata
        .get("command_id")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
}

/// An event as stored in the log.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct RecordedEvent {
    pub position: i64,
    pub stream_type: String,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub transaction_id: i64,
}

impl RecordedEvent {
    /// Decode into a context's event type, upcasting old shapes first.
    pub fn decode<E: DomainEvent>(&self) -> Result<E, DecodeError> {
        if self.schema_version == E::schema_version(&self.event_type) {
            return decode_current(&self.event_type, &self.payload).map_err(|e| DecodeError {
                event_type: self.event_type.clone(),
                schema_version: self.schema_version,
                message: e.to_string(),
            });
        }
        decode(&self.event_type, self.schema_version, self.payload.clone())
    }

    /// The id of a stream keyed by a uuid (a user, a sensor, a student), for projections.
    pub fn stream_uuid(&self) -> Result<Uuid, ProjectionError> {
        self.stream_id
            .parse()
            .map_err(|_| ProjectionError::BadStreamId {
                stream_type: self.stream_type.clone(),
                stream_id: self.stream_id.clone(),
            })
    }

    pub fn actor(&self) -> Option<Actor> {
        self.metadata
            .get("actor")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
    }
}

/// An event ready to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: i32,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode event {event_type} v{schema_version}: {message}")]
pub struct DecodeError {
    pub event_type: String,
    pub schema_version: i32,
    pub message: String,
}

/// A stored event that does not decode is a row that does not deserialize, for queries that
/// fold events (`QueryResult`).
impl From<DecodeError> for diesel::result::Error {
    fn from(e: DecodeError) -> Self {
        diesel::result::Error::DeserializationError(Box::new(e))
    }
}

/// A context's event enum. It must serialize adjacently tagged
/// (`#[serde(tag = "type", content = "data")]`): the tag becomes the stored event type and the
/// content the payload.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug {
    /// The schema version written for new events of this type.
    fn schema_version(_event_type: &str) -> i32 {
        1
    }

    /// Turn a payload stored under an older schema version into the current shape.
    /// The default knows only version 1.
    fn upcast(event_type: &str, stored_version: i32, payload: Value) -> Result<Value, String> {
        if stored_version == Self::schema_version(event_type) {
            Ok(payload)
        } else {
            Err(format!("no upcaster from schema version {stored_version}"))
        }
    }

    fn encode(&self) -> NewEvent {
        let value = serde_json::to_value(self).expect("domain events serialize to JSON");
        let Value::Object(mut map) = value else {
            panic!("domain events must be adjacently tagged enums")
        };
        let event_type = match map.remove("type") {
            Some(Value::String(t)) => t,
            _ => panic!("domain events must carry a string `type` tag"),
        };
        let payload = map.remove("data").unwrap_or(Value::Null);
        NewEvent {
            schema_version: Self::schema_version(&event_type),
            event_type,
            payload,
        }
    }
}

pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: i32,
    payload: Value,
) -> Result<E, DecodeError> {
    let err = |message: String| DecodeError {
        event_type: event_type.to_owned(),
        schema_version,
        message,
    };
    let payload = E::upcast(event_type, schema_version, payload).map_err(err)?;
    let mut tagged = serde_json::Map::new();
    tagged.insert("type".into(), Value::String(event_type.to_owned()));
    if !payload.is_null() {
        tagged.insert("data".into(), payload);
    }
    serde_json::from_value(Value::Object(tagged)).map_err(|e| err(e.to_string()))
}

/// Decode a payload of the current schema version without copying it: the tag is offered first
/// and the payload borrowed, so serde reads the variant's fields straight from the JSON value
/// (a tagged map built from the payload would list `data` before `type` and make serde buffer
/// the whole content first: the replay of a rebuild spent most of its time there).
pub fn decode_current<E: DomainEvent>(
    event_type: &str,
    payload: &Value,
) -> Result<E, serde_json::Error> {
    E::deserialize(serde::de::value::MapAccessDeserializer::new(Tagged {
        event_type,
        data: (!payload.is_null()).then_some(payload),
        next: 0,
    }))
}

/// `{"type": event_type, "data": payload}` as a map, the tag first.
struct Tagged<'a> {
    event_type: &'a str,
    data: Option<&'a Value>,
    next: u8,
}

impl<'de> serde::de::MapAccess<'de> for Tagged<'de> {
    type Error = serde_json::Error;

    fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        use serde::de::value::BorrowedStrDeserializer;
        let key = match (self.next, self.data) {
            (0, _) => "type",
            (1, Some(_)) => "data",
            _ => return Ok(None),
        };
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.next += 1;
        match (self.next, self.data) {
            (1, _) => seed.deserialize(serde::de::value::BorrowedStrDeserializer::new(
                self.event_type,
            )),
            (_, Some(data)) => seed.deserialize(data),
            _ => Err(serde::de::Error::custom("no value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_of(stream_type: &str, stream_id: &str) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            stream_type: stream_type.into(),
            stream_id: stream_id.into(),
            stream_version: 1,
            event_type: "Happened".into(),
            schema_version: 1,
            payload: Value::Null,
            metadata: Value::Null,
            recorded_at: Utc::now(),
            transaction_id: 1,
        }
    }

    #[test]
    fn a_stream_id_that_is_not_a_uuid_is_reported_as_such() {
        let id = Uuid::new_v4();
        assert_eq!(event_of("user", &id.to_string()).stream_uuid().unwrap(), id);
        match event_of("user", "not-a-uuid").stream_uuid() {
            Err(ProjectionError::BadStreamId {
                stream_type,
                stream_id,
            }) => assert_eq!(
                (stream_type.as_str(), stream_id.as_str()),
                ("user", "not-a-uuid")
            ),
            other => panic!("expected BadStreamId, got {other:?}"),
        }
    }
}
