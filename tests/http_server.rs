//! The HTTP server as clients and proxies meet it: idle connections are kept long enough to be
//! reused, and behind HTTPS every cookie is Secure and HSTS is sent.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{create_user, Client, TestApp, PASSWORD};

/// One GET on an open connection; the status line's code.
fn get(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, path: &str) -> Option<u16> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut status = String::new();
    if reader.read_line(&mut status).ok()? == 0 {
        return None;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    status.split(' ').nth(1)?.parse().ok()
}

#[test]
fn an_idle_connection_is_kept_for_a_client_that_reuses_it_after_seconds() {
    let app = TestApp::spawn();
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    assert_eq!(get(&mut stream, &mut reader, "/healthz"), Some(200));
    // Longer than actix-web's default keep-alive (5 s), which reset such a connection.
    std::thread::sleep(Duration::from_millis(6000));
    assert_eq!(
        get(&mut stream, &mut reader, "/healthz"),
        Some(200),
        "the same connection answers after 6 s idle"
    );
}

#[test]
fn behind_https_every_cookie_is_secure_and_hsts_is_sent() {
    let app = TestApp::spawn_with(|s| s.secure_cookies = true);
    create_user(&app, "ada", "admin", PASSWORD);
    let mut c = Client::new(&app);
    let login = c.get("/login");
    assert_eq!(
        login.header("strict-transport-security"),
        Some("max-age=31536000; includeSubDomains")
    );
    let mut cookies: Vec<String> = login
        .all_headers("set-cookie")
        .iter()
        .map(|s| s.to_string())
        .collect();
    // The session cookie, and a flash message (the account page's password form, refused).
    let signed_in = c.post("/login", &[("username", "ada"), ("password", PASSWORD)]);
    cookies.extend(
        signed_in
            .all_headers("set-cookie")
            .iter()
            .map(|s| s.to_string()),
    );
    c.get("/admin/accounts");
    let flashed = c.post(
        "/admin/accounts",
        &[
            ("username", "x"),
            ("display_name", ""),
            ("email", ""),
            ("role", "staff"),
            ("password", "short"),
        ],
    );
    let logout = c.post("/logout", &[]);
    cookies.extend(
        logout
            .all_headers("set-cookie")
            .iter()
            .map(|s| s.to_string()),
    );
    cookies.extend(
        flashed
            .all_headers("set-cookie")
            .iter()
            .map(|s| s.to_string()),
    );
    let names: Vec<&str> = cookies.iter().filter_map(|c| c.split('=').next()).collect();
    for name in ["heyboss_csrf", "heyboss_session", "heyboss_flash"] {
        assert!(names.contains(&name), "{name} was set: {cookies:#?}");
    }
    for cookie in &cookies {
        assert!(cookie.contains("; Secure"), "not Secure: {cookie}");
    }

    // Without the setting: no HSTS (plain HTTP must not promise HTTPS).
    let plain = TestApp::spawn();
    let res = Client::new(&plain).get("/login");
    assert_eq!(res.header("strict-transport-security"), None);
    assert!(res
        .all_headers("set-cookie")
        .iter()
        .all(|c| !c.contains("Secure")));
}
