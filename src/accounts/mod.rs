//! Accounts: users with one role, argon2id credentials, sessions and login throttling.
//! Account changes are events on a `user` stream so the audit log shows who granted what.

pub mod decider;
pub mod events;
pub mod passwords;
pub mod projections;
pub mod queries;
pub mod routes;
pub mod service;
pub mod sessions;

pub use decider::{Account, AccountCommand, Role};
pub use events::AccountEvent;
pub use queries::User;
pub use routes::routes;
pub use service::{AccountError, NewAccount};
pub use sessions::Viewer;
