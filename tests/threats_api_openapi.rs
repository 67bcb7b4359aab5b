//! The sensor API's OpenAPI document tells the truth, checked against the live API without Python:
//! for the values schemathesis once found the two disagreeing on (ids spelled `urn:uuid:`, braced
//! or without dashes; blank text and control characters; an md5 or IP with spaces around it) and
//! their neighbours, the document's own patterns and lengths and the API give the same verdict; a
//! body valid by the document is refused only for the state-dependent references its 422
//! description names; every error answer has the body the document describes.
//! (`scripts/schemathesis.sh` fuzzes the same promise with generated data.)

mod common;

use common::TestApp;
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::{json, Value};

struct Api {
    app: TestApp,
    token: String,
    doc: Value,
    /// Numbers the sessions and files of each probe, so that no probe refers to another's.
    next: std::cell::Cell<u64>,
}

impl Api {
    fn start() -> Api {
        let app = TestApp::spawn();
        let token = {
            let mut conn = app.state.pool.get().unwrap();
            let ctx = CommandContext::new(Metadata::new(Actor::Cli));
            heyboss::threats::service::create_sensor(&mut conn, &app.state.store, &ctx, "oas")
                .unwrap()
                .1
        };
        let doc = ureq::get(&app.url("/api/v1/openapi.json"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        Api {
            app,
            token,
            doc,
            next: 0.into(),
        }
    }

    fn post(&self, auth: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut req = ureq::post(&self.app.url("/api/v1/events"));
        if let Some(token) = auth {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        let res = match req.send_bytes(body) {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        (res.status(), res.into_json().unwrap())
    }

    fn post_events(&self, events: &[Value]) -> (u16, Value) {
        self.post(
            Some(&self.token),
            json!({ "events": events }).to_string().as_bytes(),
        )
    }

    /// The schema the document gives `field` of an `event` (`id`, or a field of its data).
    fn schema(&self, event: &str, field: &str) -> &Value {
        let e = &self.doc["components"]["schemas"][event]["properties"];
        let s = if field == "id" {
            &e["id"]
        } else {
            &e["data"]["properties"][field]
        };
        assert!(s.is_object(), "{event}.{field} is not in the document");
        s
    }

    /// The API's verdict on `value` in `field` of `event`: posted in a batch whose other events
    /// and fields are valid and refer only to what the batch itself discovers, so that the
    /// answer depends on the value alone. `Err` is the message of the event's 422.
    fn verdict(&self, event: &str, field: &str, value: &str) -> Result<(), String> {
        let n = self.next.get();
        self.next.set(n + 1);
        let mut events = batch_up_to(event, &format!("s{n}"), &format!("f{n}"));
        let probed = events.last_mut().unwrap();
        if field == "id" {
            probed["id"] = json!(value);
        } else {
            probed["data"][field] = json!(value);
        }
        let (status, body) = self.post_events(&events);
        match status {
            200 => {
                assert_eq!(body["accepted"], events.len(), "{body}");
                Ok(())
            }
            422 => {
                let errors = body["errors"].as_array().unwrap();
                assert_eq!(errors.len(), 1, "{body}");
                assert_eq!(errors[0]["index"], events.len() - 1, "{body}");
                Err(errors[0]["message"].as_str().unwrap().to_owned())
            }
            other => panic!("{event}.{field} = {value:?}: {other} {body}"),
        }
    }

    /// Document and API agree on every value, and both say what `valid` says.
    fn agree(&self, event: &str, field: &str, valid: &[&str], invalid: &[&str]) {
        let schema = self.schema(event, field);
        for (values, expected) in [(valid, true), (invalid, false)] {
            for v in values {
                assert_eq!(
                    allowed_by(schema, v),
                    expected,
                    "the document {} {event}.{field} = {v:?}: {schema}",
                    if expected { "refuses" } else { "allows" }
                );
                let answer = self.verdict(event, field, v);
                assert_eq!(
                    answer.is_ok(),
                    expected,
                    "the API {} {event}.{field} = {v:?}: {answer:?}",
                    if expected { "refuses" } else { "accepts" }
                );
                // Refused for this value, not for a reference or another field.
                if let Err(message) = answer {
                    assert!(
                        message.contains(field),
                        "{event}.{field} = {v:?}: {message}"
                    );
                }
            }
        }
    }
}

/// A valid batch ending with an event of type `event`, preceded by the discoveries it refers to.
fn batch_up_to(event: &str, session: &str, file: &str) -> Vec<Value> {
    let ev = |t: &str, data: Value| json!({"id": uuid::Uuid::new_v4(), "type": t, "data": data});
    let mut events = vec![ev(
        "SessionDiscovered",
        json!({"session_id": session, "start_time": "2026-12-05T09:00:00Z", "protocol": "tcp",
               "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 2}),
    )];
    let hit = |t: &str, extra: Value| {
        let mut data = json!({"file_id": file, "session_id": session, "integration": "av", "signature": "Sig-1"});
        data.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        ev(t, data)
    };
    match event {
        "SessionDiscovered" => {}
        "SessionScored" => events.push(ev(
            "SessionScored",
            json!({"session_id": session, "threat_contributor": "ids", "score": 5}),
        )),
        _ => {
            events.push(ev(
                "FileDiscovered",
                json!({"file_id": file, "session_id": session, "md5": "d41d8cd98f00b204e9800998ecf8427e",
                       "filename": "a.exe", "file_type": "pe", "size_bytes": 1}),
            ));
            if event != "FileDiscovered" {
                events.push(hit("FileScored", json!({"score": 10})));
            }
            if event == "FileRescored" {
                events.push(hit("FileRescored", json!({"new_score": 20})));
            }
        }
    }
    assert_eq!(events.last().unwrap()["type"], event);
    events
}

/// What a string schema of the document allows, by its lengths (in characters, as JSON Schema
/// counts them) and its pattern (ECMA-262; the document keeps to a subset Rust's regex reads the
/// same). `format` is not evaluated: the values below are decided by the pattern.
fn allowed_by(schema: &Value, value: &str) -> bool {
    let chars = value.chars().count() as u64;
    let min = schema["minLength"].as_u64().unwrap_or(0);
    let max = schema["maxLength"].as_u64().unwrap_or(u64::MAX);
    let pattern = schema["pattern"]
        .as_str()
        .expect("a string field has a pattern");
    let re = regex::Regex::new(pattern).unwrap();
    (min..=max).contains(&chars) && re.is_match(value)
}

#[test]
fn ids_are_hyphenated_uuids_in_the_document_and_the_api() {
    let api = Api::start();
    let id = uuid::Uuid::new_v4;
    let valid = [id().to_string(), id().to_string().to_uppercase()];
    let invalid = [
        id().urn().to_string(),
        id().braced().to_string(),
        id().simple().to_string(),
        format!(" {}", id()),
        format!("{} ", id()),
        format!("{}\n", id()),
        String::new(),
    ];
    let valid: Vec<&str> = valid.iter().map(String::as_str).collect();
    let invalid: Vec<&str> = invalid.iter().map(String::as_str).collect();
    api.agree("SessionDiscovered", "id", &valid, &invalid);
    assert!(api
        .verdict("FileScored", "id", &id().urn().to_string())
        .unwrap_err()
        .contains("hyphenated"));
}

#[test]
fn text_is_taken_as_sent_and_never_blank_or_controlled() {
    let api = Api::start();
    let fields = [
        ("SessionDiscovered", "session_id", 200),
        ("SessionDiscovered", "protocol", 32),
        ("SessionScored", "threat_contributor", 200),
        ("FileDiscovered", "file_id", 200),
        ("FileDiscovered", "filename", 255),
        ("FileDiscovered", "file_type", 64),
        ("FileScored", "integration", 100),
        ("FileScored", "signature", 100),
    ];
    for (event, field, max) in fields {
        let longest = "x".repeat(max);
        let widest = "é".repeat(max);
        let too_long = "x".repeat(max + 1);
        let valid = [
            "a",
            "a b",
            "a\u{a0}b",
            "a\u{2028}b",
            "\u{202e}fdp.exe",
            "\u{feff}a",
            "😀",
            &longest,
            &widest,
        ];
        let invalid = [
            "",
            " ",
            "   ",
            "\u{a0}",
            "\u{3000}",
            " a",
            "a ",
            "a\u{2003}",
            "\u{2028}a",
            "\ta",
            "a\n",
            "a\nb",
            "a\u{7}b",
            "\u{1b}[31mred",
            "a\u{0}b",
            "a\u{85}",
            "a\u{9f}b",
            &too_long,
        ];
        // Each probe discovers its own session and file, so a session or file id under test
        // is new each time (and the valid values are distinct).
        api.agree(event, field, &valid, &invalid);
    }
}

#[test]
fn md5s_and_ips_are_refused_with_spaces_around_them() {
    let api = Api::start();
    let md5 = "d41d8cd98f00b204e9800998ecf8427e";
    let (padded, trailing, newline) = (format!(" {md5}"), format!("{md5} "), format!("{md5}\n"));
    let upper = md5.to_uppercase();
    api.agree(
        "FileDiscovered",
        "md5",
        &[md5, &upper],
        &[
            &padded,
            &trailing,
            &newline,
            &md5[1..],
            &format!("{md5}0"),
            &"g".repeat(32),
            "",
        ],
    );
    for field in ["source_ip", "destination_ip"] {
        api.agree(
            "SessionDiscovered",
            field,
            &["10.0.0.1", "::1", "::ffff:10.0.0.1", "2001:db8::1"],
            &[
                " 10.0.0.1",
                "10.0.0.1 ",
                "10.0.0.1\n",
                "fe80::1%eth0",
                "[::1]",
                "10.0.0.1/24",
                "",
            ],
        );
    }
}

#[test]
fn start_times_are_rfc_3339_within_years_the_database_stores() {
    let api = Api::start();
    api.agree(
        "SessionDiscovered",
        "start_time",
        &[
            "2026-12-05T09:00:00Z",
            "2026-12-05t09:00:00z",
            "2026-12-05T09:00:00.123456789+05:30",
            "2016-12-31T23:59:60Z",
            "0001-01-01T00:00:00Z",
            "0002-01-01T00:00:00+23:59",
            "9998-12-31T23:59:59-23:59",
            "9999-12-31T23:59:59.999Z",
        ],
        &[
            "2026-12-05 09:00:00Z",
            " 2026-12-05T09:00:00Z",
            "2026-12-05T09:00:00Z ",
            "2026-12-05T09:00:00",
            "2026-12-05T09:00Z",
            "2026-12-05T09:00:00.Z",
            "+2026-12-05T09:00:00Z",
            "0000-06-01T00:00:00Z",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T20:00:00-05:00",
            "9999-12-31T23:59:60Z",
        ],
    );
    // Refused by the document's `format: date-time` (a valid month and day; a leap second only
    // at 23:59:60 in UTC), and by the API.
    for t in [
        "2026-02-30T00:00:00Z",
        "2026-12-05T24:00:00Z",
        "2026-12-05T12:30:60Z",
    ] {
        assert!(
            api.verdict("SessionDiscovered", "start_time", t).is_err(),
            "{t}"
        );
    }
}

#[test]
fn a_valid_body_is_refused_only_for_references_a_schema_cannot_know() {
    let api = Api::start();
    let description = api.doc["paths"]["/api/v1/events"]["post"]["responses"]["422"]["description"]
        .as_str()
        .unwrap();
    for named in [
        "unknown session",
        "unknown file",
        "rescores one never scored",
    ] {
        assert!(description.contains(named), "422 does not name {named:?}");
    }
    // Each event valid by the document; each refers to what nothing discovered.
    let ev = |t: &str, data: Value| json!({"id": uuid::Uuid::new_v4(), "type": t, "data": data});
    let hit = json!({"file_id": "nf", "session_id": "ns", "integration": "av", "score": 1, "new_score": 2, "signature": "S"});
    let events = [
        ev(
            "SessionScored",
            json!({"session_id": "ns", "threat_contributor": "ids", "score": 5}),
        ),
        ev("FileScored", hit.clone()),
        ev("FileRescored", hit),
    ];
    let (status, body) = api.post_events(&events);
    assert_eq!(status, 422, "{body}");
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 3, "{body}");
    assert!(messages[0].starts_with("unknown session ns"), "{body}");
    assert!(messages[1].starts_with("unknown file nf"), "{body}");
    assert!(messages[2].starts_with("unknown file nf"), "{body}");
    // Discovered first, in the same batch, the same events are stored.
    let mut fixed = batch_up_to("FileRescored", "ns", "nf");
    fixed.insert(1, events[0].clone());
    assert_eq!(api.post_events(&fixed).0, 200);
}

#[test]
fn every_error_answer_has_the_body_the_document_describes() {
    let api = Api::start();
    let responses = &api.doc["paths"]["/api/v1/events"]["post"]["responses"];
    let valid = json!({"events": batch_up_to("SessionDiscovered", "e", "e")}).to_string();
    let oversized = format!(
        "{{\"events\":[],\"pad\":\"{}\"}}",
        "x".repeat(heyboss::threats::api::MAX_BODY_BYTES)
    );
    let cases: [(&str, Option<&str>, &[u8], u16); 6] = [
        ("not JSON", Some(&api.token), b"{", 400),
        ("not a batch", Some(&api.token), b"{\"events\":1}", 400),
        ("no token", None, valid.as_bytes(), 401),
        ("unknown token", Some("nope"), valid.as_bytes(), 401),
        ("too large", Some(&api.token), oversized.as_bytes(), 413),
        (
            "invalid event",
            Some(&api.token),
            b"{\"events\":[{\"id\":\"x\"}]}",
            422,
        ),
    ];
    for (what, token, body, want) in cases {
        let (status, answer) = api.post(token, body);
        assert_eq!(status, want, "{what}: {answer}");
        let schema = &responses[status.to_string()]["content"]["application/json"]["schema"];
        if let Err(why) = conforms(&api.doc, schema, &answer) {
            panic!("{what}: {answer} does not match the documented {status}: {why}");
        }
    }
    let (status, answer) = api.post(Some(&api.token), valid.as_bytes());
    assert_eq!(status, 200);
    conforms(
        &api.doc,
        &responses["200"]["content"]["application/json"]["schema"],
        &answer,
    )
    .unwrap();
}

/// A small JSON Schema check, for the keywords the document's answers use.
fn conforms(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .ok_or(format!("no {r}"))?;
        return conforms(doc, target, value);
    }
    let ok = match schema["type"].as_str() {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_u64() || value.is_i64(),
        other => return Err(format!("type {other:?} is not checked here")),
    };
    if !ok {
        return Err(format!("{value} is not of type {}", schema["type"]));
    }
    let at_least = |key: &str, n: u64| schema[key].as_u64().is_none_or(|min| n >= min);
    if let Some(s) = value.as_str() {
        if !at_least("minLength", s.chars().count() as u64) {
            return Err(format!("{value} is too short"));
        }
    }
    if let Some(n) = value.as_u64() {
        if !at_least("minimum", n) {
            return Err(format!("{value} is below the minimum"));
        }
    }
    if let Some(items) = value.as_array() {
        if !at_least("minItems", items.len() as u64) {
            return Err("too few items".into());
        }
        for item in items {
            conforms(doc, &schema["items"], item)?;
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(key.as_str().unwrap()) {
                return Err(format!("{key} is missing"));
            }
        }
        for (key, v) in object {
            match schema["properties"].get(key) {
                Some(s) => conforms(doc, s, v)?,
                None if schema["additionalProperties"] == false => {
                    return Err(format!("{key} is not documented"))
                }
                None => {}
            }
        }
    }
    Ok(())
}
