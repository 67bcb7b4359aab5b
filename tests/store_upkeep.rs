//! The store's upkeep (`heyboss_es::upkeep`): where autovacuum will not vacuum a table (the
//! server's `autovacuum` off, or the table's `autovacuum_enabled` false), `heyboss serve`
//! vacuums and analyzes it once it passes autovacuum's own thresholds, so that index-only reads
//! stay index-only after a bulk load; where autovacuum runs, it is left to autovacuum.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use heyboss::testing::{TestApp, TestDatabase};
use heyboss_es::upkeep;

#[derive(QueryableByName, Debug)]
struct Vacuumed {
    #[diesel(sql_type = Bool)]
    vacuumed: bool,
    #[diesel(sql_type = Bool)]
    analyzed: bool,
    /// Pages the visibility map does not mark all-visible.
    #[diesel(sql_type = BigInt)]
    pages_not_visible: i64,
}

fn state_of(conn: &mut PgConnection, table: &str) -> Vacuumed {
    diesel::sql_query(
        "SELECT s.last_vacuum IS NOT NULL AS vacuumed, s.last_analyze IS NOT NULL AS analyzed,
                pg_relation_size(c.oid) / current_setting('block_size')::int8 - c.relallvisible
                    AS pages_not_visible
         FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
         WHERE c.oid = to_regclass($1)",
    )
    .bind::<Text, _>(table)
    .get_result(conn)
    .unwrap()
}

/// A table of `rows` rows inserted in one go, its statistics flushed for other sessions to read.
fn bulk_loaded(conn: &mut PgConnection, table: &str, rows: i64, autovacuum: bool) {
    diesel::sql_query(format!(
        "CREATE TABLE {table} (id BIGINT PRIMARY KEY, note TEXT NOT NULL) \
         WITH (autovacuum_enabled = {autovacuum})"
    ))
    .execute(conn)
    .unwrap();
    diesel::sql_query(format!(
        "INSERT INTO {table} SELECT n, 'hit ' || n FROM generate_series(1, $1) n"
    ))
    .bind::<BigInt, _>(rows)
    .execute(conn)
    .unwrap();
    diesel::sql_query("SELECT pg_stat_force_next_flush()")
        .execute(conn)
        .unwrap();
}

