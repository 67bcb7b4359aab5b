//! History of threat sessions: the replay and the page as of a moment, for analysts of different
//! clearances. Neither shows a hit of a signature the analyst is not cleared for.

mod common;

use chrono::{SecondsFormat, Utc};
use common::{create_user, text_of, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use serde_json::{json, Value};

fn ev(t: &str, data: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

fn post(app: &TestApp, token: &str, events: Vec<Value>) {
    let r = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn signed_in(app: &TestApp, user: &str) -> Client {
    let mut c = Client::new(app);
    c.login(user, PASSWORD);
    c
}

/// What the session page shows: its facts, files and hits, as text (the lag note and the
/// banner left out).
fn shown(body: &str) -> String {
    let start = body
        .find("<dl class=\"facts\">")
        .unwrap_or_else(|| panic!("no session in:\n{body}"));
    let end = body.find("</main>").unwrap_or(body.len());
    let mut shown = body[start..end].to_owned();
    // The live page's triage panel is a form, which the past does not carry.
    if let Some(panel) = shown.find("<section class=\"card\" id=\"triage\">") {
        let close = panel + shown[panel..].find("</section>").unwrap() + "</section>".len();
        shown.replace_range(panel..close, "");
    }
    text_of(&shown)
}

/// sig-a (group alpha), sig-b (group beta); ana holds alpha, bob beta; session s1 with file x
/// hit by both, scored with sig-b as its contributor.
fn world() -> (TestApp, String) {
    let app = TestApp::spawn();
    create_user(&app, "admin", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bob", "analyst", PASSWORD);
    create_user(&app, "stan", "staff", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let s = &app.state.store;
    use heyboss::threats::service;
    service::set_signature(&mut conn, s, &ctx, "sig-a", "alpha", Some(50), Some("a")).unwrap();
    service::set_signature(&mut conn, s, &ctx, "sig-b", "beta", None, None).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
    service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
    let (_, token) = service::create_sensor(&mut conn, s, &ctx, "edge").unwrap();
    drop(conn);
    let now = Utc::now().to_rfc3339();
    post(
        &app,
        &token,
        vec![
            ev(
                "SessionDiscovered",
                json!({"session_id": "s1", "start_time": now, "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 80}),
            ),
            ev(
                "FileDiscovered",
                json!({"file_id": "x", "session_id": "s1", "md5": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "filename": "x.exe", "file_type": "pe", "size_bytes": 10}),
            ),
            ev(
                "FileScored",
                json!({"file_id": "x", "session_id": "s1", "integration": "av", "score": 90, "signature": "sig-a"}),
            ),
            ev(
                "FileScored",
                json!({"file_id": "x", "session_id": "s1", "integration": "yara", "score": 40, "signature": "sig-b"}),
            ),
            ev(
                "SessionScored",
                json!({"session_id": "s1", "threat_contributor": "SIG-B", "score": 40}),
            ),
        ],
    );
    (app, token)
}

#[test]
fn a_sessions_page_as_of_a_moment_is_its_live_page_of_that_moment_for_each_analyst() {
    let (app, token) = world();
    let page = "/threats/sessions/s1";
    let mut viewers: Vec<(&str, Client, String)> = ["ana", "bob", "admin"]
        .into_iter()
        .map(|u| {
            let mut c = signed_in(&app, u);
            let then = shown(&c.get(page).body);
            (u, c, then)
        })
        .collect();
    let then = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(
        viewers[0].2.contains("restricted"),
        "ana may not see sig-b: {}",
        viewers[0].2
    );
    assert!(!viewers[0].2.contains("sig-b"));
    assert!(viewers[1].2.contains("SIG-B") && viewers[1].2.contains("sig-b"));

    post(
        &app,
        &token,
        vec![
            ev(
                "FileRescored",
                json!({"file_id": "x", "session_id": "s1", "integration": "av", "new_score": 95, "signature": "sig-a"}),
            ),
            ev(
                "FileDiscovered",
                json!({"file_id": "z", "session_id": "s1", "md5": "cccccccccccccccccccccccccccccccc", "filename": "z.doc", "file_type": "doc", "size_bytes": 3}),
            ),
            ev(
                "SessionScored",
                json!({"session_id": "s1", "threat_contributor": "sig-a", "score": 95}),
            ),
        ],
    );
    let at = then.replace('+', "%2B");
    for (user, c, then_shown) in viewers.iter_mut() {
        let now = shown(&c.get(page).body);
        assert_ne!(&now, then_shown, "{user}: the live page moved on");
        let res = c.get(&format!("{page}?as_of={at}"));
        assert_eq!(res.status, 200, "{user}: {}", res.body);
        res.assert_contains("This page shows the past");
        let past = shown(&res.body);
        let past = past[..past.find("Show this page as of").map_or(past.len(), |i| i)].to_owned();
        let expected = then_shown[..then_shown
            .find("Show this page as of")
            .map_or(then_shown.len(), |i| i)]
            .to_owned();
        assert_eq!(past, expected, "{user}: as of then is the page of then");
    }
    // Scoped like the live page: staff have no threat pages, then or now.
    let mut stan = signed_in(&app, "stan");
    assert_eq!(
        stan.get(&format!("{page}?as_of={at}")).status,
        stan.get(page).status
    );
    assert_ne!(stan.get(page).status, 200);
    // Before the session was discovered: not found.
    assert_eq!(
        viewers[2].1.get(&format!("{page}?as_of=2000-01-01")).status,
        404
    );
}

#[test]
fn an_analysts_replay_of_a_session_leaves_out_the_hits_they_may_not_see() {
    let (app, _) = world();
    let history = "/history/threat_session/s1";
    let mut admin = signed_in(&app, "admin");
    let res = admin.get(history);
    assert_eq!(res.status, 200);
    res.assert_contains("Event 5 of 5")
        .assert_contains("Hit on x by sig-b (yara)");

    let mut ana = signed_in(&app, "ana");
    let res = ana.get(history);
    assert_eq!(res.status, 200, "{}", res.body);
    // The sig-b hit and the session score naming it are not in ana's history, nor in her replay.
    res.assert_contains("Event 3 of 3")
        .assert_contains("Hit on x by sig-a (av)");
    assert!(
        !res.body.contains("sig-b") && !res.body.contains("SIG-B"),
        "{}",
        res.body
    );
    for step in 1..=3 {
        let body = ana.get(&format!("{history}?step={step}")).body;
        assert!(!body.contains("sig-b"), "step {step}");
    }
    let mut stan = signed_in(&app, "stan");
    assert_eq!(stan.get(history).status, 404);
}
