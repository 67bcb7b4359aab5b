use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::decider::Role;
use super::sessions::Viewer;
use crate::db::lower;
use crate::schema::users;
use crate::web::paging::{contains_pattern, Column, ListSpec, Paging};

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

/// The accounts page's list: sorted by these columns, 20 a page.
pub const ACCOUNT_LIST: ListSpec = ListSpec {
    columns: &[
        Column::asc("username"),
        Column::asc("name"),
        Column::asc("role"),
        Column::asc("status"),
        Column::desc("created"),
    ],
    per_page: 20,
};

/// One page of the accounts the viewer may see whose username or name contains `search` (any
/// letter case), and how many there are: an admin sees all, anyone else only themselves.
pub fn search_for_admin(
    conn: &mut PgConnection,
    viewer: &Viewer,
    search: &str,
    paging: &mut Paging,
) -> QueryResult<(Vec<User>, i64)> {
    let matching = || {
        let mut query = users::table.into_boxed();
        if viewer.role != Role::Admin {
            query = query.filter(users::id.eq(viewer.user_id));
        }
        if !search.trim().is_empty() {
            let pattern = contains_pattern(search);
            query = query.filter(
                lower(users::username)
                    .like(pattern.clone())
                    .or(lower(users::display_name).like(pattern)),
            );
        }
        query
    };
    let total: i64 = matching().count().get_result(conn)?;
    paging.clamp(total);
    let query = matching();
    // The username breaks ties: it is unique, so pages never overlap.
    let query = match (paging.sort, paging.desc) {
        ("name", false) => query.order((lower(users::display_name).asc(), users::username.asc())),
        ("name", true) => query.order((lower(users::display_name).desc(), users::username.asc())),
        ("role", false) => query.order((users::role.asc(), users::username.asc())),
        ("role", true) => query.order((users::role.desc(), users::username.asc())),
        ("status", false) => query.order((users::active.desc(), users::username.asc())),
        ("status", true) => query.order((users::active.asc(), users::username.asc())),
        ("created", false) => query.order((users::created_at.asc(), users::username.asc())),
        ("created", true) => query.order((users::created_at.desc(), users::username.asc())),
        (_, false) => query.order(users::username.asc()),
        (_, true) => query.order(users::username.desc()),
    };
    let rows = query
        .offset(paging.offset())
        .limit(paging.limit())
        .select(User::as_select())
        .load(conn)?;
    Ok((rows, total))
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
