//! Accounts under attack, over real HTTP: the throttles hold under concurrency and on every
//! password check, sign-ups are limited per address, and a username cannot forge a log line.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{count_events, create_user, Client, TestApp, PASSWORD};
use heyboss::accounts::throttle::{
    MAX_FAILURES_PER_IP, MAX_FAILURES_PER_USERNAME, MAX_SIGNUPS_PER_IP,
};

/// Post the sign-in form from `n` browsers at once (each `username(i)`, a wrong password) and
/// count the answers by status.
fn parallel_wrong_sign_ins(
    app: &TestApp,
    n: usize,
    username: fn(usize) -> String,
) -> (usize, usize) {
    let browsers: Vec<Client> = (0..n)
        .map(|_| {
            let mut c = Client::new(app);
            c.get("/login");
            c
        })
        .collect();
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let statuses: Vec<u16> = browsers
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                c.post(
                    "/login",
                    &[("username", &username(i)), ("password", "a wrong guess")],
                )
                .status
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + throttled, n, "unexpected answers: {statuses:?}");
    (checked, throttled)
}

#[test]
fn thirty_parallel_guesses_at_one_username_get_exactly_five_checks() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let (checked, throttled) = parallel_wrong_sign_ins(&app, 30, |_| "ada".into());
    assert_eq!(checked as i64, MAX_FAILURES_PER_USERNAME);
    assert_eq!(throttled, 30 - checked);
    // The right password is refused too until the window passes.
    let mut c = Client::new(&app);
    c.get("/login");
    let res = c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(res.status, 429);
    res.assert_contains("Too many failed sign-in attempts");
}

#[test]
fn thirty_parallel_guesses_from_one_address_get_exactly_twenty_checks() {
    let app = TestApp::spawn();
    let (checked, _) = parallel_wrong_sign_ins(&app, 30, |i| format!("user{i}"));
    assert_eq!(checked as i64, MAX_FAILURES_PER_IP);
}

#[test]
fn a_stolen_session_cannot_guess_the_current_password() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let mut thief = Client::new(&app);
    thief.login("ada", PASSWORD);
    let change = |c: &mut Client, current: &str| {
        c.get("/account");
        c.post(
            "/account/password",
            &[
                ("current_password", current),
                ("new_password", "the thief's own password"),
                ("confirm_password", "the thief's own password"),
            ],
        )
    };
    for guess in 0..MAX_FAILURES_PER_USERNAME {
        let res = change(&mut thief, &format!("guess number {guess}"));
        assert_eq!(res.status, 422, "guess {guess}: {}", res.body);
        res.assert_contains("The current password is wrong.");
    }
    // The limit is reached: even the right password is not checked.
    let res = change(&mut thief, PASSWORD);
    assert_eq!(res.status, 429, "{}", res.body);
    res.assert_contains("Too many wrong passwords");
    assert_eq!(count_events(&app, "PasswordChanged"), 0);
    // The same account cannot be guessed at through the sign-in form either.
    let mut c = Client::new(&app);
    c.get("/login");
    let res = c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    assert_eq!(res.status, 429);
    // Other people at the same address still sign in: one account's guesses lock that account.
    create_user(&app, "bob", "staff", PASSWORD);
    Client::new(&app).login("bob", PASSWORD);
    // The owner's password still works once the window has passed (simulated by clearing it):
    // nothing was changed.
    clear_failures(&app);
    let mut owner = Client::new(&app);
    owner.login("ada", PASSWORD);
}

#[test]
fn a_right_current_password_changes_it_and_forgives_earlier_typos() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.login("ada", PASSWORD);
    c.get("/account");
    let typo = c.post(
        "/account/password",
        &[
            ("current_password", "correct horse battery!"),
            ("new_password", "a brand new passphrase"),
            ("confirm_password", "a brand new passphrase"),
        ],
    );
    assert_eq!(typo.status, 422);
    c.get("/account");
    let done = c.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "a brand new passphrase"),
            ("confirm_password", "a brand new passphrase"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(count_events(&app, "PasswordChanged"), 1);
    assert_eq!(failures_of(&app, "ada"), 0);
}

#[test]
fn sign_ups_from_one_address_are_limited() {
    let app = TestApp::spawn();
    create_user(&app, "taken", "staff", PASSWORD);
    let mut c = Client::new(&app);
    let sign_up = |c: &mut Client, username: &str| {
        c.get("/signup");
        c.post(
            "/signup",
            &[
                ("username", username),
                ("display_name", "Probe"),
                ("email", ""),
                ("password", PASSWORD),
                ("term", "2027-fall"),
            ],
        )
    };
    for i in 0..MAX_SIGNUPS_PER_IP {
        // Probing a taken name, then creating accounts: every attempt counts.
        let res = if i % 2 == 0 {
            sign_up(&mut c, "taken")
        } else {
            let mut fresh = Client::new(&app);
            sign_up(&mut fresh, &format!("student{i}"))
        };
        assert!(
            [303, 422].contains(&res.status),
            "attempt {i}: {} {}",
            res.status,
            res.body
        );
    }
    let users_before = count_events(&app, "UserRegistered");
    let res = sign_up(&mut c, "one-too-many");
    assert_eq!(res.status, 429, "{}", res.body);
    res.assert_contains("Too many sign-ups from your address");
    // The form keeps what was typed, and nothing was recorded.
    res.assert_contains("one-too-many");
    assert_eq!(count_events(&app, "UserRegistered"), users_before);
}

/// A sign-in whose username carries a line break and a terminal escape writes one log line with
/// both escaped: it cannot forge a second line, nor colour the terminal.
#[test]
fn a_username_cannot_forge_a_log_line() {
    let db = heyboss::testing::TestDatabase::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env("HEYBOSS_HOME", env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let forged = "x\n2026-12-05T09:00:00Z  INFO admin signed in \u{1b}[31mred";
    let mut c = Client::new_at(&base);
    c.get("/login");
    let res = c.post("/login", &[("username", forged), ("password", "wrong")]);
    assert_eq!(res.status, 401);
    server.kill().unwrap();
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    server.wait().unwrap();
    assert!(
        log.contains("sign-in refused"),
        "the refusal is not logged: {log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("2026-12-05T09:00:00Z")),
        "a forged line: {log}"
    );
    assert!(!log.contains('\u{1b}'), "a raw escape: {log:?}");
    assert!(
        log.contains(r"x\n2026-12-05T09:00:00Z  INFO admin signed in \u{1b}[31mred"),
        "the username is not shown escaped: {log}"
    );
}

fn failures_of(app: &TestApp, username: &str) -> i64 {
    use diesel::prelude::*;
    use heyboss::schema::login_failures;
    let mut conn = app.state.pool.get().unwrap();
    login_failures::table
        .filter(login_failures::username.eq(username))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

fn clear_failures(app: &TestApp) {
    use diesel::prelude::*;
    let mut conn = app.state.pool.get().unwrap();
    diesel::delete(heyboss::schema::login_failures::table)
        .execute(&mut conn)
        .unwrap();
}
