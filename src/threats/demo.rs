//! Demo data for `serve --demo`: signatures in a few groups, the demo analyst cleared for some,
//! a sensor, and a stream of simulated sensor events ingested through the same path as the API.

use diesel::prelude::*;

use super::simulate::{Generator, DEMO_SIGNATURES};
use super::{ingest, service};
use crate::es::{Actor, CommandContext, Metadata};
use crate::schema::threat_sessions;
use crate::web::AppState;

pub fn seed(state: &AppState) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = state.pool.get()?;
    let existing: i64 = threat_sessions::table.count().get_result(&mut conn)?;
    if existing > 0 {
        return Ok(());
    }
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    for (name, group) in DEMO_SIGNATURES {
        service::set_signature(
            &mut conn,
            &state.store,
            &ctx,
            name,
            group,
            Some(60),
            Some(&format!("alert any any -> any any (msg:\"{name}\";)")),
        )?;
    }
    for group in ["malware", "phishing"] {
        // Ignore "already holds" on a re-run.
        let _ = service::change_clearance(&mut conn, &state.store, &ctx, "analyst", group, true);
    }
    let (sensor_id, _token) = service::create_sensor(&mut conn, &state.store, &ctx, "demo-sensor")?;
    let mut names: Vec<String> = DEMO_SIGNATURES.iter().map(|(n, _)| n.to_string()).collect();
    // One name no admin created: it arrives restricted (admins only).
    names.push("ZeroDay-Unclassified".into());
    let mut generator = Generator::new(42, names, 300);
    for _ in 0..6 {
        let body = serde_json::json!({"events": generator.batch(500)}).to_string();
        let parsed = ingest::parse_body(body.as_bytes()).map_err(|e| e.to_string())?;
        let meta = ingest::sensor_metadata(sensor_id, None);
        ingest::ingest(&mut conn, &state.store, &meta, &parsed).map_err(|e| format!("{e:?}"))?;
    }
    tracing::info!(
        "threat demo data ready: 3000 sensor events, analyst cleared for malware and phishing"
    );
    Ok(())
}
