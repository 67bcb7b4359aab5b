//! Accounts over real HTTP: sign-in, sessions, CSRF, throttling, admin changes as events, bad input.

mod common;

use common::{count_events, create_user, Client, TestApp, PASSWORD};

#[test]
fn the_login_page_carries_a_csrf_token_and_security_headers() {
    let app = TestApp::spawn();
    let mut c = Client::new(&app);
    let res = c.get("/login");
    assert_eq!(res.status, 200);
    res.assert_contains("name=\"csrf_token\"");
    assert_eq!(c.csrf.len(), 64);
    let csp = res.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(res.header("x-frame-options"), Some("DENY"));
    assert!(res.header("x-request-id").is_some());
}

#[test]
fn signing_in_starts_a_fresh_httponly_session_and_signing_out_ends_it() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "admin", PASSWORD);
    let mut c = Client::new(&app);

    c.get("/login");
    let res = c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/admin/accounts"));
    let set_cookie = res
        .all_headers("set-cookie")
        .into_iter()
        .find(|h| h.starts_with("heyboss_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let first = c.cookie("heyboss_session").unwrap();

    c.get("/admin/accounts").assert_contains("ada");

    // Signing in again rotates the id; the old one is dead.
    c.get("/login");
    c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    let second = c.cookie("heyboss_session").unwrap();
    assert_ne!(first, second);
    let mut stale = Client::new(&app);
    stale.get("/login");
    let mut conn = app.state.pool.get().unwrap();
    assert!(heyboss::accounts::sessions::load(&mut conn, &first)
        .unwrap()
        .is_none());
    assert!(heyboss::accounts::sessions::load(&mut conn, &second)
        .unwrap()
        .is_some());

    c.get("/admin/accounts");
    let res = c.post("/logout", &[]);
    assert_eq!(res.status, 303);
    assert!(heyboss::accounts::sessions::load(&mut conn, &second)
        .unwrap()
        .is_none());
    let res = c.get("/admin/accounts");
    assert_eq!(res.status, 303, "signed out: back to the login page");
    assert_eq!(res.header("location"), Some("/login"));
}

#[test]
fn a_wrong_password_is_refused_with_a_message() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.get("/login");
    let res = c.post(
        "/login",
        &[("username", "ada"), ("password", "not the password")],
    );
    assert_eq!(res.status, 401);
    res.assert_contains("The username or password is wrong.");
    assert!(c.cookie("heyboss_session").is_none());
    let res = c.post(
        "/login",
        &[("username", "nobody"), ("password", "whatever else")],
    );
    assert_eq!(res.status, 401);
    res.assert_contains("The username or password is wrong.");
}

#[test]
fn five_failures_lock_the_username_even_for_the_right_password() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.get("/login");
    for _ in 0..5 {
        assert_eq!(
            c.post(
                "/login",
                &[("username", "ada"), ("password", "guess guess")]
            )
            .status,
            401
        );
    }
    let res = c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(res.status, 429);
    res.assert_contains("Too many failed sign-in attempts");
    // Another username from the same address is not yet locked.
    create_user(&app, "bob", "staff", PASSWORD);
    assert_eq!(
        c.post("/login", &[("username", "bob"), ("password", PASSWORD)])
            .status,
        303
    );
}

#[test]
fn twenty_failures_from_one_address_lock_every_username() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.get("/login");
    for i in 0..20 {
        let name = format!("user{i}");
        assert_eq!(
            c.post(
                "/login",
                &[("username", &name), ("password", "guess guess")]
            )
            .status,
            401
        );
    }
    assert_eq!(
        c.post("/login", &[("username", "ada"), ("password", PASSWORD)])
            .status,
        429
    );
}

