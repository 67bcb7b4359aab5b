//! What an analyst may see of the threat streams in the audit log and on history tabs: the
//! history of the signatures they are cleared for, and the sensor events of sessions, except hits
//! (FileScored, FileRescored) of signatures outside their clearances and session scores whose
//! threat contributor names such a signature. Admins see everything (the
//! audit log's own rule); other roles are granted nothing here.

use diesel::dsl::not;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable};
use uuid::Uuid;

use super::decider::Signature;
use super::events::SESSION_STREAM;
use crate::accounts::{Role, Viewer};
use crate::db::lower;
use crate::es::Decider;
use crate::ops::{AuditScope, EventPredicate};
use crate::schema::{events, threat_clearances, threat_signatures};

// `x IN (subquery)` is NULL when `x` is (an event without the payload field); a deny predicate must
// be true or false.
diesel::define_sql_function!(fn coalesce(x: Nullable<Bool>, otherwise: Bool) -> Bool);

/// The names of the signatures whose group the viewer holds now.
#[diesel::dsl::auto_type]
fn cleared_signatures(viewer: Uuid) -> _ {
    threat_signatures::table
        .inner_join(
            threat_clearances::table
                .on(threat_clearances::group_name.eq(threat_signatures::group_name)),
        )
        .filter(threat_clearances::user_id.eq(viewer))
        .select(threat_signatures::name)
}

/// The groups the viewer holds now.
#[diesel::dsl::auto_type]
fn held_groups(viewer: Uuid) -> _ {
    threat_clearances::table
        .filter(threat_clearances::user_id.eq(viewer))
        .select(threat_clearances::group_name)
}

/// The lower-cased names of the signatures whose group the viewer does not hold.
#[diesel::dsl::auto_type]
fn uncleared_signatures_lowercase(viewer: Uuid) -> _ {
    let held: held_groups = held_groups(viewer);
    threat_signatures::table
        .filter(threat_signatures::group_name.ne_all(held))
        .select(lower(threat_signatures::name))
}

pub struct AnalystThreatScope;

impl AuditScope for AnalystThreatScope {
    fn grant(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer.is(Role::Analyst).then(|| {
            Box::new(
                events::stream_type
                    .eq(Signature::STREAM_TYPE)
                    .and(events::stream_id.eq_any(cleared_signatures(viewer.user_id)))
                    .or(events::stream_type.eq(SESSION_STREAM)),
            ) as EventPredicate
        })
    }

    fn deny(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer.is(Role::Analyst).then(|| {
            let hit_of_uncleared_signature = events::event_type
                .eq_any(["FileScored", "FileRescored"])
                .and(not(coalesce(
                    events::payload
                        .retrieve_as_text("signature")
                        .eq_any(cleared_signatures(viewer.user_id))
                        .nullable(),
                    false,
                )));
            // A session scored by a signature (by name, in any case) of a group not held: the same
            // rule as the sessions pages, which show its contributor as restricted.
            let scored_by_uncleared_signature =
                events::event_type.eq("SessionScored").and(coalesce(
                    lower(events::payload.retrieve_as_text("threat_contributor"))
                        .eq_any(uncleared_signatures_lowercase(viewer.user_id))
                        .nullable(),
                    false,
                ));
            Box::new(hit_of_uncleared_signature.or(scored_by_uncleared_signature)) as EventPredicate
        })
    }
}
