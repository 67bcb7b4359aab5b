//! Server-side sessions. The cookie holds a random token; the table holds only its digest.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use serde::Serialize;
use uuid::Uuid;

use super::decider::Role;
use crate::schema::sessions;
use crate::secrets;
use crate::web::AppError;

pub const COOKIE: &str = "heyboss_session";
/// Sessions end after this long, whatever happens.
pub const LIFETIME_HOURS: i64 = 12;

/// The signed-in user on whose behalf a request runs. Every query of user data takes one.
#[derive(Debug, Clone, Serialize)]
pub struct Viewer {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub csrf_token: String,
    #[serde(skip)]
    pub session_digest: String,
    /// The zone the user chose for times (`TimeZoneChosen`); `None`: the campus default.
    #[serde(skip)]
    pub time_zone: Option<chrono_tz::Tz>,
}

impl Viewer {
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }

    /// Pages of one role: anyone else gets 403 with a message.
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        self.require_any(&[role])
    }

    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(AppError::Forbidden(format!(
                "This page is for {} accounts only.",
                names.join(" or ")
            )))
        }
    }
}

/// Start a session for a user; returns the cookie token.
pub fn create(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<String> {
    let token = secrets::random_token();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id_hash.eq(secrets::digest(&token)),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(secrets::random_token()),
            sessions::expires_at.eq(Utc::now() + Duration::hours(LIFETIME_HOURS)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The viewer behind a cookie token, if the session exists, has not expired and the user is active.
/// The first statement of every signed-in request: a `CALL` of the `request_viewer_proc`
/// procedure, which the server does not plan, and whose own plans are made once per connection
/// instead of for every request (why they cannot go stale: the migration of the function it
/// replaces, `2026-12-09-400000_request_viewer`; `2026-12-15-200000_request_viewer_by_call`).
pub fn load(conn: &mut PgConnection, token: &str) -> QueryResult<Option<Viewer>> {
    // Every column NULL when there is no such session, it expired or its user is inactive.
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
        viewer_id: Option<Uuid>,
        #[diesel(sql_type = Nullable<Text>)]
        viewer_username: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        viewer_display_name: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        viewer_role: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        viewer_csrf_token: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        viewer_time_zone: Option<String>,
    }
    let digest = secrets::digest(token);
    let row: Row = crate::prepared::prepared(
        "CALL request_viewer_proc($1, $2, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .bind::<Text, _>(&digest)
    .bind::<diesel::sql_types::Timestamptz, _>(Utc::now())
    .get_result(conn)?;
    let (Some(user_id), Some(username), Some(display_name), Some(role), Some(csrf_token)) = (
        row.viewer_id,
        row.viewer_username,
        row.viewer_display_name,
        row.viewer_role,
        row.viewer_csrf_token,
    ) else {
        return Ok(None);
    };
    Ok(Some(Viewer {
        user_id,
        username,
        display_name,
        role: Role::parse(&role).unwrap_or(Role::Student),
        csrf_token,
        session_digest: digest,
        time_zone: row.viewer_time_zone.and_then(|z| z.parse().ok()),
    }))
}

pub fn end(conn: &mut PgConnection, token: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(secrets::digest(token))).execute(conn)
}

/// End every session of a user (password reset, deactivation), optionally keeping one.
pub fn end_all(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep_digest: Option<&str>,
) -> QueryResult<usize> {
    let mut query = diesel::delete(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .into_boxed();
    if let Some(keep) = keep_digest {
        query = query.filter(sessions::id_hash.ne(keep));
    }
    query.execute(conn)
}

pub fn count_for(conn: &mut PgConnection, user_id: Uuid) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(Utc::now()))
        .count()
        .get_result(conn)
}
