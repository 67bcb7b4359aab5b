//! heyboss-es: an event store on PostgreSQL with Diesel. An append-only log with expected
//! versions, pure deciders, a command executor (load, decide, append, inline projections: one
//! transaction) with idempotency keys bound to their command, projections rebuilt into shadow
//! tables and verified, and gap-safe catch-up subscribers. It knows nothing of any application:
//! contexts plug in through [`Decider`] and [`Projection`]. Diesel is re-exported, so that a user
//! builds projections against the same version.

pub use diesel;

pub mod db;
pub mod decider;
pub mod event;
pub mod executor;
pub mod partitions;
pub mod prepared;
pub mod projection;
pub mod schema;
pub mod shadow;
pub mod stats;
pub mod store;
pub mod subscriber;
pub mod upkeep;

pub use decider::Decider;
pub use event::{Actor, DomainEvent, Metadata, NewEvent, RecordedEvent};
pub use executor::{CommandContext, CommandError, CommandOutcome, EventStore};
pub use projection::{BulkReplay, Projection, Projections};
pub use store::StoreError;
pub use subscriber::Subscriber;
