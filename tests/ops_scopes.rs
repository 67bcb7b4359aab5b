//! The audit visibility hook: a context's rule grants a stream type and denies what the viewer
//! is not cleared for; the deny wins over every grant, and admins see everything.

use std::sync::Arc;

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Text};
use heyboss::accounts::{Role, Viewer};
use heyboss::es::store;
use heyboss::ops::audit::{visible_history, visible_to, OwnEvents};
use heyboss::ops::{AuditScope, EventPredicate, Registry};
use heyboss::schema::events;
use heyboss::testing::TestDatabase;

/// Analysts see signature streams, except those of groups they are not cleared for.
struct Signatures {
    cleared: Vec<String>,
}

impl AuditScope for Signatures {
    fn grant(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer
            .is(Role::Analyst)
            .then(|| Box::new(events::stream_type.eq("signature")) as EventPredicate)
    }
    fn deny(&self, viewer: &Viewer) -> Option<EventPredicate> {
        viewer.is(Role::Analyst).then(|| {
            Box::new(
                sql::<Bool>(
                    "(stream_type = 'signature' AND NOT COALESCE(payload ->> 'group' = ANY(",
                )
                .bind::<Array<Text>, _>(self.cleared.clone())
                .sql("), FALSE))"),
            ) as EventPredicate
        })
    }
}

fn viewer(role: Role) -> Viewer {
    Viewer {
        user_id: uuid::Uuid::new_v4(),
        username: "v".into(),
        display_name: "V".into(),
        role,
        csrf_token: String::new(),
        session_digest: String::new(),
        time_zone: None,
    }
}

fn signature(conn: &mut PgConnection, name: &str, group: &str) {
    let version = store::stream_version(conn, "signature", name).unwrap();
    store::append(
        conn,
        "signature",
        name,
        version,
        &[heyboss::es::NewEvent {
            event_type: "SignatureSet".into(),
            schema_version: 1,
            payload: serde_json::json!({ "group": group }),
        }],
        &serde_json::json!({"actor": {"kind": "cli"}}),
    )
    .unwrap();
}

fn visible_streams(
    conn: &mut PgConnection,
    v: &Viewer,
    scopes: &[Arc<dyn AuditScope>],
) -> Vec<String> {
    events::table
        .filter(visible_to(v, scopes))
        .order(events::position.asc())
        .select(events::stream_id)
        .load(conn)
        .unwrap()
}

#[test]
fn a_deny_rule_hides_what_the_viewer_is_not_cleared_for() {
    let db = TestDatabase::new();
    let mut conn = db.connect();
    signature(&mut conn, "eicar", "public");
    signature(&mut conn, "apt-x", "secret");
    signature(&mut conn, "weird", "public");
    // Reclassified: the latest event is secret, the first one public.
    signature(&mut conn, "weird", "secret");
    let registry = Registry::new()
        .audit_scope(OwnEvents)
        .audit_scope(Signatures {
            cleared: vec!["public".into()],
        });

    let analyst = viewer(Role::Analyst);
    assert_eq!(
        visible_streams(&mut conn, &analyst, &registry.audit_scopes),
        vec!["eicar", "weird"]
    );
    let history = visible_history(&mut conn, &analyst, &registry, "signature", "apt-x").unwrap();
    assert!(history.is_empty());
    let history = visible_history(&mut conn, &analyst, &registry, "signature", "weird").unwrap();
    assert_eq!(history.len(), 1);

    // A student is granted nothing here; an admin sees everything.
    assert!(visible_streams(&mut conn, &viewer(Role::Student), &registry.audit_scopes).is_empty());
    assert_eq!(
        visible_streams(&mut conn, &viewer(Role::Admin), &registry.audit_scopes).len(),
        4
    );
}
