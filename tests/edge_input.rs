//! Text that PostgreSQL cannot store (a NUL byte, bytes that are not UTF-8) is refused at the
//! edge with a 400 and a message, on every route and in every parameter, and changes nothing:
//! never a 500. The routes and parameters are read from the source (the route macros and the
//! fields of the structs handlers deserialize), so a new route is covered without editing this.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{count_events, create_user, Client, TestApp, PASSWORD};

/// Every route: its method and handler from the route macros in src/, its full path (scopes
/// included) from the application's own route table, with each placeholder as `{0}`, `{1}`...
fn routes() -> Vec<(String, String)> {
    let mut handlers = Vec::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        for method in ["get", "post"] {
            let marker = format!("#[{method}(\"");
            for piece in text.split(&marker).skip(1) {
                let name = piece
                    .split("fn ")
                    .nth(1)
                    .and_then(|rest| rest.split('(').next())
                    .unwrap()
                    .to_owned();
                handlers.push((method.to_owned(), name));
            }
        }
    }
    let mut names: Vec<&String> = handlers.iter().map(|(_, n)| n).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        handlers.len(),
        "handler names are unique (the route table is by name)"
    );
    let names: Vec<String> = handlers.iter().map(|(_, n)| n.clone()).collect();
    let paths = actix_web::rt::System::new().block_on(async move {
        use actix_web::{test, web, App, HttpRequest, HttpResponse};
        // The real route table, asked to spell each handler's path.
        async fn spell(req: HttpRequest, names: web::Data<Vec<String>>) -> HttpResponse {
            let paths: Vec<String> = names
                .iter()
                .map(|name| {
                    (0..6)
                        .find_map(|n| {
                            let holes: Vec<String> = (0..n).map(|i| format!("HOLE{i}")).collect();
                            req.url_for(name, &holes).ok()
                        })
                        .map(|u| u.path().to_owned())
                        .unwrap_or_else(|| panic!("{name} is not in the route table"))
                })
                .collect();
            HttpResponse::Ok().json(paths)
        }
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(names))
                .configure(heyboss::startup::routes)
                .route("/__spell", web::get().to(spell)),
        )
        .await;
        let req = test::TestRequest::get().uri("/__spell").to_request();
        let paths: Vec<String> = test::call_and_read_body_json(&app, req).await;
        paths
    });
    handlers
        .into_iter()
        .zip(paths)
        .map(|((method, _), path)| {
            let path = (0..6).fold(path, |p, i| {
                p.replace(&format!("HOLE{i}"), &format!("{{{i}}}"))
            });
            (method, path)
        })
        .collect()
}

/// Every field name of a struct that derives `Deserialize` in src/ (forms, queries and JSON).
fn parameters() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        for piece in text.split("#[derive(").skip(1) {
            let derive = piece.split(')').next().unwrap_or("");
            if !derive.contains("Deserialize") {
                continue;
            }
            let Some(body) = piece
                .split_once("struct ")
                .and_then(|(_, rest)| rest.split_once('{'))
                .map(|(_, body)| body.split('}').next().unwrap_or(""))
            else {
                continue;
            };
            for line in body.lines() {
                let line = line.trim().trim_start_matches("pub ");
                if let Some((name, _)) = line.split_once(':') {
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        out.insert(name.to_owned());
                    }
                }
            }
        }
    }
    out
}

