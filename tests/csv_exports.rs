//! Every CSV export is safe to open in any spreadsheet: RFC 4180 quoting with CRLF lines, no
//! cell a spreadsheet would run as a formula (also one that splits lines on `;`), and
//! `Cache-Control: no-store`. Hostile text enters as a person or a sensor would send it.

mod common;

use common::{create_user, Client, Response, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::json;

/// A name that becomes a formula in a spreadsheet splitting on `;`, and one at a cell's start.
const NAME: &str = "Bob;=1+1";
const FILENAME: &str = "inv;=1+1;.pdf";
const REASON: &str = "@SUM(1+1)";

/// What a spreadsheet would see as cells if it split every line on `sep`, ignoring quotes
/// (the worst case: a reader that takes the file for another dialect).
fn naive_cells(body: &str, sep: char) -> Vec<String> {
    body.lines()
        .flat_map(|l| l.split(sep).map(|c| c.trim_matches('"').to_owned()))
        .collect()
}

#[track_caller]
fn assert_safe(export: &Response, what: &str) {
    assert_eq!(export.status, 200, "{what}: {}", export.body);
    assert_eq!(
        export.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(export.header("cache-control"), Some("no-store"), "{what}");
    assert!(
        export
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment;"),
        "{what}"
    );
    assert!(export.body.ends_with("\r\n"), "{what}: CRLF lines");
    for sep in [',', ';', '\t'] {
        for cell in naive_cells(&export.body, sep) {
            let is_number = cell
                .trim_start_matches('-')
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.');
            assert!(
                is_number || !cell.starts_with(['=', '+', '-', '@']),
                "{what}: a formula cell {cell:?} when split on {sep:?}:\n{}",
                export.body
            );
        }
    }
}

#[test]
fn every_export_is_quoted_defused_and_not_cached() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "sam", "staff", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);

    // A student signs up with a hostile name; staff decline their scholarship with a hostile
    // reason; a sensor reports a hostile filename.
    let mut student = Client::new(&app);
    student.get("/signup");
    let signed_up = student.post(
        "/signup",
        &[
            ("username", "bob"),
            ("display_name", NAME),
            ("email", "bob@example.edu"),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(signed_up.status, 303, "{}", signed_up.body);
    let mut staff = Client::new(&app);
    staff.login("sam", PASSWORD);
    staff.get("/scholarships/funds");
    let created = staff.post(
        "/scholarships/funds",
        &[
            ("name", "Merit"),
            ("term", "2027-fall"),
            ("budget", "1000"),
            ("criteria", "Good"),
            ("opens_on", "2020-01-01"),
            ("closes_on", "2099-12-31"),
        ],
    );
    let fund = created.header("location").unwrap().to_owned();
    staff.post(&format!("{fund}/window"), &[("open", "true")]);
    student.get("/scholarships");
    student.post(&format!("{fund}/apply"), &[("statement", "please")]);
    let application: uuid::Uuid = {
        use diesel::prelude::*;
        let mut conn = app.state.pool.get().unwrap();
        heyboss::schema::scholarship_applications::table
            .select(heyboss::schema::scholarship_applications::id)
            .first(&mut conn)
            .unwrap()
    };
    staff.get(&fund);
    let declined = staff.post(
        &format!("/scholarships/applications/{application}/decision"),
        &[("outcome", "decline"), ("reason", REASON)],
    );
    assert_eq!(declined.status, 303, "{}", declined.body);

    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx = CommandContext::new(Metadata::new(Actor::Cli));
        heyboss::threats::service::change_clearance(
            &mut conn,
            &app.state.store,
            &ctx,
            "ana",
            "restricted",
            true,
        )
        .ok();
        heyboss::threats::service::create_sensor(&mut conn, &app.state.store, &ctx, "edge")
            .unwrap()
            .1
    };
    let ev = |t: &str, data: serde_json::Value| json!({"id": uuid::Uuid::new_v4(), "type": t, "data": data});
    let now = chrono::Utc::now().to_rfc3339();
    let posted = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({"events": [
            ev("SessionDiscovered", json!({"session_id": "s1", "start_time": now, "protocol": "https", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 443})),
            ev("FileDiscovered", json!({"file_id": "f1", "session_id": "s1", "md5": "44d88612fea8a8f36de82e1278abb02f", "filename": FILENAME, "file_type": "pdf", "size_bytes": 1})),
            ev("FileScored", json!({"file_id": "f1", "session_id": "s1", "integration": "av", "score": 90, "signature": "sig-x"})),
        ]}))
        .unwrap();
    assert_eq!(posted.status(), 200);

    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let pipeline = staff.get("/enrollment/pipeline?format=csv");
    assert_safe(&pipeline, "pipeline");
    assert!(pipeline.body.contains("Bob;'=1+1"), "{}", pipeline.body);
    let report = staff.get(&format!("{fund}/report?format=csv"));
    assert_safe(&report, "fund report");
    assert!(report.body.contains("'@SUM(1+1)"), "{}", report.body);
    let audit = admin.get("/audit?format=csv");
    assert_safe(&audit, "audit");
    for path in [
        "/threats/top/hash?format=csv",
        "/threats/top/file-type?format=csv",
        "/threats/top/ip-pair?format=csv",
        "/threats/top/protocol?format=csv",
        "/threats/top/hash/hits?key=44d88612fea8a8f36de82e1278abb02f&format=csv",
        "/threats/sessions?format=csv",
    ] {
        let export = admin.get(path);
        assert_safe(&export, path);
    }
    let hash = admin.get("/threats/top/hash?format=csv");
    assert!(hash.body.contains("inv;'=1+1;.pdf"), "{}", hash.body);
    // The contract's header line is unchanged.
    assert!(hash
        .body
        .starts_with("md5,filename,file_type,hits,max_score,signatures,last_seen\r\n"));
}
