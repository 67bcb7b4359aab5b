use diesel::prelude::*;

use super::events::AccountEvent;
use crate::es::projection::ProjectionError;
use crate::es::{Projection, RecordedEvent};
use crate::schema::users;

/// The `users` table: one row per account, current role and status.
pub struct UsersProjection;

impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    fn handles(&self) -> &'static [&'static str] {
        AccountEvent::TYPES
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users"]
    }

    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let id = event.stream_uuid()?;
        let at = event.recorded_at;
        let row = users::table.find(id);
        match event.decode::<AccountEvent>()? {
            AccountEvent::UserRegistered {
                username,
                display_name,
                email,
                role,
            } => {
                diesel::insert_into(users::table)
                    .values((
                        users::id.eq(id),
                        users::username.eq(username),
                        users::display_name.eq(display_name),
                        users::email.eq(email),
                        users::role.eq(role.as_str()),
                        users::active.eq(true),
                        users::created_at.eq(at),
                        users::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            AccountEvent::RoleChanged { to, .. } => {
                diesel::update(row)
                    .set((users::role.eq(to.as_str()), users::updated_at.eq(at)))
                    .execute(conn)?;
            }
            AccountEvent::PasswordChanged { .. } => {
                diesel::update(row)
                    .set(users::updated_at.eq(at))
                    .execute(conn)?;
            }
            AccountEvent::UserDeactivated {} => {
                diesel::update(row)
                    .set((users::active.eq(false), users::updated_at.eq(at)))
                    .execute(conn)?;
            }
            AccountEvent::TimeZoneChosen { time_zone } => {
                diesel::update(row)
                    .set((users::time_zone.eq(time_zone), users::updated_at.eq(at)))
                    .execute(conn)?;
            }
            AccountEvent::UserReactivated {} => {
                diesel::update(row)
                    .set((users::active.eq(true), users::updated_at.eq(at)))
                    .execute(conn)?;
            }
            AccountEvent::EmailChanged { email } => {
                diesel::update(row)
                    .set((users::email.eq(email), users::updated_at.eq(at)))
                    .execute(conn)?;
            }
        }
        Ok(())
    }
}
