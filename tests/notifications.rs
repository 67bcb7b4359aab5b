//! People hear about what happens to them: every step someone else takes for them becomes a
//! notification (a banner on their next page, a count in the navigation, the notifications
//! page), cleared once they have done what it asks; with mail on, also an email.

mod common;
mod scholarships_support;

use std::time::{Duration, Instant};

use common::{create_user, Client, Response, TestApp, PASSWORD};
use diesel::prelude::*;
use heyboss::schema::users;
use scholarships_support::{application_id, apply_and_award, create_open_fund};
use uuid::Uuid;

/// Sign up through the form (with an email address); the new student is signed in.
fn signup(app: &TestApp, username: &str) -> (Client, Uuid) {
    let mut c = Client::new(app);
    c.get("/signup");
    let res = c.post(
        "/signup",
        &[
            ("username", username),
            ("display_name", username),
            ("email", &format!("{username}@example.edu")),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(res.status, 303, "sign-up failed: {}", res.body);
    let mut conn = app.state.pool.get().unwrap();
    let id = users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(&mut conn)
        .unwrap();
    (c, id)
}

fn staff(app: &TestApp, username: &str) -> Client {
    create_user(app, username, "staff", PASSWORD);
    let mut c = Client::new(app);
    c.login(username, PASSWORD);
    c
}

/// `path` once it shows `text` (the notifications subscriber runs in the background).
fn wait_for(c: &mut Client, path: &str, text: &str) -> Response {
    let start = Instant::now();
    loop {
        let res = c.get(path);
        if res.body.contains(text) || start.elapsed() > Duration::from_secs(10) {
            assert!(
                res.body.contains(text),
                "{path} never showed {text:?}:\n{}",
                res.body
            );
            return res;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The unread count in the navigation, as a page shows it (0 when there is none).
fn unread(c: &mut Client) -> i64 {
    let body = c.get("/account").body;
    let marker = "id=\"unread-count\">";
    match body.find(marker) {
        None => 0,
        Some(at) => {
            let rest = &body[at + marker.len()..];
            rest[..rest.find('<').unwrap()].parse().unwrap()
        }
    }
}

fn wait_unread(c: &mut Client, expected: i64) {
    let start = Instant::now();
    while unread(c) != expected && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(unread(c), expected, "the unread count");
}

fn office(staff: &mut Client, student: Uuid, action: &str, fields: &[(&str, &str)]) {
    staff.get(&format!("/enrollment/students/{student}"));
    let res = staff.post(
        &format!("/enrollment/students/{student}/actions/{action}"),
        fields,
    );
    assert_eq!(res.status, 303, "{action}: {}", res.body);
}

fn own(student: &mut Client, action: &str, fields: &[(&str, &str)]) {
    student.get("/enrollment");
    let res = student.post(&format!("/enrollment/actions/{action}"), fields);
    assert_eq!(res.status, 303, "{action}: {}", res.body);
}

#[test]
fn a_student_hears_of_every_step_taken_for_them_and_the_banner_clears_once_acted_on() {
    let app = TestApp::spawn();
    let (mut ada, ada_id) = signup(&app, "ada");
    let mut stan = staff(&app, "stan");

    // Her own steps tell her nothing; the office's do, with the decision.
    own(&mut ada, "start", &[]);
    own(&mut ada, "submit", &[]);
    office(&mut stan, ada_id, "document", &[("document", "transcript")]);
    office(
        &mut stan,
        ada_id,
        "document",
        &[("document", "identification")],
    );
    office(&mut stan, ada_id, "decide", &[("decision", "admitted")]);
    wait_for(
        &mut ada,
        "/notifications",
        "You are admitted for the 2027-fall term. Accept the offer on your enrollment page.",
    )
    .assert_contains("The admissions office received your transcript.")
    .assert_contains("The admissions office received your identification.");
    wait_unread(&mut ada, 3);
    let banner = ada.get_htmx("/notifications/banner").body;
    assert!(banner.contains("Accept the offer"), "{banner}");
    // The banner is announced politely and never takes the focus.
    assert!(banner.contains("role=\"status\"") && banner.contains("data-keep-focus"));
    assert!(!banner.contains("autofocus") && !banner.contains("tabindex"));

    // An award, accepted: its "Accept or decline" goes from the banner.
    let fund = create_open_fund(&mut stan, "Notice fund", "5000");
    let application = apply_and_award(&app, &mut stan, &mut ada, fund, ada_id, "1200");
    wait_for(&mut ada, "/notifications/banner", "Accept or decline it.");
    wait_unread(&mut ada, 4);
    ada.get("/scholarships");
    let res = ada.post(
        &format!("/scholarships/applications/{application}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    // Accepting the offer of admission clears that notice too.
    own(&mut ada, "accept", &[("deposit", "250")]);
    wait_unread(&mut ada, 2);
    let banner = ada.get_htmx("/notifications/banner").body;
    assert!(!banner.contains("Accept or decline"), "{banner}");
    assert!(!banner.contains("Accept the offer"), "{banner}");
    // Still listed on the notifications page, as read.
    ada.get("/notifications")
        .assert_contains("you are offered an award of $1,200.00");

    // Orientation, then enrolled: the confirmation, and the award disbursed.
    office(&mut stan, ada_id, "orientation", &[]);
    own(&mut ada, "courses", &[("courses", "cs101")]);
    office(&mut stan, ada_id, "confirm", &[]);
    let page = wait_for(
        &mut ada,
        "/notifications",
        "Your award of $1,200.00 was disbursed.",
    );
    page.assert_contains("Your orientation is recorded as completed.")
        .assert_contains("Your enrollment for the 2027-fall term is confirmed.");
    // The steps she took herself are not news to her.
    let mut conn = app.state.pool.get().unwrap();
    let messages: Vec<String> = heyboss::schema::notifications::table
        .filter(heyboss::schema::notifications::user_id.eq(ada_id))
        .order(heyboss::schema::notifications::id)
        .select(heyboss::schema::notifications::message)
        .load(&mut conn)
        .unwrap();
    assert_eq!(messages.len(), 7, "{messages:#?}");
    // The staff member is told nothing of hers.
    assert_eq!(unread(&mut stan), 0);

    // Dismissing the banner empties the count in the navigation too (out of band).
    let res = ada.post_htmx("/notifications/read", &[]);
    assert!(res
        .body
        .contains("id=\"notifications-link\" hx-swap-oob=\"true\""));
    assert!(!res.body.contains("unread-count"));
    assert_eq!(unread(&mut ada), 0);
}

#[test]
fn an_award_revoked_on_withdrawal_is_told_and_its_offer_cleared() {
    let app = TestApp::spawn();
    let (mut bea, bea_id) = signup(&app, "bea");
    let mut stan = staff(&app, "stan");
    let fund = create_open_fund(&mut stan, "Revoked fund", "5000");
    apply_and_award(&app, &mut stan, &mut bea, fund, bea_id, "500");
    wait_for(&mut bea, "/notifications/banner", "Accept or decline it.");
    own(
        &mut bea,
        "withdraw",
        &[("reason", "moving abroad"), ("confirm", "yes")],
    );
    wait_for(&mut bea, "/notifications", "Your award was revoked");
    // The offer she can no longer answer is not asked of her any more.
    let banner = bea.get_htmx("/notifications/banner").body;
    assert!(!banner.contains("Accept or decline"), "{banner}");
    assert!(banner.contains("Your award was revoked"), "{banner}");
}

#[test]
fn a_reviewer_hears_of_an_assignment_until_they_have_reviewed_it() {
    let app = TestApp::spawn();
    let (mut cyd, cyd_id) = signup(&app, "cyd");
    let mut stan = staff(&app, "stan");
    let mut rita = staff(&app, "rita");
    let rita_id: Uuid = {
        let mut conn = app.state.pool.get().unwrap();
        users::table
            .filter(users::username.eq("rita"))
            .select(users::id)
            .first(&mut conn)
            .unwrap()
    };
    let fund = create_open_fund(&mut stan, "Review fund", "5000");
    cyd.get("/scholarships");
    cyd.post(
        &format!("/scholarships/funds/{fund}/apply"),
        &[("statement", "please")],
    );
    let application = application_id(&app, fund, cyd_id);
    stan.get(&format!("/scholarships/funds/{fund}"));
    let res = stan.post(
        &format!("/scholarships/applications/{application}/reviewers"),
        &[("reviewer_id", &rita_id.to_string())],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let banner = wait_for(
        &mut rita,
        "/notifications/banner",
        "You were assigned to review an application to Review fund.",
    );
    let link = format!("href=\"/scholarships/applications/{application}/review\"");
    assert!(
        banner.body.replace("&#x2F;", "/").contains(&link),
        "{}",
        banner.body
    );
    assert_eq!(unread(&mut rita), 1);
    rita.get(&format!("/scholarships/applications/{application}/review"));
    let res = rita.post(
        &format!("/scholarships/applications/{application}/review"),
        &[
            ("merit", "4"),
            ("need", "3"),
            ("statement", "5"),
            ("community", "2"),
            ("comment", "solid"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    wait_unread(&mut rita, 0);
    // The applicant hears nothing of who reviews her.
    assert!(!cyd.get("/notifications").body.contains("review"));
}

#[test]
fn a_user_sets_the_address_notifications_are_emailed_to() {
    let app = TestApp::spawn();
    let (mut dee, dee_id) = signup(&app, "dee");
    dee.get("/account")
        .assert_contains("dee@example.edu")
        .assert_contains("Email for notifications");
    // A wrong address: the form again with the message and what was typed; nothing recorded.
    dee.get("/account");
    let res = dee.post("/account/email", &[("email", "dee at home")]);
    assert_eq!(res.status, 422);
    res.assert_contains("&quot;dee at home&quot; is not an email address")
        .assert_contains("value=\"dee at home\"");
    assert_eq!(common::count_events(&app, "EmailChanged"), 0);
    // The same address again says so.
    dee.get("/account");
    let res = dee.post("/account/email", &[("email", "dee@example.edu")]);
    assert_eq!(res.status, 422);
    res.assert_contains("already the account&#x27;s email address");
    // A new one is recorded and shown; an empty one turns email off.
    dee.get("/account");
    let res = dee.post("/account/email", &[("email", " dee@uni.example ")]);
    assert_eq!(res.status, 303, "{}", res.body);
    dee.get("/account").assert_contains("dee@uni.example");
    dee.get("/account");
    assert_eq!(dee.post("/account/email", &[("email", "")]).status, 303);
    dee.get("/account")
        .assert_contains("none: notifications are not emailed");
    assert_eq!(common::count_events(&app, "EmailChanged"), 2);
    let mut conn = app.state.pool.get().unwrap();
    let email: String = users::table
        .find(dee_id)
        .select(users::email)
        .first(&mut conn)
        .unwrap();
    assert_eq!(email, "");
}

// ---------------------------------------------------------------- email

mod smtp {
    use std::io::Write;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// A real SMTP server (Python's standard `smtpd`) writing each message it accepts as one
    /// JSON line to a file. Stopped on drop.
    pub struct Server {
        child: Child,
        pub messages: PathBuf,
        _dir: TempDir,
    }

    pub struct TempDir(pub PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Python's standard smtpd (up to 3.11), else aiosmtpd (scripts/setup.sh installs it).
    const SCRIPT: &str = r#"
import json, os, sys, warnings
warnings.simplefilter("ignore")
port, out = int(sys.argv[1]), sys.argv[2]
def record(mailfrom, rcpttos, data):
    with open(out, "a") as f:
        f.write(json.dumps({"from": mailfrom, "to": rcpttos, "data": data}) + "\n")
try:
    if os.environ.get("HEYBOSS_TEST_AIOSMTPD"):
        raise ImportError
    import asyncore, smtpd
except ImportError:
    import threading
    from aiosmtpd.controller import Controller
    class Handler:
        async def handle_DATA(self, server, session, envelope):
            record(envelope.mail_from, envelope.rcpt_tos, envelope.content.decode("utf-8", "replace"))
            return "250 OK"
    Controller(Handler(), hostname="127.0.0.1", port=port).start()
    print("ready", flush=True)
    threading.Event().wait()
class Recorder(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        record(mailfrom, rcpttos, data)
Recorder(("127.0.0.1", port), None, decode_data=True)
print("ready", flush=True)
asyncore.loop()
"#;

    /// A port nothing listens on (yet).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    impl Server {
        pub fn start(port: u16) -> Server {
            let dir = std::env::temp_dir().join(format!("heyboss-smtp-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            let script = dir.join("server.py");
            std::fs::File::create(&script)
                .unwrap()
                .write_all(SCRIPT.as_bytes())
                .unwrap();
            let messages = dir.join("messages.jsonl");
            let mut child = Command::new("python3")
                .arg(&script)
                .arg(port.to_string())
                .arg(&messages)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("python3 runs (the tests' SMTP server is Python's standard smtpd)");
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            assert_eq!(line.trim(), "ready", "the SMTP server did not start");
            Server {
                child,
                messages,
                _dir: TempDir(dir),
            }
        }

        /// The messages received so far.
        pub fn received(&self) -> Vec<serde_json::Value> {
            std::fs::read_to_string(&self.messages)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }

        /// Wait until `n` messages arrived.
        pub fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
            let start = Instant::now();
            loop {
                let got = self.received();
                if got.len() >= n || start.elapsed() > Duration::from_secs(20) {
                    assert_eq!(got.len(), n, "messages received: {got:#?}");
                    return got;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn app_with_mail(port: u16) -> TestApp {
    TestApp::spawn_with(|s| {
        let mut mail = heyboss::ops::mail::MailSettings::new(format!("smtp://127.0.0.1:{port}"));
        mail.from = "Admissions <admissions@heyboss.example>".into();
        mail.public_url = "https://heyboss.example".into();
        mail.poll = Duration::from_millis(100);
        mail.retry_max = Duration::from_secs(1);
        s.mail = Some(mail);
    })
}

/// (attempts, sent, last error) of each outbox row.
fn outbox(app: &TestApp) -> Vec<(i32, bool, String)> {
    use heyboss::schema::notification_emails as e;
    let mut conn = app.state.pool.get().unwrap();
    e::table
        .order(e::notification_id)
        .select((e::attempts, e::sent_at.is_not_null(), e::last_error))
        .load(&mut conn)
        .unwrap()
}

#[test]
fn a_notification_is_emailed_once_to_its_user() {
    let port = smtp::free_port();
    let server = smtp::Server::start(port);
    let app = app_with_mail(port);
    let (mut ada, ada_id) = signup(&app, "ada");
    own(&mut ada, "start", &[]);
    own(&mut ada, "submit", &[]);
    let mut stan = staff(&app, "stan");
    office(&mut stan, ada_id, "document", &[("document", "transcript")]);

    let got = server.wait_for(1);
    assert_eq!(got[0]["to"], serde_json::json!(["ada@example.edu"]));
    assert_eq!(got[0]["from"], "admissions@heyboss.example");
    let data = got[0]["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: heyboss: The admissions office received your transcript"),
        "{data}"
    );
    assert!(
        data.contains("The admissions office received your transcript."),
        "{data}"
    );
    assert!(
        data.contains("https://heyboss.example/enrollment"),
        "{data}"
    );
    // Once: nothing more arrives, and the outbox says sent after one attempt.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.received().len(), 1);
    assert_eq!(outbox(&app), vec![(1, true, String::new())]);
}

#[test]
fn a_notification_made_while_the_mail_server_is_away_is_delivered_once_it_is_back() {
    let port = smtp::free_port();
    let app = app_with_mail(port);
    let (mut bea, bea_id) = signup(&app, "bea");
    own(&mut bea, "start", &[]);
    own(&mut bea, "submit", &[]);
    let mut stan = staff(&app, "stan");
    office(
        &mut stan,
        bea_id,
        "document",
        &[("document", "identification")],
    );

    // The server is away: the message waits in the outbox, tried and not sent.
    let start = Instant::now();
    while outbox(&app)
        .first()
        .is_none_or(|(attempts, _, _)| *attempts < 2)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            outbox(&app)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, sent, error) = outbox(&app).remove(0);
    assert!(!sent && !error.is_empty(), "{error}");
    // A page is served at once meanwhile, and /metrics tells of the waiting email.
    let started = Instant::now();
    stan.get("/enrollment/pipeline").assert_contains("Pipeline");
    assert!(started.elapsed() < Duration::from_secs(1));
    stan.get("/metrics")
        .assert_contains("\nheyboss_notification_emails_unsent 1\n");

    let server = smtp::Server::start(port);
    let got = server.wait_for(1);
    assert_eq!(got[0]["to"], serde_json::json!(["bea@example.edu"]));
    assert!(got[0]["data"]
        .as_str()
        .unwrap()
        .contains("The admissions office received your identification."));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(server.received().len(), 1);
    assert!(outbox(&app)[0].1, "marked sent");
    stan.get("/metrics")
        .assert_contains("\nheyboss_notification_emails_unsent 0\n");
}
