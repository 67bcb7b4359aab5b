//! A real change of an event's shape: `FileScored` version 2 carries the engine version that
//! produced the score. Sensors may send it (or not: the API stays compatible); events stored at
//! version 1 (inserted here as raw rows, as an older heyboss wrote them) are upcast when read,
//! and a rebuild reads both versions, in the database and in the application alike.

mod common;

use common::heyboss_cli as heyboss;
use common::TestApp;
use diesel::prelude::*;
use heyboss::es::projection::ReplayRange;
use heyboss::es::subscriber::Cursor;
use heyboss::es::{Actor, CommandContext, Metadata, RecordedEvent};
use heyboss::schema::events;
use heyboss::threats::events::SensorEvent;
use serde_json::{json, Value};

fn post(app: &TestApp, token: &str, events: Value) -> (u16, Value) {
    let res = match ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    (res.status(), res.into_json().unwrap())
}

fn event(kind: &str, data: Value) -> Value {
    json!({ "id": uuid::Uuid::new_v4().to_string(), "type": kind, "data": data })
}

fn session(id: &str) -> Value {
    event(
        "SessionDiscovered",
        json!({"session_id": id, "start_time": "2026-11-27T04:00:00Z", "protocol": "https",
               "source_ip": "10.0.0.7", "destination_ip": "198.51.100.9",
               "source_port": 51514, "destination_port": 443}),
    )
}

fn file(id: &str, session: &str, md5: &str) -> Value {
    event(
        "FileDiscovered",
        json!({"file_id": id, "session_id": session, "md5": md5, "filename": "invoice.pdf.exe",
               "file_type": "pe", "size_bytes": 68}),
    )
}

fn scored(file: &str, session: &str, engine_version: Option<Value>) -> Value {
    let mut data = json!({"file_id": file, "session_id": session, "integration": "clamav",
                          "score": 80, "signature": "ET-TROJAN-Emotet"});
    if let Some(v) = engine_version {
        data["engine_version"] = v;
    }
    event("FileScored", data)
}

fn stored(conn: &mut PgConnection, event_type: &str) -> Vec<RecordedEvent> {
    events::table
        .filter(events::event_type.eq(event_type))
        .order(events::position)
        .select(RecordedEvent::as_select())
        .load(conn)
        .unwrap()
}

