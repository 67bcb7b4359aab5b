//! Threat reports: sensors post events over a JSON API; analysts read top-threat reports built by
//! projections, each seeing only hits of signatures in groups they are cleared for.

pub mod api;
pub mod audit;
pub mod decider;
pub mod demo;
pub mod events;
pub mod ingest;
pub mod projections;
pub mod queries;
pub mod routes;
pub mod service;
pub mod simulate;

pub use routes::routes;

use crate::es::Projections;

/// The context's projections, in the order they must run (hits read sessions and files).
pub fn projections(p: Projections) -> Projections {
    p.with(projections::SensorsProjection)
        .with(projections::SignaturesProjection)
        .with(projections::ClearancesProjection)
        .with(projections::SessionsProjection)
        .with(projections::HitsProjection)
}

/// `urlencode` for Tera (its builtin is not compiled in): percent-encodes a path or query part.
pub fn register_filters(tera: &mut tera::Tera) {
    tera.register_filter(
        "urlencode",
        |value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>| {
            let s = match value {
                tera::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let encoded: String = s
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            Ok(tera::Value::String(encoded))
        },
    );
}
