//! Threat pages as of a moment of the past (`?as_of=`), folded from the events recorded until
//! then, never read from the read models.
//!
//! Pages: a signature's, a threat session's and the sessions list.
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
use super::filters::{Filters, Key};
use super::queries::{
    self, File, HitRow, Session, SessionFilter, SessionRow, SessionsPage, SignatureRow, TimeRange,
};
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::es::{store, Decider, RecordedEvent};
use crate::ops::as_of::AsOf;
use crate::schema::threat_signatures;
use crate::web::paging::Paging;

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

/// The sessions list as it stood: every session discovered before then, with its latest score
/// and threat contributor and its file count then (the sessions projection's rules, folded in
/// one statement over the log up to then), filtered, sorted and paged as the live list is.
/// Scoped like the live list: a contributor naming a signature outside the viewer's clearances
/// now is withheld ("restricted").
#[allow(clippy::too_many_arguments)] // which sessions (filters, range, moment), which page
pub fn sessions(
    conn: &mut PgConnection,
    viewer: &Viewer,
    filter: &SessionFilter,
    filters: &Filters,
    range: &TimeRange,
    sorted: &Paging,
    as_of: &AsOf,
) -> Result<SessionsPage, ThreatsError> {
    // The past list folds sessions from their own events: their protocol and addresses are
    // there, their files' hashes, types, signatures and sensors are not.
    if !filters.only(&[Key::Protocol, Key::Ip]) {
        return Err(ThreatsError::BadFilter(
            "The sessions list as of a past moment filters by protocol and IP only: remove the other filters or go back to now.".into(),
        ));
    }
    let scope = AnalystScope::of(conn, viewer)?;
    let min = filter.min()?;
    let protocols = filters.of(Key::Protocol);
    let ips = filters.of(Key::Ip);
    let mut rows: Vec<SessionRow> = diesel::sql_query(include_str!("sql/sessions_as_of.sql"))
        .bind::<diesel::sql_types::Text, _>(SESSION_STREAM)
        .bind::<diesel::sql_types::Timestamptz, _>(as_of.until)
        .load(conn)?;
    rows.retain(|r| {
        (protocols.is_empty() || protocols.contains(&r.protocol))
            && (ips.is_empty() || ips.contains(&r.source_ip) || ips.contains(&r.destination_ip))
            && min.is_none_or(|m| r.latest_score.is_some_and(|s| s >= m))
            && range.from.is_none_or(|f| r.start_time >= f)
            && range.to.is_none_or(|t| r.start_time < t)
    });
    rows.sort_by(|a, b| order(sorted, a, b).then_with(|| a.session_id.cmp(&b.session_id)));
    let total = rows.len() as i64;
    let start = usize::try_from(sorted.offset()).unwrap_or(usize::MAX);
    let page: Vec<SessionRow> = rows
        .into_iter()
        .skip(start)
        .take(usize::try_from(sorted.limit()).unwrap_or(0))
        .collect();
    Ok(SessionsPage {
        sessions: queries::scoped_sessions(conn, &scope, page)?,
        total,
    })
}

/// The live list's order (`queries::sessions`), before its last key (the session id).
fn order(sorted: &Paging, a: &SessionRow, b: &SessionRow) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let newest = |a: &SessionRow, b: &SessionRow| b.start_time.cmp(&a.start_time);
    let dir = |o: Ordering| if sorted.desc { o.reverse() } else { o };
    match sorted.sort {
        "session_id" => dir(a.session_id.cmp(&b.session_id)),
        "protocol" => dir(a.protocol.cmp(&b.protocol)).then_with(|| newest(a, b)),
        // Unscored last when descending, first when ascending (None sorts before Some).
        "latest_score" => dir(a.latest_score.cmp(&b.latest_score)).then_with(|| newest(a, b)),
        "file_count" => dir(a.file_count.cmp(&b.file_count)).then_with(|| newest(a, b)),
        "source_ip" => {
            dir((&a.source_ip, &a.destination_ip).cmp(&(&b.source_ip, &b.destination_ip)))
                .then_with(|| newest(a, b))
        }
        _ => dir(a.start_time.cmp(&b.start_time)),
    }
}
