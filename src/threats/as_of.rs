//! Threat pages as of a moment of the past (`?as_of=`), folded from the events recorded until
//! then, never read from the read models.
//!
//! A signature's page as of then is its stream folded by the signature decider's `evolve`. Scope:
//! the viewer must see the signature now (the live page's rule) and must be cleared for the group
//! it had then, so a group change never shows an analyst what another group kept.

use diesel::prelude::*;

use super::decider::{Signature, SignatureState, RESTRICTED_GROUP};
use super::error::ThreatsError;
use super::events::SignatureEvent;
use super::queries::{self, SignatureRow};
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::es::{store, Decider, RecordedEvent};
use crate::ops::as_of::AsOf;

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
