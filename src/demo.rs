//! Demo data for `serve --demo`: idempotent, so a restart adds nothing twice.

use diesel::{PgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::accounts::{queries, service, NewAccount};
use crate::es::{Actor, EventStore, Metadata};
use crate::web::AppState;

/// Every demo account signs in with this password.
pub const DEMO_PASSWORD: &str = "heyboss-demo";

/// (username, display name, role)
pub const DEMO_USERS: &[(&str, &str, &str)] = &[
    ("admin", "Avery Admin", "admin"),
    ("staff", "Sam Staff", "staff"),
    ("analyst", "Ana Analyst", "analyst"),
    ("student", "Stu Student", "student"),
];

pub fn seed(state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Two `serve --demo` started at once take turns: the second finds the data there. The lock
    // is held on a connection of its own, for the whole seed.
    let mut lock = state.pool.get()?;
    diesel::sql_query("SELECT pg_advisory_lock(7242014)").execute(&mut lock)?;
    let seeded = seed_unlocked(state);
    diesel::sql_query("SELECT pg_advisory_unlock(7242014)").execute(&mut lock)?;
    seeded
}

fn seed_unlocked(state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for context in crate::startup::contexts() {
        context.seed_demo(state)?;
    }
    tracing::info!("demo data ready: sign in as admin, staff, analyst or student with password {DEMO_PASSWORD:?}");
    Ok(())
}

/// The demo's four accounts, one per role (the accounts context's part of the demo).
pub fn seed_accounts(state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = state.pool.get()?;
    for (username, name, role) in DEMO_USERS {
        demo_user(&mut conn, &state.store, username, name, role)?;
    }
    Ok(())
}

/// The id of the demo account `username`, registered with the demo password unless it exists.
pub fn demo_user(
    conn: &mut PgConnection,
    store: &EventStore,
    username: &str,
    name: &str,
    role: &str,
) -> Result<Uuid, Box<dyn std::error::Error + Send + Sync>> {
    if let Some(u) = queries::find_by_username(conn, username)? {
        return Ok(u.id);
    }
    let account = NewAccount::parse(
        username,
        name,
        &format!("{username}@heyboss.example"),
        role,
        DEMO_PASSWORD,
    )?;
    Ok(service::register(
        conn,
        store,
        Metadata::new(Actor::Cli),
        account,
        |_, _| Ok(()),
    )?)
}