#[test]
fn state_changing_requests_without_the_csrf_token_change_nothing() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    let before = count_events(&app, "UserRegistered");
    let fields = [
        ("username", "mallory"),
        ("display_name", "M"),
        ("email", ""),
        ("role", "admin"),
        ("password", "long enough password"),
    ];
    let res = c.post_without_csrf("/admin/accounts", &fields);
    assert_eq!(res.status, 403);
    res.assert_contains("CSRF");
    let mut wrong: Vec<(&str, &str)> = vec![("csrf_token", "0000")];
    wrong.extend_from_slice(&fields);
    assert_eq!(c.post_without_csrf("/admin/accounts", &wrong).status, 403);
    assert_eq!(count_events(&app, "UserRegistered"), before);

    // The login form is protected too (double-submit cookie).
    let mut anon = Client::new(&app);
    let res = anon.post_without_csrf("/login", &[("username", "root"), ("password", PASSWORD)]);
    assert_eq!(res.status, 403);

    // HTMX sends the token as a header.
    let res = c.post_htmx("/admin/accounts", &fields);
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(count_events(&app, "UserRegistered"), before + 1);
}

#[test]
fn an_admin_creates_accounts_and_changes_roles_as_events_with_the_admin_as_actor() {
    let app = TestApp::spawn();
    let admin_id = create_user(&app, "root", "admin", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    c.get("/admin/accounts");
    let res = c.post(
        "/admin/accounts",
        &[
            ("username", "sam"),
            ("display_name", "Sam Staff"),
            ("email", "sam@example.edu"),
            ("role", "staff"),
            ("password", "sams long password"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    c.get("/admin/accounts")
        .assert_contains("Account sam created.")
        .assert_contains("Sam Staff");

    let mut conn = app.state.pool.get().unwrap();
    let sam = heyboss::accounts::queries::find_by_username(&mut conn, "sam")
        .unwrap()
        .unwrap();
    let page = c.get(&format!("/admin/accounts/{}", sam.id));
    page.assert_contains("<strong>Account created: staff</strong>");
    let res = c.post(
        &format!("/admin/accounts/{}/role", sam.id),
        &[("role", "analyst")],
    );
    assert_eq!(res.status, 303);
    c.get(&format!("/admin/accounts/{}", sam.id))
        .assert_contains("Role changed to analyst.")
        .assert_contains("<strong>Role changed from staff to analyst</strong>");

    let history = heyboss::es::store::load_stream(&mut conn, "user", &sam.id.to_string()).unwrap();
    let role_change = history
        .iter()
        .find(|e| e.event_type == "RoleChanged")
        .unwrap();
    assert_eq!(role_change.payload["from"], "staff");
    assert_eq!(role_change.payload["to"], "analyst");
    assert_eq!(role_change.metadata["actor"]["id"], admin_id.to_string());
    assert!(role_change.metadata["request_id"].is_string());
    // The log holds no password material.
    for e in &history {
        assert!(!e.payload.to_string().contains("argon2"));
    }

    // The new account signs in with its role.
    let mut sam_client = Client::new(&app);
    let res = sam_client.login("sam", "sams long password");
    assert_eq!(res.header("location"), Some("/threats/top/hash"));
}

#[test]
fn bad_account_input_re_renders_the_form_with_a_message_and_changes_nothing() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    c.get("/admin/accounts");
    let before = count_events(&app, "UserRegistered");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![
                ("username", "x".into()),
                ("password", "long enough pass".into()),
            ],
            "3 to 32 characters",
        ),
        (
            vec![
                ("username", "root".into()),
                ("password", "long enough pass".into()),
            ],
            "is taken",
        ),
        (
            vec![("username", "newbie".into()), ("password", "short".into())],
            "at least 10 characters",
        ),
        (
            vec![
                ("username", "newbie".into()),
                ("password", "long enough pass".into()),
                ("email", "not-mail".into()),
            ],
            "not an email address",
        ),
        (
            vec![
                ("username", "newbie".into()),
                ("password", "long enough pass".into()),
                ("display_name", "n".repeat(500)),
            ],
            "1 to 100 characters",
        ),
        (
            vec![
                ("username", "newbie".into()),
                ("password", "long enough pass".into()),
                ("role", "overlord".into()),
            ],
            "unknown role",
        ),
    ];
    for (fields, message) in cases {
        let mut all: Vec<(&str, &str)> =
            vec![("display_name", ""), ("email", ""), ("role", "staff")];
        all.retain(|(k, _)| !fields.iter().any(|(f, _)| f == k));
        all.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
        let res = c.post("/admin/accounts", &all);
        assert_eq!(res.status, 422, "{message}");
        res.assert_contains(message).assert_contains("<form");
    }
    assert_eq!(count_events(&app, "UserRegistered"), before);

    // A missing field and invalid UTF-8: a 400 page that says what is wrong, no 500.
    let res = c.post("/admin/accounts", &[("username", "x")]);
    assert_eq!(res.status, 400);
    res.assert_contains("missing field");
    let mut body = format!("csrf_token={}&username=", c.csrf).into_bytes();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b"&display_name=&email=&role=staff&password=long+enough+pass");
    let res = c.post_raw(
        "/admin/accounts",
        "application/x-www-form-urlencoded",
        &body,
    );
    assert_eq!(res.status, 400, "{}", res.body);
    res.assert_contains("not valid UTF-8");
    assert_eq!(count_events(&app, "UserRegistered"), before);
}