#[test]
fn file_scored_version_2_carries_the_engine_version_and_version_1_events_still_replay() {
    let app = TestApp::spawn();
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = &app.state.store;
    heyboss::threats::service::set_signature(
        &mut conn,
        store,
        &ctx,
        "ET-TROJAN-Emotet",
        "malware",
        None,
        None,
    )
    .unwrap();
    let token = heyboss::threats::service::create_sensor(&mut conn, store, &ctx, "edge-1")
        .unwrap()
        .1;

    // The API: with the engine version, without it (an older sensor), and refused when it is
    // not a string of 1 to 64 characters.
    let md5 = "44d88612fea8a8f36de82e1278abb02f";
    let (status, body) = post(
        &app,
        &token,
        json!([
            session("s-new"),
            file("f-1", "s-new", md5),
            file("f-2", "s-new", md5),
            scored("f-1", "s-new", Some(json!("clamav 1.4.2/27490"))),
            scored("f-2", "s-new", None),
        ]),
    );
    assert_eq!(
        (status, body["accepted"].as_i64()),
        (200, Some(5)),
        "{body}"
    );
    for bad in [
        json!(null),
        json!(7),
        json!(""),
        json!(" 1.4"),
        json!("x".repeat(65)),
    ] {
        let (status, body) = post(
            &app,
            &token,
            json!([
                file("f-3", "s-new", md5),
                scored("f-3", "s-new", Some(bad.clone()))
            ]),
        );
        assert_eq!(status, 422, "engine_version {bad}: {body}");
        assert!(
            body.to_string().contains("invalid FileScored data")
                || body.to_string().contains("engine_version"),
            "{body}"
        );
    }
    let doc: Value = ureq::get(&app.url("/api/v1/openapi.json"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let schema = &doc["components"]["schemas"]["FileScored"];
    assert!(schema.to_string().contains("engine_version"), "{schema}");
    assert!(!schema.to_string().contains("\"engine_version\",\"score\""));

    let v2 = stored(&mut conn, "FileScored");
    assert_eq!(v2.len(), 2);
    assert!(v2.iter().all(|e| e.schema_version == 2));
    assert_eq!(v2[0].payload["engine_version"], json!("clamav 1.4.2/27490"));
    assert_eq!(v2[1].payload["engine_version"], Value::Null);

    // Events an older heyboss stored at version 1: raw rows, without the field.
    let meta = json!({"actor": {"kind": "cli"}, "command_id": uuid::Uuid::new_v4(),
                      "correlation_id": uuid::Uuid::new_v4()});
    let old = [
        (
            "SessionDiscovered",
            json!({"session_id": "s-old", "start_time": "2026-10-01T08:00:00Z",
            "protocol": "smtp", "source_ip": "10.0.0.8", "destination_ip": "203.0.113.5",
            "source_port": 40000, "destination_port": 25}),
        ),
        (
            "FileDiscovered",
            json!({"file_id": "f-old", "session_id": "s-old", "md5": md5,
            "filename": "statement.doc", "file_type": "doc", "size_bytes": 1024}),
        ),
        (
            "FileScored",
            json!({"file_id": "f-old", "session_id": "s-old", "integration": "clamav",
            "score": 95, "signature": "ET-TROJAN-Emotet"}),
        ),
    ];
    for (i, (kind, payload)) in old.iter().enumerate() {
        diesel::insert_into(events::table)
            .values((
                events::stream_type.eq("threat_session"),
                events::stream_id.eq("s-old"),
                events::stream_version.eq(i as i64 + 1),
                events::event_type.eq(*kind),
                events::schema_version.eq(1),
                events::payload.eq(payload),
                events::metadata.eq(&meta),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let all = stored(&mut conn, "FileScored");
    let v1 = all.iter().find(|e| e.schema_version == 1).unwrap();
    assert!(v1.payload.get("engine_version").is_none());
    match v1.decode::<SensorEvent>().unwrap() {
        SensorEvent::FileScored {
            file_id,
            score,
            engine_version,
            ..
        } => assert_eq!(
            (file_id.as_str(), score, engine_version),
            ("f-old", 95, None)
        ),
        other => panic!("{other:?}"),
    }
    // The range holds both versions: the reports' statements read it in the database (they read
    // what both share), where a projection knowing version 1 only would fall back.
    let everything = ReplayRange {
        after: Cursor::START,
        upto: Cursor {
            transaction_id: i64::MAX,
            position: i64::MAX,
        },
    };
    assert!(!everything
        .current_schema_only(&mut conn, &["FileScored"])
        .unwrap());
    assert!(everything
        .only_schemas(&mut conn, &["FileScored"], &[("FileScored", 2)])
        .unwrap());

    // A rebuild reads both versions: the old file's hit is there.
    let out = heyboss(&app.db.url, &["projections", "rebuild"]);
    assert!(out.status.success(), "{out:?}");
    let hits: Vec<(String, i32)> = heyboss::schema::threat_hits::table
        .order(heyboss::schema::threat_hits::file_id)
        .select((
            heyboss::schema::threat_hits::file_id,
            heyboss::schema::threat_hits::score,
        ))
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        hits,
        [("f-1".into(), 80), ("f-2".into(), 80), ("f-old".into(), 95)]
    );
    // The sensor API knows the old score: a rescore of it is accepted, a second score refused.
    let (status, body) = post(
        &app,
        &token,
        json!([event(
            "FileRescored",
            json!({"file_id": "f-old", "session_id": "s-old",
            "integration": "clamav", "new_score": 40, "signature": "ET-TROJAN-Emotet"})
        )]),
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = post(&app, &token, json!([scored("f-old", "s-old", None)]));
    assert_eq!(status, 422);
    // The live tables (the application's decoders) equal a replay (in the database) of both
    // versions.
    let out = heyboss(&app.db.url, &["projections", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
