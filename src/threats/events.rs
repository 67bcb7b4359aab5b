//! Facts of the threat-reports context: sensor events (one `threat_session` stream per session),
//! signatures (one `signature` stream per name), clearances (one `clearance` stream per analyst)
//! and sensors (one `sensor` stream per sensor).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::es::DomainEvent;

pub const SESSION_STREAM: &str = "threat_session";

/// What sensors report, exactly as the API accepts it (`data` of each posted event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SensorEvent {
    SessionDiscovered {
        session_id: String,
        start_time: DateTime<Utc>,
        protocol: String,
        source_ip: String,
        destination_ip: String,
        source_port: u16,
        destination_port: u16,
    },
    SessionScored {
        session_id: String,
        threat_contributor: String,
        score: i32,
    },
    FileDiscovered {
        file_id: String,
        session_id: String,
        md5: String,
        filename: String,
        file_type: String,
        size_bytes: i64,
    },
    /// Schema version 2: `engine_version`, the version of the engine (the integration's
    /// program and rules) that produced the score, so a score can be read against the engine
    /// that gave it; `null` when the sensor did not report it (sensors may leave it out), and in
    /// every event stored at version 1, which had no such field ([`SensorEvent::upcast`]).
    FileScored {
        file_id: String,
        session_id: String,
        integration: String,
        score: i32,
        signature: String,
        #[serde(default)]
        engine_version: Option<String>,
    },
    FileRescored {
        file_id: String,
        session_id: String,
        integration: String,
        new_score: i32,
        signature: String,
    },
}

impl DomainEvent for SensorEvent {
    fn schema_version(event_type: &str) -> i32 {
        match event_type {
            "FileScored" => 2,
            _ => 1,
        }
    }

    /// `FileScored` 1 -> 2: version 1 had no engine version; it is unknown (`null`).
    fn upcast(event_type: &str, stored_version: i32, mut payload: Value) -> Result<Value, String> {
        match (event_type, stored_version) {
            ("FileScored", 1) => {
                let fields = payload
                    .as_object_mut()
                    .ok_or("a FileScored payload is an object")?;
                fields.insert("engine_version".into(), Value::Null);
                Ok(payload)
            }
            (t, v) if v == Self::schema_version(t) => Ok(payload),
            (t, v) => Err(format!("no upcaster of {t} from schema version {v}")),
        }
    }
}

impl SensorEvent {
    /// The (file, integration, signature) hit a FileScored or FileRescored event is about.
    pub fn hit_key(&self) -> Option<(&str, &str, &str)> {
        match self {
            SensorEvent::FileScored {
                file_id,
                integration,
                signature,
                ..
            }
            | SensorEvent::FileRescored {
                file_id,
                integration,
                signature,
                ..
            } => Some((file_id.as_str(), integration.as_str(), signature.as_str())),
            _ => None,
        }
    }

    pub const TYPES: &'static [&'static str] = &[
        "SessionDiscovered",
        "SessionScored",
        "FileDiscovered",
        "FileScored",
        "FileRescored",
    ];

    pub fn session_id(&self) -> &str {
        match self {
            SensorEvent::SessionDiscovered { session_id, .. }
            | SensorEvent::SessionScored { session_id, .. }
            | SensorEvent::FileDiscovered { session_id, .. }
            | SensorEvent::FileScored { session_id, .. }
            | SensorEvent::FileRescored { session_id, .. } => session_id,
        }
    }
}

/// Changes to a signature, by admins (or its registration as restricted by the sensor API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SignatureEvent {
    SignatureCreated {
        name: String,
        rule_text: String,
        group: String,
        default_score: i32,
    },
    /// A sensor reported a name no admin had created: visible to admins only until classified.
    SignatureRegisteredRestricted {
        name: String,
    },
    SignatureRevised {
        rule_text: String,
        group: String,
        default_score: i32,
    },
    SignatureRetired {},
}

impl DomainEvent for SignatureEvent {}

impl SignatureEvent {
    pub const TYPES: &'static [&'static str] = &[
        "SignatureCreated",
        "SignatureRegisteredRestricted",
        "SignatureRevised",
        "SignatureRetired",
    ];
}

/// An analyst's clearances (visibility groups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum ClearanceEvent {
    ClearanceGranted { group: String },
    ClearanceRevoked { group: String },
}

impl DomainEvent for ClearanceEvent {}

impl ClearanceEvent {
    pub const TYPES: &'static [&'static str] = &["ClearanceGranted", "ClearanceRevoked"];
}

/// A sensor's registration and revocation. Its token is never in the log (only a digest, in
/// `sensor_tokens`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SensorAdminEvent {
    SensorRegistered { name: String },
    SensorRevoked {},
}

impl DomainEvent for SensorAdminEvent {}

impl SensorAdminEvent {
    pub const TYPES: &'static [&'static str] = &["SensorRegistered", "SensorRevoked"];
}

/// An analyst's triage of a hash or a session: one `threat_triage` stream per subject
/// (`hash:<md5>`, `session:<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TriageEvent {
    ThreatTriaged {
        /// `hash` or `session`.
        subject_kind: String,
        subject: String,
        /// `triaged`, `false-positive` or `escalated`.
        status: String,
        note: String,
        /// The signatures of the hits of the subject that the analyst could see: what the note
        /// is about, and who may read it (only viewers who may see all of them).
        signatures: Vec<String>,
    },
}

impl DomainEvent for TriageEvent {}

impl TriageEvent {
    pub const TYPES: &'static [&'static str] = &["ThreatTriaged"];
}
