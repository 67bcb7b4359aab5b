//! Two `heyboss serve` processes behind a real HAProxy (Debian's package): sign-ins, form commands
//! and sensor batches go through the balancer while one instance is killed (SIGKILL) mid-load.
//! Nothing acknowledged is lost, nothing retried is recorded twice, and every session made before
//! the kill still works, because every piece of state lives in PostgreSQL and every command carries
//! its idempotency key (a form's `command_id`, a sensor event's `id`).
//!
//! Ignored by plain `cargo test` (it needs `haproxy`); `bash scripts/test.sh` installs HAProxy and runs
//! it with the browser tests.
#![allow(clippy::result_large_err)] // ureq::Error is what ureq returns; boxing it here buys nothing

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use heyboss::testing::{csrf_token, TestDatabase};
use serde_json::json;

const PASSWORD: &str = "correct horse battery staple";
const STAFF: usize = 3;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian puts HAProxy in /usr/sbin, which not every PATH holds.
fn haproxy_command() -> Command {
    let sbin = Path::new("/usr/sbin/haproxy");
    Command::new(if sbin.exists() {
        sbin
    } else {
        Path::new("haproxy")
    })
}

fn heyboss(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heyboss"));
    cmd.env("DATABASE_URL", url)
        .env("HEYBOSS_HOME", env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn");
    cmd
}

/// Run a CLI command to completion and return its standard output.
fn cli(url: &str, args: &[&str], stdin: &str) -> String {
    let mut child = heyboss(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "heyboss {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// A process killed when the test ends, however it ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until_up(address: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = ureq::get(&format!("{address}/healthz")).call() {
            if r.status() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{address} did not come up");
}

fn serve(url: &str) -> (Process, String) {
    let port = free_port();
    let child = heyboss(url)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    wait_until_up(&address);
    (process, address)
}

/// HAProxy in front of both instances: health checks every 200 ms, and a request whose server
/// refused the connection or closed it without an answer retried on the other one. Retrying a POST
/// is safe here only because every command carries its idempotency key.
fn haproxy(dir: &Path, servers: &[&str]) -> (Process, String) {
    let port = free_port();
    let mut config = format!(
        "global\n  maxconn 512\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 retries 3\n  option redispatch 1\n  retry-on conn-failure empty-response\n\
         frontend web\n  bind 127.0.0.1:{port}\n  default_backend heyboss\n\
         backend heyboss\n  balance roundrobin\n  option httpchk GET /healthz\n\
         \x20 http-check expect status 200\n  default-server inter 200ms fall 1 rise 2\n"
    );
    for (i, s) in servers.iter().enumerate() {
        let addr = s.trim_start_matches("http://");
        config.push_str(&format!("  server app{i} {addr} check\n"));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let check = haproxy_command()
        .args(["-c", "-q", "-f"])
        .arg(&path)
        .status()
        .expect("haproxy is installed (bash scripts/setup.sh installs it)");
    assert!(check.success(), "the HAProxy configuration is valid");
    let child = haproxy_command()
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    let process = Process(child);
    wait_until_up(&address);
    (process, address)
}

/// What a well-behaved client does with an answer it did not get: send the same request again
/// (same idempotency key) after a short pause. Returns the final status and body, and how many
/// times it had to retry.
fn with_retries(
    mut send: impl FnMut() -> Result<ureq::Response, ureq::Error>,
) -> (u16, String, usize) {
    let mut retries = 0;
    loop {
        match send() {
            Ok(r) => {
                let status = r.status();
                return (status, r.into_string().unwrap_or_default(), retries);
            }
            Err(ureq::Error::Status(code, r))
                if [502, 503, 504].contains(&code) && retries < 20 =>
            {
                let _ = r.into_string();
            }
            Err(ureq::Error::Status(code, r)) => {
                return (code, r.into_string().unwrap_or_default(), retries)
            }
            Err(e) if retries < 20 => {
                let _ = e;
            }
            Err(e) => panic!("no answer after {retries} retries: {e}"),
        }
        retries += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(30))
        .build()
}

/// Sign in through the balancer; returns the browser (its cookie jar holds the session) and the
/// CSRF token of the signed-in pages.
fn sign_in(base: &str, username: &str) -> (ureq::Agent, String) {
    let agent = agent();
    let (status, page, _) = with_retries(|| agent.get(&format!("{base}/login")).call());
    assert_eq!(status, 200);
    let token = csrf_token(&page).expect("the sign-in form has a CSRF token");
    let (status, body, _) = with_retries(|| {
        agent.post(&format!("{base}/login")).send_form(&[
            ("csrf_token", &token),
            ("username", username),
            ("password", PASSWORD),
        ])
    });
    assert_eq!(status, 303, "sign-in of {username}: {body}");
    let (status, page, _) =
        with_retries(|| agent.get(&format!("{base}/scholarships/funds")).call());
    assert_eq!(status, 200, "the funds page after sign-in");
    (
        agent,
        csrf_token(&page).expect("a signed-in page has a CSRF token"),
    )
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
#[ignore = "needs haproxy: bash scripts/test.sh installs it and runs this test"]
fn two_instances_behind_haproxy_lose_nothing_when_one_is_killed_mid_load() {
    let db = TestDatabase::new();
    let dir = std::env::temp_dir().join(format!("heyboss-lb-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..STAFF {
        cli(
            &db.url,
            &[
                "users",
                "create",
                "--username",
                &format!("staff{i}"),
                "--role",
                "staff",
                "--password-stdin",
            ],
            PASSWORD,
        );
    }
    let token = cli(&db.url, &["sensors", "create", "--name", "edge-1"], "")
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();

    let (mut doomed, first) = serve(&db.url);
    let (_survivor, second) = serve(&db.url);
    let (_proxy, lb) = haproxy(&dir, &[&first, &second]);

    // Sessions made through the balancer before the kill (on either instance).
    let staff: Vec<(ureq::Agent, String)> = (0..STAFF)
        .map(|i| sign_in(&lb, &format!("staff{i}")))
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let retried = Arc::new(AtomicUsize::new(0));
    let acknowledged_funds = Arc::new(Mutex::new(Vec::<String>::new()));
    let acknowledged_sessions = Arc::new(Mutex::new(Vec::<String>::new()));
    let sign_ins = Arc::new(AtomicUsize::new(0));

    let mut threads = Vec::new();
    // Staff create funds: every form post carries its own command_id, kept across retries.
    for (t, (agent, csrf)) in staff.iter().cloned().enumerate() {
        let (lb, stop, retried, acked) = (
            lb.clone(),
            stop.clone(),
            retried.clone(),
            acknowledged_funds.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("Balanced fund {t}-{i}");
                let command_id = uuid::Uuid::new_v4().to_string();
                let (status, body, r) = with_retries(|| {
                    agent.post(&format!("{lb}/scholarships/funds")).send_form(&[
                        ("csrf_token", &csrf),
                        ("name", &name),
                        ("term", "2027-fall"),
                        ("budget", "1000"),
                        ("criteria", "Balanced"),
                        ("opens_on", "2020-01-01"),
                        ("closes_on", "2030-01-01"),
                        ("command_id", &command_id),
                    ])
                });
                retried.fetch_add(r, Ordering::Relaxed);
                assert_eq!(status, 303, "creating {name}: {body}");
                acked.lock().unwrap().push(name);
                i += 1;
            }
        }));
    }
    // A sensor posts batches; a retried batch repeats its event ids.
    {
        let (lb, stop, retried, acked, token) = (
            lb.clone(),
            stop.clone(),
            retried.clone(),
            acknowledged_sessions.clone(),
            token.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            let mut b = 0;
            while !stop.load(Ordering::Relaxed) {
                let ids: Vec<String> = (0..20).map(|i| format!("lb-{b}-{i}")).collect();
                let events: Vec<_> = ids
                    .iter()
                    .map(|id| {
                        json!({"id": uuid::Uuid::new_v4().to_string(), "type": "SessionDiscovered",
                        "data": {"session_id": id, "start_time": "2026-12-01T10:00:00Z", "protocol": "TCP",
                        "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2",
                        "source_port": 4444, "destination_port": 80}})
                    })
                    .collect();
                let body = json!({ "events": events }).to_string();
                let (status, answer, r) = with_retries(|| {
                    agent
                        .post(&format!("{lb}/api/v1/events"))
                        .set("Authorization", &format!("Bearer {token}"))
                        .set("Content-Type", "application/json")
                        .send_string(&body)
                });
                retried.fetch_add(r, Ordering::Relaxed);
                assert_eq!(status, 200, "batch {b}: {answer}");
                let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
                let counted = answer["accepted"].as_i64().unwrap() + answer["duplicates"].as_i64().unwrap();
                assert_eq!(counted, 20, "every event of batch {b} is accepted or a duplicate");
                acked.lock().unwrap().extend(ids);
                b += 1;
            }
        }));
    }
    // New sign-ins keep coming; each new session must work at once.
    {
        let (lb, stop, sign_ins) = (lb.clone(), stop.clone(), sign_ins.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (agent, _) = sign_in(&lb, &format!("staff{}", i % STAFF));
                let (status, page, _) = with_retries(|| agent.get(&format!("{lb}/account")).call());
                assert_eq!(status, 200);
                assert!(page.contains(&format!("staff{}", i % STAFF)));
                sign_ins.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }

    // Let the load run on both instances, then kill one without warning.
    let wait_for = |what: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !what() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(&|| acknowledged_funds.lock().unwrap().len() >= 30);
    let before_kill = acknowledged_funds.lock().unwrap().len();
    doomed.0.kill().unwrap();
    doomed.0.wait().unwrap();
    wait_for(&|| acknowledged_funds.lock().unwrap().len() >= before_kill + 60);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a client thread failed");
    }
    let funds = acknowledged_funds.lock().unwrap().clone();
    let sessions = acknowledged_sessions.lock().unwrap().clone();
    eprintln!(
        "{} funds and {} sensor sessions acknowledged, {} sign-ins, {} requests retried by the clients",
        funds.len(),
        sessions.len(),
        sign_ins.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed)
    );
    assert!(
        funds.len() >= before_kill + 60,
        "the load went on after the kill"
    );

    // Every acknowledged fund is recorded exactly once; nothing is recorded that was not asked for.
    let mut conn = db.connect();
    let recorded: Vec<String> = diesel::sql_query(
        "SELECT payload->>'name' AS name FROM events WHERE event_type = 'FundCreated'",
    )
    .load::<Named>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    let unique: HashSet<&String> = recorded.iter().collect();
    assert_eq!(unique.len(), recorded.len(), "no fund was created twice");
    for name in &funds {
        assert!(
            unique.contains(name),
            "acknowledged fund {name} is in the log"
        );
    }
    assert_eq!(
        recorded.len(),
        funds.len(),
        "every command was answered in the end, so every recorded fund was acknowledged"
    );
    // Every acknowledged sensor session is recorded exactly once.
    let discovered = diesel::sql_query(
        "SELECT count(DISTINCT payload->>'session_id') AS n FROM events \
         WHERE event_type = 'SessionDiscovered'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    let total = diesel::sql_query(
        "SELECT count(*) AS n FROM events WHERE event_type = 'SessionDiscovered'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n;
    assert_eq!(discovered, total, "no session was discovered twice");
    assert_eq!(
        total as usize,
        sessions.len(),
        "every acknowledged session, and only those"
    );

    // Every session made before the kill still works, whichever instance made it.
    for (i, (agent, _)) in staff.iter().enumerate() {
        let (status, page, _) = with_retries(|| agent.get(&format!("{lb}/account")).call());
        assert_eq!(status, 200, "staff{i}'s session survived the kill");
        assert!(page.contains(&format!("staff{i}")));
    }
    // And the read models equal their log.
    let verify = heyboss(&db.url)
        .args(["projections", "verify"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "projections verify after the kill: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
