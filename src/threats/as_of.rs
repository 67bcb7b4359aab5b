//! Threat pages as of a moment of the past (`?as_of=`), folded from the events recorded until
//! then, never read from the read models.
//!
//! Pages: a signature's and a threat session's.
//!
//! A signature's page as of then is its stream folded by the signature decider's `evolve`. Scope:
//! the viewer must see the signature now (the live page's rule) and must be cleared for the group
//! it had then, so a group change never shows an analyst what another group kept.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::decider::{Signature, SignatureState, RESTRICTED_GROUP};
use super::error::ThreatsError;
use super::events::{SensorEvent, SignatureEvent, SESSION_STREAM};
use super::queries::{self, File, HitRow, Session, SignatureRow};
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::es::{store, Decider, RecordedEvent};
use crate::ops::as_of::AsOf;
use crate::schema::threat_signatures;

/// The signature as it stood, with the events of its history up to then.
pub fn signature(
    conn: &mut PgConnection,
    viewer: &Viewer,
    name: &str,
    as_of: &AsOf,
) -> Result<(SignatureRow, Vec<RecordedEvent>), ThreatsError> {
    let now = queries::signature(conn, viewer, name)?;
    let history: Vec<RecordedEvent> = store::load_stream(conn, Signature::STREAM_TYPE, &now.name)?
        .into_iter()
        .filter(|e| e.recorded_at < as_of.until)
        .collect();
    // It did not exist yet: as if there were no such page.
    let last = history.last().ok_or(ThreatsError::NotFound)?;
    let mut state = SignatureState::default();
    for e in &history {
        let event: SignatureEvent = e.decode().map_err(diesel::result::Error::from)?;
        state = Signature::evolve(state, &event);
    }
    if !AnalystScope::of(conn, viewer)?.sees_group(&state.group) {
        return Err(ThreatsError::NotFound);
    }
    let row = SignatureRow {
        restricted: state.group == RESTRICTED_GROUP,
        name: now.name,
        rule_text: state.rule_text,
        group_name: state.group,
        default_score: state.default_score,
        retired: state.retired,
        version: last.stream_version,
        updated_at: last.recorded_at,
    };
    Ok((row, history))
}

/// A threat session's page as it stood: the session, its files and the hits the viewer may see,
/// folded from the session's stream up to then (the projections' rules: a rescore replaces the
/// hit's score; the latest score names its contributor). Scoped like the live page, by the
/// viewer's clearances now: a hit shows when its signature's group is held, a contributor naming
/// such a signature (in any case) shows as restricted.
pub fn session(
    conn: &mut PgConnection,
    viewer: &Viewer,
    id: &str,
    as_of: &AsOf,
) -> Result<(Session, Vec<File>, Vec<HitRow>), ThreatsError> {
    let scope = AnalystScope::of(conn, viewer)?;
    let history = store::load_stream(conn, SESSION_STREAM, id)?;
    let mut session: Option<Session> = None;
    let mut files: BTreeMap<String, File> = BTreeMap::new();
    // (file, integration, signature) -> (score, scored at)
    let mut hits: BTreeMap<(String, String, String), (i32, DateTime<Utc>)> = BTreeMap::new();
    for e in history.iter().filter(|e| e.recorded_at < as_of.until) {
        let event: SensorEvent = e.decode().map_err(diesel::result::Error::from)?;
        match &event {
            SensorEvent::SessionDiscovered {
                session_id,
                start_time,
                protocol,
                source_ip,
                destination_ip,
                source_port,
                destination_port,
            } => {
                session = Some(Session {
                    session_id: session_id.clone(),
                    start_time: *start_time,
                    protocol: protocol.clone(),
                    source_ip: source_ip.clone(),
                    destination_ip: destination_ip.clone(),
                    source_port: i32::from(*source_port),
                    destination_port: i32::from(*destination_port),
                    latest_score: None,
                    threat_contributor: None,
                    contributor_restricted: false,
                    file_count: 0,
                })
            }
            SensorEvent::SessionScored {
                threat_contributor,
                score,
                ..
            } => {
                if let Some(s) = session.as_mut() {
                    s.latest_score = Some(*score);
                    s.threat_contributor = Some(threat_contributor.clone());
                }
            }
            SensorEvent::FileDiscovered {
                file_id,
                session_id,
                md5,
                filename,
                file_type,
                size_bytes,
            } => {
                if let Some(s) = session.as_mut() {
                    s.file_count += 1;
                }
                files.insert(
                    file_id.clone(),
                    File {
                        file_id: file_id.clone(),
                        session_id: session_id.clone(),
                        md5: md5.clone(),
                        filename: filename.clone(),
                        file_type: file_type.clone(),
                        size_bytes: *size_bytes,
                    },
                );
            }
            SensorEvent::FileScored { score, .. }
            | SensorEvent::FileRescored {
                new_score: score, ..
            } => {
                if let Some((f, i, s)) = event.hit_key() {
                    hits.insert((f.into(), i.into(), s.into()), (*score, e.recorded_at));
                }
            }
        }
    }
    // Not discovered yet: as if there were no such session.
    let mut session = session.ok_or(ThreatsError::NotFound)?;
    // The signatures named, with their groups now (the clearance rule is about now).
    let groups: Vec<(String, String)> = threat_signatures::table
        .select((threat_signatures::name, threat_signatures::group_name))
        .load(conn)?;
    let sees = |name: &str, any_case: bool| {
        groups
            .iter()
            .find(|(n, _)| n == name || (any_case && n.eq_ignore_ascii_case(name)))
            .map(|(_, g)| scope.sees_group(g))
    };
    session.contributor_restricted = session
        .threat_contributor
        .as_deref()
        .is_some_and(|c| sees(c, true) == Some(false));
    if session.contributor_restricted {
        session.threat_contributor = None;
    }
    let mut rows: Vec<HitRow> = hits
        .into_iter()
        .filter(|((_, _, sig), _)| sees(sig, false) == Some(true))
        .filter_map(|((file_id, integration, signature), (score, scored_at))| {
            let f = files.get(&file_id)?;
            Some(HitRow {
                session_id: f.session_id.clone(),
                md5: f.md5.clone(),
                filename: f.filename.clone(),
                file_id,
                signature,
                integration,
                score,
                start_time: session.start_time,
                scored_at,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.file_id, -a.score, &a.integration, &a.signature).cmp(&(
            &b.file_id,
            -b.score,
            &b.integration,
            &b.signature,
        ))
    });
    Ok((session, files.into_values().collect(), rows))
}
