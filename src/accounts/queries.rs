use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::decider::Role;
use super::sessions::Viewer;
use crate::db::lower;
use crate::schema::users;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub role: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Student)
    }
}

/// For sign-in and the CLI: not scoped, since no viewer exists yet.
pub fn find_by_username(conn: &mut PgConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(lower(users::username).eq(username.to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn username_taken(conn: &mut PgConnection, username: &str) -> QueryResult<bool> {
    find_by_username(conn, username).map(|u| u.is_some())
}

/// Every account the viewer may see, for the admins' accounts page: an admin sees all, anyone
/// else only themselves.
pub fn list_for_admin(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<User>> {
    let mut query = users::table
        .order(users::username.asc())
        .select(User::as_select())
        .into_boxed();
    if viewer.role != Role::Admin {
        query = query.filter(users::id.eq(viewer.user_id));
    }
    query.load(conn)
}

/// One account as the viewer may see it: admins see any, others only themselves (anyone else's
/// is not found).
pub fn get(conn: &mut PgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<User> {
    if viewer.role != Role::Admin && viewer.user_id != id {
        return Err(diesel::NotFound);
    }
    users::table.find(id).select(User::as_select()).first(conn)
}

/// Display names of users by id, for timelines that show who did what.
pub fn display_names(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<std::collections::HashMap<Uuid, String>> {
    Ok(users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::display_name))
        .load::<(Uuid, String)>(conn)?
        .into_iter()
        .collect())
}