/// Wait until no snapshot (of this database's other sessions, or a replica's
/// `hot_standby_feedback`, which reports every `wal_receiver_status_interval`) is older than the
/// rows of `table`: until then no vacuum can mark their pages all-visible.
fn until_every_snapshot_sees(conn: &mut PgConnection, table: &str) {
    #[derive(QueryableByName)]
    struct Seen {
        #[diesel(sql_type = Bool)]
        seen: bool,
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: Seen = diesel::sql_query(format!(
            "SELECT coalesce(bool_and(age(h.x) < age((SELECT max(xmin::text::int8)::text::xid \
                                                   FROM {table}))), true) AS seen
             FROM (SELECT xmin AS x FROM pg_replication_slots WHERE xmin IS NOT NULL
                   UNION ALL
                   SELECT backend_xmin FROM pg_stat_activity
                   WHERE datname = current_database() AND backend_xmin IS NOT NULL
                     AND pid <> pg_backend_pid()) h"
        ))
        .get_result(conn)
        .unwrap();
        if seen.seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "a snapshot older than {table} stays open"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn server_autovacuum(conn: &mut PgConnection) -> bool {
    #[derive(QueryableByName)]
    struct On {
        #[diesel(sql_type = Bool)]
        on: bool,
    }
    diesel::sql_query("SELECT current_setting('autovacuum')::bool AS on")
        .get_result::<On>(conn)
        .unwrap()
        .on
}

fn due_tables(conn: &mut PgConnection) -> Vec<String> {
    upkeep::due(conn)
        .unwrap()
        .into_iter()
        .map(|d| d.table)
        .collect()
}

#[test]
fn a_bulk_load_autovacuum_leaves_alone_is_vacuumed_and_analyzed_by_autovacuums_thresholds() {
    let db = TestDatabase::new();
    let mut conn = db.connect();
    // Under autovacuum's insert threshold (1,000 + a fifth of the table): due for an analyze
    // only (its threshold is 50 changed rows).
    bulk_loaded(&mut conn, "few_hits", 900, false);
    let few = upkeep::due(&mut conn).unwrap();
    assert!(
        few.iter().any(|d| d.table == "few_hits" && !d.vacuum),
        "{few:?}"
    );

    bulk_loaded(&mut conn, "bulk_hits", 20_000, false);
    let due = upkeep::due(&mut conn).unwrap();
    let bulk = due
        .iter()
        .find(|d| d.table == "bulk_hits")
        .unwrap_or_else(|| panic!("bulk_hits is due: {due:?}"));
    assert_eq!((bulk.inserted, bulk.dead, bulk.vacuum), (20_000, 0, true));
    let before = state_of(&mut conn, "bulk_hits");
    assert!(!before.vacuumed && !before.analyzed && before.pages_not_visible > 0);

    let done = upkeep::vacuum_due(&mut conn, &[]).unwrap();
    let bulk = done
        .iter()
        .find(|d| d.table == "bulk_hits" && d.vacuumed)
        .unwrap_or_else(|| panic!("bulk_hits vacuumed: {done:?}"));
    assert!(
        done.iter().any(|d| d.table == "few_hits" && !d.vacuumed),
        "few_hits analyzed only: {done:?}"
    );
    diesel::sql_query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut conn)
        .unwrap();
    let after = state_of(&mut conn, "bulk_hits");
    assert!(after.vacuumed && after.analyzed, "{after:?}");
    assert_eq!(bulk.pages_not_visible, after.pages_not_visible);
    // Vacuumed right after the load, a replica's snapshot may still be older than its rows: the
    // pass then asks to vacuum it once more, and the next pass marks every page.
    if after.pages_not_visible > 0 {
        assert!(bulk.left_pages_unmarked(), "{bulk:?}");
        until_every_snapshot_sees(&mut conn, "bulk_hits");
        let again = upkeep::vacuum_due(&mut conn, &["bulk_hits".to_owned()]).unwrap();
        assert!(
            again.iter().any(|d| d.table == "bulk_hits" && d.vacuumed),
            "{again:?}"
        );
    }
    assert_eq!(
        state_of(&mut conn, "bulk_hits").pages_not_visible,
        0,
        "every page is all-visible"
    );
    // Done is done: the next pass finds nothing new there.
    assert!(!due_tables(&mut conn).contains(&"bulk_hits".to_owned()));

    // Rows deleted from a vacuumed table: due again, by the dead-rows threshold.
    diesel::sql_query("DELETE FROM bulk_hits WHERE id % 2 = 0")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("SELECT pg_stat_force_next_flush()")
        .execute(&mut conn)
        .unwrap();
    let again = upkeep::due(&mut conn).unwrap();
    let bulk = again.iter().find(|d| d.table == "bulk_hits").unwrap();
    assert_eq!((bulk.dead, bulk.vacuum), (10_000, true));
}

#[test]
fn a_table_autovacuum_looks_after_is_left_to_autovacuum() {
    let db = TestDatabase::new();
    let mut conn = db.connect();
    bulk_loaded(&mut conn, "watched_hits", 20_000, true);
    let due = due_tables(&mut conn);
    // This machine's server may run with autovacuum off, CI's with it on: both are asserted.
    if server_autovacuum(&mut conn) {
        assert!(!due.contains(&"watched_hits".to_owned()), "{due:?}");
    } else {
        assert!(due.contains(&"watched_hits".to_owned()), "{due:?}");
    }
}

#[test]
fn serve_vacuums_a_table_autovacuum_leaves_alone_at_start() {
    let mut loaded = false;
    let app = TestApp::spawn_with(|settings| {
        let mut conn = PgConnection::establish(&settings.database_url).unwrap();
        bulk_loaded(&mut conn, "imported_hits", 20_000, false);
        until_every_snapshot_sees(&mut conn, "imported_hits");
        loaded = true;
    });
    assert!(loaded);
    let mut conn = app.db.connect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        diesel::sql_query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .unwrap();
        let state = state_of(&mut conn, "imported_hits");
        if state.vacuumed && state.analyzed && state.pages_not_visible == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve's first upkeep pass did not vacuum the table: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_vacuum_an_older_snapshot_kept_from_marking_is_named_and_tried_again() {
    let db = TestDatabase::new();
    let mut conn = db.connect();
    // Another session holds a snapshot from before the load (as a long report export would, or a
    // stopped replica's slot).
    let mut reader = db.connect();
    diesel::sql_query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut reader)
        .unwrap();
    diesel::sql_query("SELECT 1").execute(&mut reader).unwrap();
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let reader_pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut reader)
        .unwrap()
        .pid;

    bulk_loaded(&mut conn, "late_hits", 20_000, false);
    let done = upkeep::vacuum_due(&mut conn, &[]).unwrap();
    let late = done.iter().find(|d| d.table == "late_hits").unwrap();
    assert!(late.vacuumed && late.left_pages_unmarked(), "{late:?}");
    let holders = upkeep::holding_back(&mut conn).unwrap();
    assert!(
        holders
            .iter()
            .any(|h| h.holder.starts_with(&format!("session {reader_pid} ")) && h.behind > 0),
        "{holders:?}"
    );
    let waited = upkeep::until_horizon_passes(&mut conn, Duration::from_millis(500)).unwrap();
    assert!(waited.is_some(), "the reader's snapshot is still open");

    // Nothing new was inserted: only the second try looks at it again.
    assert!(!due_tables(&mut conn).contains(&"late_hits".to_owned()));

    diesel::sql_query("COMMIT").execute(&mut reader).unwrap();
    until_every_snapshot_sees(&mut conn, "late_hits");
    assert!(
        upkeep::until_horizon_passes(&mut conn, Duration::from_secs(60))
            .unwrap()
            .is_none(),
        "nothing holds a snapshot older than the load once the reader has committed"
    );
    let again = upkeep::vacuum_due(&mut conn, &["late_hits".to_owned()]).unwrap();
    let late = again.iter().find(|d| d.table == "late_hits").unwrap();
    assert!(late.vacuumed && !late.left_pages_unmarked(), "{late:?}");
    assert_eq!(late.pages_not_visible, 0);
    assert_eq!(state_of(&mut conn, "late_hits").pages_not_visible, 0);
}