#[test]
fn a_double_submitted_form_is_applied_once() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    c.get(&format!("/admin/accounts/{sam}"));
    let key = uuid::Uuid::new_v4().to_string();
    let path = format!("/admin/accounts/{sam}/role");
    assert_eq!(
        c.post(&path, &[("role", "analyst"), ("command_id", &key)])
            .status,
        303
    );
    assert_eq!(
        c.post(&path, &[("role", "analyst"), ("command_id", &key)])
            .status,
        303
    );
    assert_eq!(count_events(&app, "RoleChanged"), 1);
    // Without the same key, the repeat is a real second command, rejected by the decider.
    let res = c.post(&path, &[("role", "analyst")]);
    assert_eq!(res.status, 422);
    res.assert_contains("already has the role analyst");
}

#[test]
fn a_password_reset_ends_the_users_sessions_and_the_new_password_works() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut sam_client = Client::new(&app);
    sam_client.login("sam", PASSWORD);
    assert_eq!(sam_client.get("/account").status, 200);

    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    admin.get(&format!("/admin/accounts/{sam}"));
    let res = admin.post(
        &format!("/admin/accounts/{sam}/password"),
        &[("new_password", "a brand new secret")],
    );
    assert_eq!(res.status, 303);

    assert_eq!(
        sam_client.get("/account").status,
        303,
        "the old session ended"
    );
    let mut again = Client::new(&app);
    again.get("/login");
    assert_eq!(
        again
            .post("/login", &[("username", "sam"), ("password", PASSWORD)])
            .status,
        401
    );
    again.login("sam", "a brand new secret");
    assert_eq!(count_events(&app, "PasswordChanged"), 1);
}

#[test]
fn a_user_changes_their_own_password_and_other_sessions_end() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "student", PASSWORD);
    let mut laptop = Client::new(&app);
    laptop.login("ada", PASSWORD);
    let mut phone = Client::new(&app);
    phone.login("ada", PASSWORD);

    laptop.get("/account");
    let wrong = laptop.post(
        "/account/password",
        &[
            ("current_password", "not it at all"),
            ("new_password", "another long one"),
            ("confirm_password", "another long one"),
        ],
    );
    assert_eq!(wrong.status, 422);
    wrong.assert_contains("The current password is wrong.");
    let mismatch = laptop.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "another long one"),
            ("confirm_password", "another long two"),
        ],
    );
    assert_eq!(mismatch.status, 422);
    mismatch.assert_contains("differ");

    let ok = laptop.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "another long one"),
            ("confirm_password", "another long one"),
        ],
    );
    assert_eq!(ok.status, 303);
    laptop
        .get("/account")
        .assert_contains("Your password is changed.");
    assert_eq!(phone.get("/account").status, 303, "the other session ended");
}

