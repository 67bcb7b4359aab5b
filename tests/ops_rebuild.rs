//! Rebuild through shadow tables and verify, from the library and from the CLI.

mod common;

use std::process::Command;

use diesel::prelude::*;
use heyboss::accounts::{service, NewAccount};
use heyboss::es::shadow;
use heyboss::es::{Actor, EventStore, Metadata};
use heyboss::testing::TestDatabase;

fn register(conn: &mut PgConnection, store: &EventStore, username: &str, role: &str) -> uuid::Uuid {
    let account = NewAccount::parse(username, "", "", role, "correct horse battery").unwrap();
    service::register(conn, store, Metadata::new(Actor::Cli), account, |_, _| {
        Ok(())
    })
    .unwrap()
}

fn count_users(conn: &mut PgConnection) -> i64 {
    heyboss::schema::users::table
        .count()
        .get_result(conn)
        .unwrap()
}

#[derive(QueryableByName)]
struct IndexName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    indexname: String,
}

fn index_names(conn: &mut PgConnection) -> Vec<String> {
    let mut names: Vec<String> = diesel::sql_query(
        "SELECT indexname::text AS indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'users'",
    )
    .load::<IndexName>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.indexname)
    .collect();
    names.sort();
    names
}

#[test]
fn a_rebuild_swaps_in_a_complete_table_and_readers_never_see_a_half_built_one() {
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    for i in 0..5 {
        register(&mut conn, &store, &format!("user{i}"), "student");
    }
    let indexes_before = index_names(&mut conn);
    let projection = store.projections().get("users").unwrap().clone();

    let mut reader = db.connect();
    let mut writer = db.connect();
    let mut seen_counts = Vec::new();
    let mut wrote_during = false;
    let report = shadow::rebuild(&mut conn, None, projection.as_ref(), false, 1, |p| {
        // Mid-rebuild, a reader sees the old, complete table.
        seen_counts.push(count_users(&mut reader));
        // A command committed during the rebuild is in the swapped-in table.
        if !wrote_during && p.events_done >= 2 {
            wrote_during = true;
            register(&mut writer, &store, "latecomer", "staff");
        }
    })
    .unwrap();
    // (The replay waits for transactions open elsewhere on the server, up to a minute.)
    assert!(
        seen_counts.len() >= 5,
        "progress is reported per batch: {seen_counts:?}"
    );
    assert!(
        seen_counts.iter().all(|&n| n == 5 || n == 6),
        "readers saw {seen_counts:?}"
    );
    assert_eq!(report.rows, 6);
    assert_eq!(count_users(&mut reader), 6);
    assert!(
        heyboss::accounts::queries::find_by_username(&mut reader, "latecomer")
            .unwrap()
            .is_some()
    );
    assert_eq!(
        index_names(&mut conn),
        indexes_before,
        "index names are kept"
    );
    // No shadow schema is left behind.
    let left: i64 =
        diesel::sql_query("SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 'shadow_%'")
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n;
    assert_eq!(left, 0);
    // The unique index still guards usernames after the swap.
    let err = service::register(
        &mut writer,
        &store,
        Metadata::new(Actor::Cli),
        NewAccount::parse("LATECOMER", "", "", "staff", "correct horse battery").unwrap(),
        |_, _| Ok(()),
    );
    assert!(err.is_err());
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn verify_reports_every_row_that_differs_and_a_rebuild_repairs_it() {
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    register(&mut conn, &store, "ada", "student");
    register(&mut conn, &store, "bob", "staff");
    let projection = store.projections().get("users").unwrap().clone();
    assert!(
        shadow::verify(&mut conn, None, projection.as_ref(), false, 100, |_| {})
            .unwrap()
            .is_empty()
    );

    // Someone edits the read model by hand.
    diesel::sql_query("UPDATE users SET role = 'admin' WHERE username = 'ada'")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("DELETE FROM users WHERE username = 'bob'")
        .execute(&mut conn)
        .unwrap();
    let diffs = shadow::verify(&mut conn, None, projection.as_ref(), false, 100, |_| {}).unwrap();
    assert_eq!(diffs.len(), 3, "{diffs:?}");
    let missing: Vec<_> = diffs.iter().filter(|d| d.kind == "missing").collect();
    let unexpected: Vec<_> = diffs.iter().filter(|d| d.kind == "unexpected").collect();
    assert_eq!(missing.len(), 2);
    assert!(missing.iter().any(|d| d.row.contains("\"bob\"")));
    assert!(missing
        .iter()
        .any(|d| d.row.contains("\"ada\"") && d.row.contains("\"student\"")));
    assert_eq!(unexpected.len(), 1);
    assert!(unexpected[0].row.contains("\"admin\""));
    // Verify changed nothing.
    assert_eq!(count_users(&mut conn), 1);

    shadow::rebuild(&mut conn, None, projection.as_ref(), false, 100, |_| {}).unwrap();
    assert!(
        shadow::verify(&mut conn, None, projection.as_ref(), false, 100, |_| {})
            .unwrap()
            .is_empty()
    );
    assert_eq!(count_users(&mut conn), 2);
}

#[test]
fn the_cli_verifies_with_exit_status_1_on_a_difference_and_rebuilds() {
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    register(&mut conn, &store, "ada", "student");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_heyboss"))
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["projections", "verify", "users"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("users: equal to a rebuild"));

    diesel::sql_query("UPDATE users SET display_name = 'Mallory' WHERE username = 'ada'")
        .execute(&mut conn)
        .unwrap();
    let out = run(&["projections", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("users: 2 rows differ from a rebuild"),
        "{text}"
    );
    assert!(text.contains("Mallory"), "{text}");

    let out = run(&["projections", "rebuild", "users"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("swapped in"));
    let out = run(&["projections", "verify", "users"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(&["projections", "verify", "nope"]);
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn a_catch_up_projection_verifies_at_its_checkpoint_and_a_rebuild_moves_the_checkpoint() {
    use heyboss::es::subscriber::{self, ProjectionSubscriber};
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store().with_catch_up(&["users".to_owned()]);
    let mut conn = db.connect();
    register(&mut conn, &store, "ada", "student");
    let projection = store.projections().get("users").unwrap().clone();
    assert_eq!(count_users(&mut conn), 0, "not written inline");

    // The first start builds the table through a shadow and sets the checkpoint.
    let sub = ProjectionSubscriber(projection.clone());
    let mut handled = 0;
    for _ in 0..400 {
        handled += subscriber::catch_up(&mut conn, &sub, 100).unwrap();
        if count_users(&mut conn) == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(count_users(&mut conn), 1, "handled {handled}");
    assert!(subscriber::checkpoint(&mut conn, "users")
        .unwrap()
        .is_some());

    // A newer event not yet handled is not a difference: verify compares at the checkpoint.
    register(&mut conn, &store, "bob", "staff");
    assert!(
        shadow::verify(&mut conn, None, projection.as_ref(), true, 100, |_| {})
            .unwrap()
            .is_empty()
    );
    diesel::sql_query("UPDATE users SET email = 'x@y.z'")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(
        shadow::verify(&mut conn, None, projection.as_ref(), true, 100, |_| {})
            .unwrap()
            .len(),
        2
    );
    let before = subscriber::checkpoint(&mut conn, "users").unwrap().unwrap();
    let mut report = None;
    for _ in 0..400 {
        let r = shadow::rebuild(&mut conn, None, projection.as_ref(), true, 100, |_| {}).unwrap();
        if r.rows == 2 {
            report = Some(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let report = report.expect("the rebuild reaches bob's event");
    let after = subscriber::checkpoint(&mut conn, "users").unwrap().unwrap();
    assert!(after > before);
    assert_eq!(after, report.cursor);
    assert_eq!(subscriber::catch_up(&mut conn, &sub, 100).unwrap(), 0);
    assert!(
        shadow::verify(&mut conn, None, projection.as_ref(), true, 100, |_| {})
            .unwrap()
            .is_empty()
    );
}

/// A rebuild on a log without planner statistics (a bulk load where autovacuum has not run:
/// this test server runs with autovacuum off) gathers the log's statistics before it replays,
/// and its tables go live analyzed.
#[test]
fn a_rebuild_plans_with_statistics_whether_or_not_autovacuum_ran() {
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    for i in 0..20 {
        register(&mut conn, &store, &format!("user{i}"), "student");
    }
    // A backend sends its row counts to the shared statistics at most once a second: flush the
    // registrations' counts now, or they could land after the rebuild's ANALYZE and make the
    // fresh statistics look stale.
    for statement in [
        "SELECT pg_stat_force_next_flush()",
        "SELECT 1",
        "DELETE FROM pg_statistic WHERE starelid = 'events'::regclass",
        "SELECT pg_stat_reset_single_table_counters('events'::regclass)",
    ] {
        diesel::sql_query(statement).execute(&mut conn).unwrap();
    }
    assert!(!heyboss::db::statistics_current(&mut conn, "events").unwrap());

    let projection = store.projections().get("users").unwrap().clone();
    shadow::rebuild(&mut conn, None, projection.as_ref(), false, 100, |_| {}).unwrap();
    assert!(heyboss::db::statistics_current(&mut conn, "events").unwrap());
    assert!(heyboss::db::statistics_current(&mut conn, "users").unwrap());
    #[derive(QueryableByName)]
    struct Rows {
        #[diesel(sql_type = diesel::sql_types::Double)]
        reltuples: f64,
    }
    let users: Rows = diesel::sql_query(
        "SELECT reltuples::float8 AS reltuples FROM pg_class WHERE oid = 'users'::regclass",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(
        users.reltuples, 20.0,
        "the planner knows the new table's size"
    );
}

/// A stored event whose stream id is not a uuid, met by a projection of a stream keyed by one (in a
/// rebuild, or a verify), is reported as a bad stream id: not as a row that was not found.
#[test]
fn a_stream_id_that_is_not_a_uuid_is_reported_as_one_by_every_projection() {
    use heyboss::es::projection::ProjectionError;
    use heyboss::es::{Projection, RecordedEvent};
    use heyboss::{accounts, enrollment, scholarships, threats};
    use serde_json::json;

    let db = TestDatabase::new();
    let mut conn = db.connect();
    let bad = |stream_type: &str, event_type: &str, payload: serde_json::Value| RecordedEvent {
        position: 1,
        stream_type: stream_type.into(),
        stream_id: "not-a-uuid".into(),
        stream_version: 1,
        event_type: event_type.into(),
        schema_version: 1,
        payload,
        metadata: json!({}),
        recorded_at: chrono::Utc::now(),
        transaction_id: 1,
    };
    let cases: Vec<(&dyn Projection, RecordedEvent)> = vec![
        (
            &accounts::projections::UsersProjection,
            bad(
                "user",
                "UserRegistered",
                json!({"username": "u", "display_name": "U", "email": "", "role": "student"}),
            ),
        ),
        (
            &enrollment::projections::EnrollmentProjection,
            bad("enrollment", "Inquired", json!({"term": "2031-fall"})),
        ),
        (
            &scholarships::projections::FundsProjection,
            bad("fund", "FundCreated", json!({})),
        ),
        (
            &scholarships::projections::ApplicationsProjection,
            bad("scholarship_application", "ScholarshipApplied", json!({})),
        ),
        (
            &threats::projections::ClearancesProjection,
            bad("clearance", "ClearanceGranted", json!({"group": "alpha"})),
        ),
        (
            &threats::projections::SensorsProjection,
            bad("sensor", "SensorRegistered", json!({"name": "edge"})),
        ),
    ];
    for (projection, event) in cases {
        match projection.apply(&mut conn, &event) {
            Err(ProjectionError::BadStreamId {
                stream_type,
                stream_id,
            }) => {
                assert_eq!(stream_type, event.stream_type, "{}", projection.name());
                assert_eq!(stream_id, "not-a-uuid", "{}", projection.name());
            }
            other => panic!("{}: {other:?}", projection.name()),
        }
    }
}

/// Counting the rebuilt rows takes as long as reading them: a reader of the table must not wait
/// on the swap's exclusive lock for that long. The rebuild's connection is held at the start of
/// each count (as a long count would hold it) while another connection reads the table with a
/// lock timeout; the report still counts every row.
#[test]
fn a_reader_is_not_held_by_the_rebuild_counting_its_rows() {
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::{Arc, Mutex};

    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    for i in 0..3 {
        register(&mut conn, &store, &format!("user{i}"), "student");
    }
    let projection = store.projections().get("users").unwrap().clone();
    let url = db.url.clone();
    let reads: Arc<Mutex<Vec<Result<i64, String>>>> = Arc::default();
    let seen = reads.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            if sql.contains("count(*)") && sql.contains("\"users\"") {
                let mut reader = PgConnection::establish(&url).unwrap();
                diesel::sql_query("SET lock_timeout = '2s'")
                    .execute(&mut reader)
                    .unwrap();
                seen.lock().unwrap().push(
                    heyboss::schema::users::table
                        .count()
                        .get_result::<i64>(&mut reader)
                        .map_err(|e| e.to_string()),
                );
            }
        }
    });
    let report = shadow::rebuild(&mut conn, None, projection.as_ref(), false, 100, |_| {}).unwrap();
    conn.set_instrumentation(None::<Box<dyn Instrumentation>>);
    let reads = reads.lock().unwrap().clone();
    assert!(!reads.is_empty(), "the rebuild counts its rows");
    assert!(
        reads.iter().all(|r| r.as_ref().is_ok_and(|&n| n == 3)),
        "a reader during the count: {reads:?}"
    );
    assert_eq!(report.rows, 3);
    assert_eq!(count_users(&mut conn), 3);
}

/// A catch-up subscriber locks its checkpoint row and then writes the projection's tables; a
/// rebuild's swap of the same projection takes them in that order too, so the two wait for each
/// other in turn instead of deadlocking (one of them used to fail with "deadlock detected").
#[test]
fn a_rebuild_swap_waits_for_a_subscriber_mid_batch_instead_of_deadlocking() {
    use heyboss::es::subscriber::{self, ProjectionSubscriber};
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store().with_catch_up(&["users".to_owned()]);
    let mut conn = db.connect();
    register(&mut conn, &store, "ada", "student");
    let projection = store.projections().get("users").unwrap().clone();
    let sub = ProjectionSubscriber(projection.clone());
    for _ in 0..400 {
        subscriber::catch_up(&mut conn, &sub, 100).unwrap();
        if count_users(&mut conn) == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert_eq!(count_users(&mut conn), 1);

    // The subscriber, mid-batch: its checkpoint row is locked and it has yet to write.
    let mut batch = db.connect();
    diesel::sql_query("BEGIN").execute(&mut batch).unwrap();
    diesel::sql_query("SELECT 1 FROM subscriber_checkpoints WHERE name = 'users' FOR UPDATE")
        .execute(&mut batch)
        .unwrap();
    let batch_pid = backend_pid(&mut batch);

    let url = db.url.clone();
    let rebuild = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        shadow::rebuild(&mut conn, None, projection.as_ref(), true, 100, |_| {})
            .map_err(|e| e.to_string())
    });
    // Wait until the rebuild's swap waits for the subscriber's row.
    let waiting = someone_waits_for(&mut conn, batch_pid);
    assert!(
        waiting,
        "the rebuild's swap waits for the locked checkpoint"
    );
    // The subscriber writes the live table and commits; then the swap goes on.
    diesel::sql_query("SET lock_timeout = '5s'")
        .execute(&mut batch)
        .unwrap();
    diesel::sql_query("UPDATE users SET email = email")
        .execute(&mut batch)
        .expect("the subscriber's batch is not held by the rebuild");
    diesel::sql_query("COMMIT").execute(&mut batch).unwrap();
    let report = rebuild
        .join()
        .unwrap()
        .expect("the rebuild completes after the subscriber's batch");
    assert_eq!(report.rows, 1);
    assert_eq!(
        subscriber::checkpoint(&mut conn, "users").unwrap(),
        Some(report.cursor)
    );
}

/// A rebuild's swap locks the live tables exclusively. Queued behind a long read, that lock
/// request would hold every writer (and reader) that comes after it until the read ended; the
/// swap instead gives up its wait after a moment and tries again, so writers go on, and it
/// swaps once the read is over.
#[test]
fn a_rebuild_swap_does_not_hold_writers_behind_a_long_read() {
    let db = TestDatabase::new();
    let store = heyboss::startup::event_store();
    let mut conn = db.connect();
    register(&mut conn, &store, "ada", "student");
    let projection = store.projections().get("users").unwrap().clone();

    // A long read of the live table, still open.
    let mut reader = db.connect();
    diesel::sql_query("BEGIN").execute(&mut reader).unwrap();
    assert_eq!(count_users(&mut reader), 1);
    let reader_pid = backend_pid(&mut reader);

    let url = db.url.clone();
    let rebuild = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        shadow::rebuild(&mut conn, None, projection.as_ref(), false, 100, |_| {})
            .map_err(|e| e.to_string())
    });
    // The swap has asked for its lock at least once.
    let asked = someone_waits_for(&mut conn, reader_pid);
    assert!(asked, "the swap waits for the reader");
    // A writer meanwhile is not held for long.
    let mut writer = db.connect();
    diesel::sql_query("SET lock_timeout = '3s'")
        .execute(&mut writer)
        .unwrap();
    let started = std::time::Instant::now();
    register(&mut writer, &store, "bob", "staff");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(!rebuild.is_finished(), "no swap while the read is open");
    diesel::sql_query("COMMIT").execute(&mut reader).unwrap();
    let report = rebuild
        .join()
        .unwrap()
        .expect("the swap once the read is over");
    assert_eq!(report.rows, 2);
    assert_eq!(count_users(&mut conn), 2);
}

/// The backend id of `conn`'s session.
fn backend_pid(conn: &mut PgConnection) -> i32 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "pg_backend_pid()",
    ))
    .get_result(conn)
    .unwrap()
}

/// Whether some session comes to wait for a lock that session `pid` holds (polled for 2 s).
fn someone_waits_for(conn: &mut PgConnection, pid: i32) -> bool {
    for _ in 0..400 {
        let blocked: i64 = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE {pid} = ANY(pg_blocking_pids(pid))"
        ))
        .get_result::<Count>(conn)
        .unwrap()
        .n;
        if blocked > 0 {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    false
}
