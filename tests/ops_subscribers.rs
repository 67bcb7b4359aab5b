//! Catch-up subscribers: commit-safe reading (a transaction that commits late is never skipped),
//! catch-up projections with wait_for, and the notifications feed.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{create_user, Client, PASSWORD};
use diesel::prelude::*;
use heyboss::es::subscriber::{self, HandlerError, Subscriber};
use heyboss::es::{store, RecordedEvent};
use heyboss::testing::{TestApp, TestDatabase};

/// Records the positions it is given.
struct Recorder {
    seen: Arc<Mutex<Vec<i64>>>,
}

impl Subscriber for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn handles(&self) -> Option<&'static [&'static str]> {
        Some(&["Noted"])
    }
    fn handle(&self, _: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), HandlerError> {
        self.seen
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.position));
        Ok(())
    }
}

/// Catch up until `n` events were handled: a transaction open anywhere on the server (another
/// test's) holds the snapshot's xmin back for a moment, and that is the point of the design.
fn catch_up_expecting(reader: &mut PgConnection, sub: &Recorder, n: u64) -> u64 {
    let mut total = 0;
    for _ in 0..400 {
        total += subscriber::catch_up(reader, sub, 10).unwrap();
        if total >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    total
}

fn note(conn: &mut PgConnection, stream: &str) -> i64 {
    let event = heyboss::es::NewEvent {
        event_type: "Noted".into(),
        schema_version: 1,
        payload: serde_json::json!({}),
    };
    let appended = store::append(
        conn,
        "note",
        stream,
        0,
        &[event],
        &serde_json::json!({"actor": {"kind": "cli"}}),
    )
    .unwrap();
    appended[0].position
}

/// The transaction id that last locked the subscriber's checkpoint row (or updated it holding its
/// lock).
fn checkpoint_locked_by(conn: &mut PgConnection, name: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Xmax {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        xmax: i64,
    }
    diesel::sql_query(
        "SELECT xmax::text::bigint AS xmax FROM subscriber_checkpoints WHERE name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result::<Xmax>(conn)
    .unwrap()
    .xmax
}

#[test]
fn a_caught_up_subscriber_polls_without_writing() {
    let db = TestDatabase::new();
    let mut reader = db.connect();
    let mut writer = db.connect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sub = Recorder { seen: seen.clone() };
    note(&mut writer, "a");
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);
    let handled_by = checkpoint_locked_by(&mut reader, "recorder");
    // Idle polls (the runner's every 50 ms): nothing to handle, and the checkpoint row is not
    // locked, so no transaction id is taken and no commit is flushed to disk.
    for _ in 0..3 {
        assert_eq!(subscriber::catch_up_once(&mut reader, &sub, 10).unwrap(), 0);
    }
    assert_eq!(checkpoint_locked_by(&mut reader, "recorder"), handled_by);
    // The next event is handled as before.
    let next = note(&mut writer, "b");
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);
    assert_eq!(seen.lock().unwrap().last(), Some(&next));
}

#[test]
fn an_event_committed_late_with_a_lower_position_is_not_skipped() {
    let db = TestDatabase::new();
    let mut reader = db.connect();
    let mut slow = db.connect();
    let mut fast = db.connect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sub = Recorder { seen: seen.clone() };

    let first = note(&mut fast, "a");
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);

    // The fast transaction takes its transaction id first...
    diesel::sql_query("BEGIN").execute(&mut fast).unwrap();
    diesel::sql_query("SELECT pg_current_xact_id()")
        .execute(&mut fast)
        .unwrap();
    // ...the slow one appends first (the lower position) and stays open...
    diesel::sql_query("BEGIN").execute(&mut slow).unwrap();
    let slow_position = note(&mut slow, "b");
    // ...the fast one appends after it (a higher position) and commits.
    let fast_position = note(&mut fast, "c");
    diesel::sql_query("COMMIT").execute(&mut fast).unwrap();
    assert!(slow_position < fast_position);

    // The subscriber sees the committed event at the higher position first.
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);
    assert_eq!(*seen.lock().unwrap(), vec![first, fast_position]);
    let after_fast = subscriber::checkpoint(&mut reader, "recorder")
        .unwrap()
        .unwrap();
    assert_eq!(after_fast.position, fast_position);

    // A reader remembering only "last position" would now skip the slow event forever.
    diesel::sql_query("COMMIT").execute(&mut slow).unwrap();
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![first, fast_position, slow_position],
        "the late commit is handled, once"
    );
    assert_eq!(subscriber::catch_up(&mut reader, &sub, 10).unwrap(), 0);
}

