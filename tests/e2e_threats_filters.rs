//! Click to filter in a real headless Chromium: a value on the report filters it, the chip shows
//! and removes it, the search box finds a filename, and the filtered report fits a 390 px phone.
//! Every page is checked for console errors and axe violations.
//!
//! `cargo nextest run --run-ignored all -E 'binary(=e2e_threats_filters)'`

mod common;
mod journeys;
mod webdriver;

use common::TestApp;
use journeys::{assert_usable_on_a_phone, create_account, sign_in, table_rows, Health};
use serde_json::{json, Value};
use webdriver::Browser;

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

/// An analyst `ana` cleared for sig-a, and two hits of it: invoice.exe (pe, over tcp) and
/// report.pdf (pdf, over udp).
fn seed(app: &TestApp) {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::threats::service;
    create_account(app, "ana", "Ana Analyst", "analyst");
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let cli = CommandContext::new(Metadata::new(Actor::Cli));
        let s = &app.state.store;
        service::set_signature(&mut conn, s, &cli, "sig-a", "alpha", None, None).unwrap();
        service::change_clearance(&mut conn, s, &cli, "ana", "alpha", true).unwrap();
        service::create_sensor(&mut conn, s, &cli, "edge")
            .unwrap()
            .1
    };
    let now = chrono::Utc::now().to_rfc3339();
    let mut events = Vec::new();
    for (i, (proto, name, ftype)) in [("tcp", "invoice.exe", "pe"), ("udp", "report.pdf", "pdf")]
        .into_iter()
        .enumerate()
    {
        events.push(ev("SessionDiscovered", json!({"session_id": format!("s{i}"), "start_time": now, "protocol": proto, "source_ip": "10.0.0.1", "destination_ip": format!("10.0.0.{}", 2 + i), "source_port": 1, "destination_port": 443})));
        events.push(ev("FileDiscovered", json!({"file_id": format!("f{i}"), "session_id": format!("s{i}"), "md5": format!("{:032x}", i + 1), "filename": name, "file_type": ftype, "size_bytes": 1})));
        events.push(ev("FileScored", json!({"file_id": format!("f{i}"), "session_id": format!("s{i}"), "integration": "yara", "score": 50 + i, "signature": "sig-a"})));
    }
    let res = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn an_analyst_filters_by_clicking_removes_a_chip_and_searches_a_filename() {
    let app = TestApp::spawn();
    seed(&app);
    let mut health = Health::new();
    let ana = Browser::start();
    sign_in(&ana, &app, "ana");
    ana.goto(&app.url("/threats/top/protocol"));
    health.page(&ana);
    assert_eq!(table_rows(&ana, "#report table").len(), 2);
    // Click "udp": the report is filtered to it, with a chip.
    ana.click(&ana.find("#report td a.filter-link[href$='protocol=udp']"));
    ana.wait_for_text("Only hits with");
    health.page(&ana);
    assert!(
        ana.current_url().ends_with("&protocol=udp"),
        "{}",
        ana.current_url()
    );
    let rows = table_rows(&ana, "#report table");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "udp");
    assert_usable_on_a_phone(&ana, "a filtered report");
    // The file type report keeps the filter.
    ana.click(&ana.find("nav[aria-label=Reports] a[href^='/threats/top/file-type']"));
    ana.find(".chip");
    assert_eq!(table_rows(&ana, "#report table")[0][0], "pdf");
    // Remove the chip: both rows again.
    ana.click(&ana.find(".chip .chip-remove"));
    ana.find("#report table");
    assert!(ana.try_find(".chip").is_none());
    assert_eq!(table_rows(&ana, "#report table").len(), 2);
    // Search a filename.
    ana.fill("#search-q", "INVOICE");
    ana.click(&ana.find("form[role=search] button[type=submit]"));
    ana.wait_for_text("Files whose name holds");
    health.page(&ana);
    assert!(ana.page_text().contains("invoice.exe"));
    assert!(!ana.page_text().contains("report.pdf"));
}

/// The bar chart of a report read on a phone (390 px): its labels and values are text at the
/// page's size, not an SVG drawing scaled down to a third of it.
#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn the_report_chart_is_readable_on_a_phone() {
    let app = TestApp::spawn();
    seed(&app);
    let mut health = Health::new();
    let ana = Browser::start();
    sign_in(&ana, &app, "ana");
    ana.goto(&app.url("/threats/top/hash"));
    // A hash report answers with its rows and counts them after: HTMX swaps the counted pager in.
    ana.wait_for_text("Rows 1–2 of 2");
    assert!(!ana.page_text().contains("counting"));
    health.page(&ana);
    ana.set_window_size(390, 844);
    // The rendered size of each label and value: its font size times the scale an SVG drawing
    // is shown at (1 for HTML text).
    let sizes = ana.execute(
        "return [...document.querySelectorAll('#report :is(.hbars span, svg.chart text)')]
           .filter(e => e.textContent.trim())
           .map(e => parseFloat(getComputedStyle(e).fontSize)
                     * (e.getScreenCTM ? e.getScreenCTM().a : 1));",
        json!([]),
    );
    let sizes: Vec<f64> = sizes
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(sizes.len() >= 4, "two bars' labels and values: {sizes:?}");
    assert!(
        sizes.iter().all(|&px| px >= 12.0),
        "chart text at 390 px: {sizes:?} px"
    );
    let labels = ana.find_all("#report .hbar-label");
    assert_eq!(labels.len(), 2);
    assert!(ana.text(&labels[0]).starts_with("0000000000"));
    assert_usable_on_a_phone(&ana, "a report's chart");
}
