//! The threat context's events in words, for histories, the audit log and replays
//! (`BoundedContext::describe`): "File scored 85 by virustotal" with the signature and engine
//! beside it, instead of the stored type name and JSON.

use crate::es::RecordedEvent;
use crate::ops::describe::EventDescription;
use crate::web::format;

use super::events::{
    ClearanceEvent, SensorAdminEvent, SensorEvent, SignatureEvent, TriageEvent, SESSION_STREAM,
};

/// The words for an event of one of this context's streams; `None` for anything else (or an
/// event that does not decode, which the generic reading then shows).
pub fn describe(event: &RecordedEvent) -> Option<EventDescription> {
    match event.stream_type.as_str() {
        SESSION_STREAM => event.decode::<SensorEvent>().ok().map(|e| sensor(&e)),
        "signature" => event.decode::<SignatureEvent>().ok().map(|e| signature(&e)),
        "clearance" => event.decode::<ClearanceEvent>().ok().map(|e| clearance(&e)),
        "sensor" => event
            .decode::<SensorAdminEvent>()
            .ok()
            .map(|e| sensor_admin(&e)),
        "threat_triage" => event.decode::<TriageEvent>().ok().map(|e| triage(&e)),
        _ => None,
    }
}

fn sensor(e: &SensorEvent) -> EventDescription {
    use SensorEvent as E;
    match e {
        E::SessionDiscovered {
            session_id,
            start_time,
            protocol,
            source_ip,
            destination_ip,
            source_port,
            destination_port,
        } => EventDescription::new(format!(
            "Session discovered: {protocol} from {source_ip}:{source_port} to {destination_ip}:{destination_port}"
        ))
        .field("Session", session_id)
        .field("Started", format::datetime(*start_time)),
        E::SessionScored {
            session_id,
            threat_contributor,
            score,
        } => EventDescription::new(format!("Session scored {score} by {threat_contributor}"))
            .field("Session", session_id),
        E::FileDiscovered {
            file_id,
            session_id,
            md5,
            filename,
            file_type,
            size_bytes,
        } => EventDescription::new(format!("File discovered: {filename}"))
            .field("Type", file_type)
            .field("Size", format::bytes(*size_bytes))
            .field("MD5", md5)
            .field("File", file_id)
            .field("Session", session_id),
        E::FileScored {
            file_id,
            session_id,
            integration,
            score,
            signature,
            engine_version,
        } => EventDescription::new(format!("File scored {score} by {integration}"))
            .field("Signature", signature)
            .field("Engine", engine_version.as_deref().unwrap_or("not recorded"))
            .field("File", file_id)
            .field("Session", session_id),
        E::FileRescored {
            file_id,
            session_id,
            integration,
            new_score,
            signature,
        } => EventDescription::new(format!("File rescored to {new_score} by {integration}"))
            .field("Signature", signature)
            .field("File", file_id)
            .field("Session", session_id),
    }
}

fn signature(e: &SignatureEvent) -> EventDescription {
    use SignatureEvent as E;
    match e {
        E::SignatureCreated {
            name,
            rule_text,
            group,
            default_score,
        } => EventDescription::new(format!(
            "Signature created in group {group}, default score {default_score}"
        ))
        .field("Name", name)
        .field("Rule", rule_text),
        E::SignatureRegisteredRestricted { name } => EventDescription::new(
            "Signature first seen in sensor data: restricted to admins until it is defined",
        )
        .field("Name", name),
        E::SignatureRevised {
            rule_text,
            group,
            default_score,
        } => EventDescription::new(format!(
            "Signature revised: group {group}, default score {default_score}"
        ))
        .field("Rule", rule_text),
        E::SignatureRetired {} => EventDescription::new("Signature retired"),
    }
}

fn clearance(e: &ClearanceEvent) -> EventDescription {
    match e {
        ClearanceEvent::ClearanceGranted { group } => {
            EventDescription::new(format!("Cleared for the group {group}"))
        }
        ClearanceEvent::ClearanceRevoked { group } => {
            EventDescription::new(format!("Clearance for the group {group} revoked"))
        }
    }
}

fn sensor_admin(e: &SensorAdminEvent) -> EventDescription {
    match e {
        SensorAdminEvent::SensorRegistered { name } => {
            EventDescription::new(format!("Sensor registered: {name}"))
        }
        SensorAdminEvent::SensorRevoked {} => {
            EventDescription::new("Sensor revoked: its token no longer works")
        }
    }
}

fn triage(e: &TriageEvent) -> EventDescription {
    let TriageEvent::ThreatTriaged {
        subject_kind,
        subject,
        status,
        note,
        signatures,
    } = e;
    let what = match subject_kind.as_str() {
        "hash" => "Hash",
        "session" => "Session",
        _ => "Subject",
    };
    let status = match status.as_str() {
        "false-positive" => "a false positive",
        "escalated" => "escalated",
        "triaged" => "triaged",
        other => other,
    };
    EventDescription::new(format!("{what} marked {status}"))
        .field(what, subject)
        .field("Note", note)
        .field("Signatures", signatures.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(d: &EventDescription) -> Vec<(&str, &str)> {
        d.fields
            .iter()
            .map(|f| (f.label.as_str(), f.value.as_str()))
            .collect()
    }

    #[test]
    fn a_score_reads_as_a_sentence_with_its_signature_and_engine() {
        let d = sensor(&SensorEvent::FileScored {
            file_id: "f1".into(),
            session_id: "s1".into(),
            integration: "virustotal".into(),
            score: 85,
            signature: "emotet".into(),
            engine_version: None,
        });
        assert_eq!(d.summary, "File scored 85 by virustotal");
        assert_eq!(
            labels(&d),
            [
                ("Signature", "emotet"),
                ("Engine", "not recorded"),
                ("File", "f1"),
                ("Session", "s1")
            ]
        );
    }

    #[test]
    fn a_discovered_file_shows_a_human_size_and_a_triage_its_status_in_words() {
        let d = sensor(&SensorEvent::FileDiscovered {
            file_id: "f1".into(),
            session_id: "s1".into(),
            md5: "d41d8cd98f00b204e9800998ecf8427e".into(),
            filename: "invoice.pdf".into(),
            file_type: "pdf".into(),
            size_bytes: 2_500_000,
        });
        assert_eq!(d.summary, "File discovered: invoice.pdf");
        assert!(labels(&d).contains(&("Size", format::bytes(2_500_000).as_str())));
        assert_ne!(format::bytes(2_500_000), "2500000");
        let t = triage(&TriageEvent::ThreatTriaged {
            subject_kind: "hash".into(),
            subject: "d41d8cd98f00b204e9800998ecf8427e".into(),
            status: "false-positive".into(),
            note: "known installer".into(),
            signatures: vec!["a".into(), "b".into()],
        });
        assert_eq!(t.summary, "Hash marked a false positive");
        assert!(labels(&t).contains(&("Signatures", "a, b")));
    }
}