#[test]
fn an_open_transaction_holds_the_subscriber_back_instead_of_being_skipped() {
    let db = TestDatabase::new();
    let mut reader = db.connect();
    let mut slow = db.connect();
    let mut fast = db.connect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sub = Recorder { seen: seen.clone() };

    diesel::sql_query("BEGIN").execute(&mut slow).unwrap();
    let slow_position = note(&mut slow, "a");
    let fast_position = note(&mut fast, "b"); // autocommit
    assert!(slow_position < fast_position);

    // The slow transaction is older than the committed one: nothing is safe to read yet.
    assert_eq!(subscriber::catch_up(&mut reader, &sub, 10).unwrap(), 0);
    assert!(!subscriber::reached(&mut reader, "recorder", fast_position).unwrap());

    diesel::sql_query("COMMIT").execute(&mut slow).unwrap();
    assert_eq!(catch_up_expecting(&mut reader, &sub, 2), 2);
    assert_eq!(*seen.lock().unwrap(), vec![slow_position, fast_position]);
    assert!(subscriber::reached(&mut reader, "recorder", fast_position).unwrap());
}

#[test]
fn events_of_other_types_move_the_checkpoint_so_the_lag_is_honest() {
    let db = TestDatabase::new();
    let mut reader = db.connect();
    let mut writer = db.connect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sub = Recorder { seen: seen.clone() };
    let noted = note(&mut writer, "a");
    let other = store::append(
        &mut writer,
        "note",
        "b",
        0,
        &[heyboss::es::NewEvent {
            event_type: "Ignored".into(),
            schema_version: 1,
            payload: serde_json::json!({}),
        }],
        &serde_json::json!({"actor": {"kind": "cli"}}),
    )
    .unwrap()[0]
        .position;
    assert_eq!(catch_up_expecting(&mut reader, &sub, 1), 1);
    for _ in 0..400 {
        if subscriber::reached(&mut reader, "recorder", other).unwrap() {
            break;
        }
        subscriber::catch_up(&mut reader, &sub, 10).unwrap();
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![noted],
        "only its own type handled"
    );
    assert!(
        subscriber::reached(&mut reader, "recorder", other).unwrap(),
        "read past the event it does not handle"
    );
    let status = subscriber::statuses(&mut reader)
        .unwrap()
        .into_iter()
        .find(|s| s.name == "recorder")
        .unwrap();
    assert_eq!((status.behind, status.events_handled), (0, 1));
}

#[test]
fn only_one_session_holds_a_subscriber() {
    let db = TestDatabase::new();
    let mut one = db.connect();
    let mut two = db.connect();
    assert!(subscriber::try_lock(&mut one, "recorder").unwrap());
    assert!(!subscriber::try_lock(&mut two, "recorder").unwrap());
    drop(one); // a crashed instance releases it with its connection
    let mut acquired = false;
    for _ in 0..50 {
        if subscriber::try_lock(&mut two, "recorder").unwrap() {
            acquired = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(acquired, "the lock passes to another session");
}

#[test]
fn a_catch_up_projection_is_written_after_commit_and_a_page_can_wait_for_it() {
    let app = TestApp::spawn_with(|s| s.catch_up_projections = vec!["users".into()]);
    assert!(app.state.store.projections().is_catch_up("users"));
    let id = create_user(&app, "ada", "staff", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let position: i64 = heyboss::schema::events::table
        .filter(heyboss::schema::events::stream_id.eq(id.to_string()))
        .select(heyboss::schema::events::position)
        .first(&mut conn)
        .unwrap();
    let reached = subscriber::wait_for_projection(
        &mut conn,
        app.state.store.projections(),
        "users",
        position,
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(reached, "the catch-up subscriber applies the event");
    let found = heyboss::accounts::queries::find_by_username(&mut conn, "ada")
        .unwrap()
        .expect("the users row written by the subscriber");
    assert_eq!(found.id, id);
    // The signed-in page works once the read model caught up.
    let mut client = Client::new(&app);
    client.login("ada", PASSWORD);
    client.get("/account").assert_contains("ada");
}

#[test]
fn a_user_sees_that_an_admin_changed_their_role_on_their_next_page() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let student = create_user(&app, "stu", "student", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get(&format!("/admin/accounts/{student}"));
    let res = admin.post(
        &format!("/admin/accounts/{student}/role"),
        &[("role", "staff"), ("command_id", "c1")],
    );
    assert_eq!(res.status, 303, "{}", res.body);

    let mut user = Client::new(&app);
    user.login("stu", PASSWORD);
    let page = user.get("/account");
    assert!(page.body.contains("hx-get=\"/notifications/banner\""));
    let mut banner = String::new();
    for _ in 0..200 {
        banner = user.get_htmx("/notifications/banner").body;
        if banner.contains("changed your role") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        banner.contains("An administrator changed your role from student to staff."),
        "{banner}"
    );
    user.get("/notifications")
        .assert_contains("changed your role from student to staff");
    // The admin who did it is not told about it.
    assert!(!admin
        .get_htmx("/notifications/banner")
        .body
        .contains("changed"));
    // Dismissed, it is gone from the banner but stays on the notifications page.
    user.get("/notifications");
    let res = user.post("/notifications/read", &[]);
    assert_eq!(res.status, 303);
    assert!(!user
        .get_htmx("/notifications/banner")
        .body
        .contains("changed your role"));
    user.get("/notifications")
        .assert_contains("changed your role");
}