#[test]
fn a_deactivated_account_cannot_sign_in_and_its_sessions_end() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut sam_client = Client::new(&app);
    sam_client.login("sam", PASSWORD);

    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    admin.get(&format!("/admin/accounts/{sam}"));
    assert_eq!(
        admin
            .post(
                &format!("/admin/accounts/{sam}/active"),
                &[("active", "false")]
            )
            .status,
        303
    );
    assert_eq!(sam_client.get("/account").status, 303);
    let mut again = Client::new(&app);
    again.get("/login");
    assert_eq!(
        again
            .post("/login", &[("username", "sam"), ("password", PASSWORD)])
            .status,
        401
    );

    admin.get(&format!("/admin/accounts/{sam}"));
    assert_eq!(
        admin
            .post(
                &format!("/admin/accounts/{sam}/active"),
                &[("active", "true")]
            )
            .status,
        303
    );
    again.login("sam", PASSWORD);
    assert_eq!(count_events(&app, "UserDeactivated"), 1);
    assert_eq!(count_events(&app, "UserReactivated"), 1);
}

#[test]
fn pages_are_limited_by_role_and_unknown_pages_are_404() {
    let app = TestApp::spawn();
    create_user(&app, "stu", "student", PASSWORD);
    let mut c = Client::new(&app);
    c.login("stu", PASSWORD);
    let res = c.get("/admin/accounts");
    assert_eq!(res.status, 403);
    res.assert_contains("for admin accounts only");
    let res = c.get("/no/such/page");
    assert_eq!(res.status, 404);
    res.assert_contains("<h1>Not found</h1>");

    // An HTMX request gets a fragment aimed at the message area, not a whole page.
    let res = c.get_htmx("/no/such/page");
    assert_eq!(res.status, 404);
    assert_eq!(res.header("hx-retarget"), Some("#messages"));
    assert!(!res.body.contains("<html"), "{}", res.body);

    // Not signed in: pages redirect to the login page.
    let mut anon = Client::new(&app);
    let res = anon.get("/account");
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/login"));
}

#[test]
fn healthz_reports_the_database() {
    let app = TestApp::spawn();
    let mut c = Client::new(&app);
    let res = c.get("/healthz");
    assert_eq!(res.status, 200);
    assert_eq!(
        res.json(),
        serde_json::json!({"status": "ok", "database": "ok"})
    );
}