fn sources() -> Vec<std::path::PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// The pattern with its placeholders filled: each with `bad` in turn, the others with `ok`.
fn paths(pattern: &str, bad: &str) -> Vec<String> {
    let segments: Vec<&str> = pattern.split('/').collect();
    let holes: Vec<usize> = (0..segments.len())
        .filter(|&i| segments[i].starts_with('{'))
        .collect();
    holes
        .iter()
        .map(|&hole| {
            segments
                .iter()
                .enumerate()
                .map(|(i, s)| match i {
                    _ if i == hole => bad.to_owned(),
                    _ if s.starts_with('{') => "x".to_owned(),
                    _ => (*s).to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

const UNSTORABLE: [&str; 4] = ["%00", "a%00b", "%FF", "bad%FF%FEutf8"];

#[test]
fn nul_and_invalid_utf8_are_refused_on_every_route_in_every_parameter() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let routes = routes();
    let parameters = parameters();
    assert!(routes.len() > 50, "the route macros were found: {routes:?}");
    assert!(
        parameters.contains("command_id") && parameters.contains("window"),
        "the parameters were found: {parameters:?}"
    );
    let before = count_all(&app);
    let mut checked = 0;
    let mut expect_400 = |what: &str, res: common::Response| {
        checked += 1;
        assert_eq!(res.status, 400, "{what}: {}", res.body);
        assert!(
            res.body
                .contains("NUL byte or text that is not valid UTF-8"),
            "{what}: says what is wrong: {}",
            res.body
        );
    };
    for (method, pattern) in &routes {
        let concrete = paths(pattern, "x").pop().unwrap_or_else(|| pattern.clone());
        for bad in UNSTORABLE {
            // Every placeholder of the path.
            for path in paths(pattern, bad) {
                let res = match method.as_str() {
                    "get" => admin.get(&path),
                    _ => admin.post(&path, &[]),
                };
                expect_400(&format!("{method} {path}"), res);
            }
        }
        // Every parameter, in the query string and in a form body (the bad values in turn).
        for (i, name) in parameters.iter().enumerate() {
            let bad = UNSTORABLE[i % UNSTORABLE.len()];
            let query = format!("{concrete}?{name}={bad}");
            let res = match method.as_str() {
                "get" => admin.get(&query),
                _ => admin.post_raw_form(&query, b""),
            };
            expect_400(&format!("{method} {query}"), res);
            if method == "post" && !concrete.starts_with("/api/") {
                let body = format!("{name}={bad}");
                let res = admin.post_raw_form(&concrete, body.as_bytes());
                expect_400(&format!("post {concrete} with {body}"), res);
                let res = admin.post_htmx_raw(&concrete, body.as_bytes());
                expect_400(&format!("htmx post {concrete} with {body}"), res);
            }
        }
    }
    println!("{checked} requests refused at the edge");
    assert_eq!(count_all(&app), before, "nothing was recorded");
}

#[test]
fn the_requests_that_answered_500_now_answer_400() {
    let app = TestApp::spawn();
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "sam", "staff", PASSWORD);
    // No account needed.
    let mut anyone = Client::new(&app);
    anyone.get("/login");
    let res = anyone.post("/login", &[("username", "adm\0in"), ("password", "x")]);
    assert_eq!(res.status, 400, "{}", res.body);

    let mut analyst = Client::new(&app);
    analyst.login("ana", PASSWORD);
    for path in [
        "/threats/sessions/%00",
        "/threats/files/a%00b",
        "/threats/signatures/a%00b",
        "/threats/sessions?protocol=%00",
        "/threats/sessions?ip=%00",
        "/threats/top/hash/hits?key=%00",
        "/history/session/%00",
    ] {
        assert_eq!(analyst.get(path).status, 400, "{path}");
    }

    let mut staff = Client::new(&app);
    staff.login("sam", PASSWORD);
    staff.get("/scholarships/funds");
    for (name, criteria) in [("Merit\0", "Good"), ("Merit", "Go\0od")] {
        let res = staff.post(
            "/scholarships/funds",
            &[
                ("name", name),
                ("term", "2027-fall"),
                ("budget", "1000"),
                ("criteria", criteria),
                ("opens_on", "2026-01-01"),
                ("closes_on", "2026-12-31"),
                ("command_id", "k1"),
            ],
        );
        assert_eq!(res.status, 400, "{}", res.body);
    }
    let res = staff.post("/enrollment/actions/withdraw", &[("command_id", "\0")]);
    assert_eq!(res.status, 400, "{}", res.body);

    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/signatures");
    let res = admin.post(
        "/admin/signatures",
        &[("name", "S"), ("group", "g"), ("rule_text", "a\0b")],
    );
    assert_eq!(res.status, 400, "{}", res.body);
    let res = admin.post(
        "/admin/clearances",
        &[("username", "an\0a"), ("group", "g"), ("action", "grant")],
    );
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(count_events(&app, "FundCreated"), 0);
    assert_eq!(count_events(&app, "SignatureCreated"), 0);
}

fn count_all(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.state.pool.get().unwrap();
    heyboss::schema::events::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

#[test]
fn every_text_field_keeps_one_rule_and_direction_controls_are_shown() {
    let app = TestApp::spawn();
    create_user(&app, "sam", "staff", PASSWORD);
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("sam", PASSWORD);
    staff.get("/scholarships/funds");
    // BEL and ESC in a fund's name or criteria were accepted; other fields refused them.
    for (name, criteria, says) in [
        (
            "Merit\u{7}",
            "Good",
            "The fund name contains a control character (U+0007)",
        ),
        (
            "Merit",
            "Good \u{1b}[31mred",
            "The criteria contains a control character (U+001B)",
        ),
        (
            "Mer\u{202E}it",
            "Good",
            "The fund name contains a text direction control (U+202E)",
        ),
    ] {
        let res = staff.post(
            "/scholarships/funds",
            &[
                ("name", name),
                ("term", "2027-fall"),
                ("budget", "1000"),
                ("criteria", criteria),
                ("opens_on", "2026-01-01"),
                ("closes_on", "2026-12-31"),
            ],
        );
        assert_eq!(res.status, 422, "{}", res.body);
        res.assert_contains(says);
    }
    assert_eq!(count_events(&app, "FundCreated"), 0);

    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/signatures");
    let res = admin.post(
        "/admin/signatures",
        &[
            ("name", "S"),
            ("group", "g"),
            ("rule_text", "alert \u{1b} tcp"),
        ],
    );
    assert_eq!(res.status, 422, "{}", res.body);
    res.assert_contains("The rule text contains a control character (U+001B)");
    admin.get("/admin/sensors");
    let res = admin.post("/admin/sensors", &[("name", "edge\u{202E}1")]);
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(count_events(&app, "SignatureCreated"), 0);
    assert_eq!(count_events(&app, "SensorRegistered"), 0);

    // A sensor reports what it saw; the analyst sees the direction control as a mark.
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx =
            heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli));
        heyboss::threats::service::set_signature(
            &mut conn,
            &app.state.store,
            &ctx,
            "sig",
            "alpha",
            None,
            None,
        )
        .unwrap();
        heyboss::threats::service::change_clearance(
            &mut conn,
            &app.state.store,
            &ctx,
            "ana",
            "alpha",
            true,
        )
        .unwrap();
        heyboss::threats::service::create_sensor(&mut conn, &app.state.store, &ctx, "edge")
            .unwrap()
            .1
    };
    let ev = |t: &str, data: serde_json::Value| serde_json::json!({"id": uuid::Uuid::new_v4(), "type": t, "data": data});
    let now = chrono::Utc::now().to_rfc3339();
    let posted = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({"events": [
            ev("SessionDiscovered", serde_json::json!({"session_id": "s1", "start_time": now, "protocol": "smtp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 25})),
            ev("FileDiscovered", serde_json::json!({"file_id": "f1", "session_id": "s1", "md5": "44d88612fea8a8f36de82e1278abb02f", "filename": "invoice\u{202E}fdp.exe", "file_type": "pe", "size_bytes": 1})),
            ev("FileScored", serde_json::json!({"file_id": "f1", "session_id": "s1", "integration": "av", "score": 90, "signature": "sig"})),
        ]}))
        .unwrap();
    assert_eq!(posted.status(), 200);
    let mut analyst = Client::new(&app);
    analyst.login("ana", PASSWORD);
    for path in [
        "/threats/top/hash",
        "/threats/files/f1",
        "/threats/sessions/s1",
        "/threats/top/hash/hits?key=44d88612fea8a8f36de82e1278abb02f",
    ] {
        let page = analyst.get(path);
        assert_eq!(page.status, 200, "{path}");
        page.assert_contains("invoice[U+202E]fdp.exe");
        assert!(
            !page.body.contains('\u{202E}'),
            "{path} shows the raw override"
        );
    }
}
