//! `cargo bench --bench ingest`: sensor events per second through the real HTTP API in batches
//! of 500, with every inline projection, at 100,000 and 1,000,000 events (HEYBOSS_BENCH_SCALE
//! scales both), against a baseline in the same run: the same API with one event per request.

use std::time::Instant;

use heyboss::es::{Actor, CommandContext, Metadata};
use heyboss::testing::TestApp;
use heyboss::threats::{service, simulate};

fn clients() -> u64 {
    std::env::var("HEYBOSS_BENCH_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// Post `total` events from CLIENTS concurrent sensors-clients; returns events per second.
fn run(total: u64, batch: usize) -> f64 {
    let app = TestApp::spawn_with(|s| s.pool_size = 8);
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx = CommandContext::new(Metadata::new(Actor::Cli));
        for (name, group) in simulate::DEMO_SIGNATURES {
            service::set_signature(&mut conn, &app.state.store, &ctx, name, group, None, None)
                .unwrap();
        }
        service::create_sensor(&mut conn, &app.state.store, &ctx, "bench")
            .unwrap()
            .1
    };
    let names: Vec<String> = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let started = Instant::now();
    let clients = clients();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (base, token, names) = (app.address.clone(), token.clone(), names.clone());
            std::thread::spawn(move || {
                let mut generator = simulate::Generator::new(1000 + i, names, 50_000);
                simulate::run(&base, &token, &mut generator, total / clients, batch, 0).unwrap()
            })
        })
        .collect();
    let events: u64 = handles.into_iter().map(|h| h.join().unwrap().events).sum();
    let seconds = started.elapsed().as_secs_f64();
    let stored = common_count(&app);
    assert_eq!(
        stored as u64,
        events + simulate::DEMO_SIGNATURES.len() as u64 + 1,
        "every event stored once"
    );
    events as f64 / seconds
}

fn common_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.state.pool.get().unwrap();
    heyboss::schema::events::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

fn main() {
    let scale: f64 = std::env::var("HEYBOSS_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    println!("cargo bench --bench ingest   ({} concurrent clients, keep-alive HTTP/1.1, all inline projections)", clients());
    let baseline_events = (4_000.0 * scale.min(1.0)).max(400.0) as u64;
    let baseline = run(baseline_events, 1);
    println!("baseline: {baseline_events} events, 1 event per request: {baseline:>9.0} events/s");
    for size in [100_000u64, 1_000_000] {
        let n = ((size as f64 * scale) as u64).max(clients() * 500);
        let rate = run(n, 500);
        println!(
            "{n:>9} events, batches of 500:      {rate:>9.0} events/s  ({:.1}x the baseline; goal 20,000/s: {})",
            rate / baseline,
            if rate >= 20_000.0 { "met" } else { "NOT met" }
        );
    }
}
