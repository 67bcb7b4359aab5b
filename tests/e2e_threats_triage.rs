//! Triage, live reports and the signature and rescans pages in a real headless Chromium: the
//! triage form swaps its panel in place; auto-refresh polls the report, which gains the sensor's
//! new row without a reload and counts new hits in each analyst's scope; the score chart and the
//! rescans report fit a 390 px phone. Every page is checked for console errors and axe violations.
//!
//! `cargo nextest run --run-ignored all -E 'binary(=e2e_threats_triage)'`

mod common;
mod journeys;
mod webdriver;

use common::TestApp;
use journeys::{
    count, create_account, htmx_submit, overflowing_elements, sign_in, text_of, wait_until,
    wait_until_idle, Health,
};
use serde_json::{json, Value};
use webdriver::Browser;

const MD5_X: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

fn post(app: &TestApp, token: &str, events: Vec<Value>) {
    let res = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .expect("the sensor's batch is accepted");
    assert_eq!(res.status(), 200);
}

/// A session with one file of md5 `md5` hit by each of `signatures`.
fn file(session: &str, file: &str, md5: &str, signatures: &[&str]) -> Vec<Value> {
    let now = chrono::Utc::now().to_rfc3339();
    let mut events = vec![
        ev(
            "SessionDiscovered",
            json!({"session_id": session, "start_time": now, "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 4431, "destination_port": 443}),
        ),
        ev(
            "FileDiscovered",
            json!({"file_id": file, "session_id": session, "md5": md5, "filename": format!("{file}.exe"), "file_type": "pe", "size_bytes": 1000}),
        ),
    ];
    for s in signatures {
        events.push(ev("FileScored", json!({"file_id": file, "session_id": session, "integration": "yara", "score": 60, "signature": s})));
    }
    events
}

#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn analysts_triage_in_place_watch_new_hits_arrive_and_read_history_on_a_phone() {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::threats::service;
    let app = TestApp::spawn();
    let admin_id = create_account(&app, "root", "Ada Admin", "admin");
    create_account(&app, "ana", "Ana Analyst", "analyst");
    create_account(&app, "bob", "Bob Analyst", "analyst");
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let cli = CommandContext::new(Metadata::new(Actor::Cli));
        let s = &app.state.store;
        service::set_signature(&mut conn, s, &cli, "sig-a", "alpha", Some(40), None).unwrap();
        service::set_signature(&mut conn, s, &cli, "sig-b", "beta", Some(50), None).unwrap();
        let ada = CommandContext::new(Metadata::new(Actor::User(admin_id)));
        service::set_signature(&mut conn, s, &ada, "sig-a", "alpha", Some(70), None).unwrap();
        service::change_clearance(&mut conn, s, &cli, "ana", "alpha", true).unwrap();
        service::change_clearance(&mut conn, s, &cli, "bob", "beta", true).unwrap();
        service::create_sensor(&mut conn, s, &cli, "edge")
            .unwrap()
            .1
    };
    post(&app, &token, file("s1", "x", MD5_X, &["sig-a", "sig-b"]));

    let mut health = Health::new();
    let ana = Browser::start();
    let bob = Browser::start();
    sign_in(&ana, &app, "ana");
    sign_in(&bob, &app, "bob");

    // --- Triage through HTMX: the panel is swapped in place, with the note in its history.
    ana.goto(&app.url(&format!("/threats/hashes/{MD5_X}")));
    health.page(&ana);
    ana.click(&ana.find("#triage input[value='escalated']"));
    ana.fill("#triage-note", "Beacon to a known C2; sent to IR.");
    htmx_submit(
        &ana,
        "#triage button[type=submit]",
        "Marked hash: Escalated.",
    );
    assert_eq!(
        text_of(&ana, ".triage-history .triage-note"),
        "Beacon to a known C2; sent to IR."
    );
    health.quiet(&ana);
    health.audit_now(&ana);
    // An empty note is refused in place, with the message.
    ana.execute(
        "document.getElementById('triage-note').removeAttribute('required');",
        json!([]),
    );
    ana.click(&ana.find("#triage button[type=submit]"));
    ana.wait_for_text("Write a note");
    wait_until_idle(&ana);
    health.refused(&ana, 422);

    // The badge on ana's report; bob (who sees x through sig-b) reads no mark of it.
    ana.goto(&app.url("/threats/top/hash"));
    health.page(&ana);
    assert_eq!(text_of(&ana, "#report .triage-badge"), "Escalated");
    bob.goto(&app.url(&format!("/threats/hashes/{MD5_X}")));
    health.page(&bob);
    assert!(!bob.page_text().contains("Beacon to a known C2"));

    // --- Live: turned on in place, the report polls itself and counts new hits in scope.
    for b in [&ana, &bob] {
        b.goto(&app.url("/threats/top/hash"));
        b.find("#report");
        b.mark_page();
        b.click(&b.find("#live a"));
        b.wait_for_text("0 new hits since you opened this page.");
        assert!(b.current_url().contains("live=1"), "{}", b.current_url());
        health.quiet(b);
    }
    let mut events = file(
        "s2",
        "z1",
        "cccccccccccccccccccccccccccccccc",
        &["sig-a", "sig-b"],
    );
    events.extend(file(
        "s3",
        "z2",
        "dddddddddddddddddddddddddddddddd",
        &["sig-b"],
    ));
    post(&app, &token, events);
    // Within a poll or two (every 5 s), each report gains its rows without a reload.
    for (b, expected, rows) in [(&ana, "1 new hit since", 2), (&bob, "2 new hits since", 3)] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !b.page_text().contains(expected) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {expected:?} on the live report"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert_eq!(count(b, "#report tbody tr"), rows);
        assert!(!b.page_was_reloaded(), "the live report reloaded the page");
        health.quiet(b);
    }
    // The page's own form keeps it on (and the count), and the address bar says so again.
    ana.click(&ana.find("form[hx-get] button[type=submit]"));
    wait_until_idle(&ana);
    assert!(ana.page_text().contains("1 new hit since"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !ana.current_url().contains("live=1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the poll puts live=1 back in the URL"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Turned off: no more polling element.
    ana.click(&ana.find("#live a"));
    wait_until("auto-refresh is off", || {
        ana.page_text().contains("Turn auto-refresh on")
    });
    assert_eq!(count(&ana, "#live[hx-trigger]"), 0);

    // --- On a phone: the signature's score chart and revisions, and the rescans report, fit.
    post(
        &app,
        &token,
        vec![ev(
            "FileRescored",
            json!({"file_id": "x", "session_id": "s1", "integration": "yara", "new_score": 95, "signature": "sig-a"}),
        )],
    );
    ana.set_window_size(390, 844);
    ana.goto(&app.url("/threats/signatures/sig-a"));
    health.page(&ana);
    assert!(ana
        .page_text()
        .contains("Score raised from 40 to 70 by Ada Admin,"));
    let chart = ana.execute(
        "const svg = document.querySelector('svg.score-chart').getBoundingClientRect();
         const label = document.querySelector('svg.score-chart .score-axis').getBoundingClientRect();
         return [svg.right, label.height];",
        json!([]),
    );
    let (right, label_height) = (chart[0].as_f64().unwrap(), chart[1].as_f64().unwrap());
    assert!(
        right <= 390.0,
        "the chart fits the phone: right edge at {right}"
    );
    assert!(
        label_height >= 10.0,
        "chart labels are readable: {label_height} px high"
    );
    assert_eq!(overflowing_elements(&ana), Vec::<String>::new());
    ana.goto(&app.url("/threats/rescans"));
    health.page(&ana);
    assert!(ana.page_text().contains("raised from 60 to 95"));
    assert_eq!(overflowing_elements(&ana), Vec::<String>::new());
}
