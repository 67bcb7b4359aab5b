//! What an analyst may see of the threat streams in the audit log and on history tabs: the
//! history of the signatures they are cleared for, and the sensor events of sessions, except hits
//! (FileScored, FileRescored) of signatures outside their clearances and session scores whose
//! threat contributor names such a signature. Admins see everything (the
//! audit log's own rule); other roles are granted nothing here.

use diesel::dsl::sql;
use diesel::sql_types::{Bool, Uuid as SqlUuid};

use super::events::SESSION_STREAM;
use crate::accounts::{Role, Viewer};
use crate::ops::{AuditScope, EventPredicate};

/// The signatures whose group the viewer holds now, as a SQL set (`$1` = the viewer's id).
const VISIBLE_SIGNATURES: &str = "(SELECT s.name FROM threat_signatures s JOIN threat_clearances c ON c.group_name = s.group_name WHERE c.user_id = ";

pub struct AnalystThreatScope;

impl AuditScope for AnalystThreatScope {
    fn grant(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer.is(Role::Analyst).then(|| {
            Box::new(
                sql::<Bool>(&format!(
                    "(stream_type = 'signature' AND stream_id IN {VISIBLE_SIGNATURES}"
                ))
                .bind::<SqlUuid, _>(viewer.user_id)
                .sql(&format!(")) OR stream_type = '{SESSION_STREAM}'")),
            ) as EventPredicate
        })
    }

    fn deny(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer.is(Role::Analyst).then(|| {
            Box::new(
                sql::<Bool>(&format!(
                    "((event_type IN ('FileScored', 'FileRescored') AND NOT COALESCE(payload ->> 'signature' IN {VISIBLE_SIGNATURES}"
                ))
                .bind::<SqlUuid, _>(viewer.user_id)
                .sql("), FALSE))")
                // A session scored by a signature (by name, in any case) of a group not held:
                // the same rule as the sessions pages, which show its contributor as restricted.
                .sql(
                    " OR (event_type = 'SessionScored' AND EXISTS (SELECT 1 FROM threat_signatures s \
                     WHERE lower(s.name) = lower(payload ->> 'threat_contributor') AND NOT EXISTS \
                     (SELECT 1 FROM threat_clearances c WHERE c.group_name = s.group_name AND c.user_id = ",
                )
                .bind::<SqlUuid, _>(viewer.user_id)
                .sql("))))"),
            ) as EventPredicate
        })
    }
}
