//! heyboss: event-sourced enrollment, scholarships and threat reports.
//!
//! Commands become events through pure deciders (`es::Decider`), events are appended to one
//! PostgreSQL event store (`es`), projections update read models in the same transaction, and
//! pages (`web`) show each user only what they may see.

pub mod accounts;
pub mod cli;
pub mod context;
pub mod db;
pub mod demo;
pub mod enrollment;
pub mod es;
pub mod ops;
pub mod prepared;
pub mod schema;
pub mod scholarships;
pub mod secrets;
pub mod startup;
pub mod telemetry;
pub mod testing;
pub mod text;
pub mod threats;
pub mod web;

/// The sensor ingest allocates and frees a JSON tree, typed events and report keys for every event
/// of a batch; glibc's allocator took about 30% of the application's CPU there (`perf`). Declared in
/// the library so that the binary, the tests and the benchmarks all run on it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
