//! The generic event store: append-only log, deciders, the command executor and projections.
//! It knows nothing of any bounded context; contexts plug in through [`Decider`] and [`Projection`].

pub mod decider;
pub mod event;
pub mod executor;
pub mod projection;
pub mod shadow;
pub mod stats;
pub mod store;
pub mod subscriber;

pub use decider::Decider;
pub use event::{Actor, DomainEvent, Metadata, NewEvent, RecordedEvent};
pub use executor::{CommandContext, CommandError, CommandOutcome, EventStore};
pub use projection::{BulkReplay, Projection, Projections};
pub use store::StoreError;
pub use subscriber::Subscriber;