#[test]
fn the_cli_creates_users_with_the_cli_as_actor() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let db = heyboss::testing::TestDatabase::new();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heyboss"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &[
            "users",
            "create",
            "--username",
            "ada",
            "--role",
            "staff",
            "--password-stdin",
        ],
        "a long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created staff ada"));

    let out = run(
        &[
            "users",
            "create",
            "--username",
            "ada",
            "--role",
            "staff",
            "--password-stdin",
        ],
        "a long password\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
    let out = run(
        &[
            "users",
            "create",
            "--username",
            "bob",
            "--role",
            "king",
            "--password-stdin",
        ],
        "a long password\n",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role"));

    let mut conn = db.connect();
    let user = heyboss::accounts::queries::find_by_username(&mut conn, "ada")
        .unwrap()
        .unwrap();
    assert_eq!(user.role, "staff");
    let events = heyboss::es::store::load_stream(&mut conn, "user", &user.id.to_string()).unwrap();
    assert_eq!(events[0].metadata["actor"]["kind"], "cli");
    assert!(
        heyboss::accounts::service::verify_password(&mut conn, user.id, "a long password").unwrap()
    );
}

#[test]
fn an_unexpected_failure_is_an_opaque_500_page() {
    use diesel::RunQueryDsl;
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    c.get(&format!("/admin/accounts/{sam}"));
    // Break the store underneath the running app.
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query("ALTER TABLE events RENAME TO events_gone")
        .execute(&mut conn)
        .unwrap();
    let res = c.post(
        &format!("/admin/accounts/{sam}/role"),
        &[("role", "analyst")],
    );
    assert_eq!(res.status, 500);
    res.assert_contains("Something went wrong on our side");
    assert!(
        !res.body.contains("events_gone") && !res.body.contains("relation"),
        "no internals leak: {}",
        res.body
    );
    let res = c.post_htmx(
        &format!("/admin/accounts/{sam}/role"),
        &[("role", "analyst")],
    );
    assert_eq!(res.status, 500);
    assert_eq!(res.header("hx-retarget"), Some("#messages"));
}

#[test]
fn an_expired_session_sends_the_user_to_sign_in_and_changes_nothing() {
    use diesel::RunQueryDsl;
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.login("root", PASSWORD);
    c.get(&format!("/admin/accounts/{sam}"));
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query("UPDATE sessions SET expires_at = now() - interval '1 minute'")
        .execute(&mut conn)
        .unwrap();
    let res = c.post(
        &format!("/admin/accounts/{sam}/role"),
        &[("role", "analyst")],
    );
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/login"));
    assert_eq!(count_events(&app, "RoleChanged"), 0);
    c.get("/login")
        .assert_contains("Please sign in to continue");
}

/// Every signed-in request looks up its session first, through `request_viewer_proc`, whose plans are
/// kept for the connection's life. A kept plan made while the tables were nearly empty (analyzed
/// then, as nothing analyzes them later with autovacuum off) must not read them whole once they
/// have grown: each lookup still fetches one session and one user through the primary keys.
#[test]
fn the_session_lookup_reads_one_row_a_table_after_the_tables_grew_past_their_statistics() {
    use diesel::prelude::*;
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Reads {
        #[diesel(sql_type = diesel::sql_types::Text)]
        relname: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        seq_scan: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        idx_tup_fetch: i64,
    }
    fn reads(conn: &mut PgConnection) -> Vec<Reads> {
        diesel::sql_query(
            "SELECT relname::text, seq_scan, idx_tup_fetch FROM pg_stat_xact_user_tables \
             WHERE relname IN ('sessions', 'users') ORDER BY relname",
        )
        .load(conn)
        .unwrap()
    }
    let app = TestApp::spawn();
    let ada = create_user(&app, "ada", "admin", PASSWORD);
    let mut c = Client::new(&app);
    c.login("ada", PASSWORD);
    let token = c.cookie("heyboss_session").unwrap();
    let mut conn = app.state.pool.get().unwrap();
    let load = |conn: &mut PgConnection| {
        heyboss::accounts::sessions::load(conn, &token)
            .unwrap()
            .expect("ada's session")
    };

    // Statistics of two nearly empty tables, and the plans made from them on this connection.
    diesel::sql_query("ANALYZE sessions, users")
        .execute(&mut conn)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(load(&mut conn).username, "ada");
    }
    // The tables grow; nothing analyzes them.
    diesel::sql_query(
        "INSERT INTO users (id, username, display_name, email, role, active, created_at, updated_at) \
         SELECT gen_random_uuid(), 'user' || g, 'User', '', 'student', true, now(), now() \
         FROM generate_series(1, 20000) g",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at) \
         SELECT 'other' || g, $1, 'token', now() + interval '1 hour' \
         FROM generate_series(1, 20000) g",
    )
    .bind::<diesel::sql_types::Uuid, _>(ada)
    .execute(&mut conn)
    .unwrap();

    conn.transaction(|conn| {
        let before = reads(conn);
        let viewer = load(conn);
        assert_eq!((viewer.user_id, viewer.username.as_str()), (ada, "ada"));
        let after = reads(conn);
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(
                a.seq_scan, b.seq_scan,
                "no sequential scan of {}",
                a.relname
            );
            assert_eq!(
                a.idx_tup_fetch - b.idx_tup_fetch,
                1,
                "one row of {} read: {before:?} then {after:?}",
                a.relname
            );
        }
        diesel::QueryResult::Ok(())
    })
    .unwrap();

    // An expired session and a deactivated account find no viewer.
    diesel::sql_query("UPDATE users SET active = false WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(ada)
        .execute(&mut conn)
        .unwrap();
    assert!(heyboss::accounts::sessions::load(&mut conn, &token)
        .unwrap()
        .is_none());
    diesel::sql_query("UPDATE users SET active = true WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(ada)
        .execute(&mut conn)
        .unwrap();
    assert!(heyboss::accounts::sessions::load(&mut conn, &token)
        .unwrap()
        .is_some());
    diesel::sql_query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .unwrap();
    assert!(heyboss::accounts::sessions::load(&mut conn, &token)
        .unwrap()
        .is_none());
}
