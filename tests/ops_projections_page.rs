//! The admins' projections page (issue 19.9): a difference found by verify reads as an error
//! with its rows behind a disclosure, and row counts stay exact for small tables.

mod common;

use std::time::Duration;

use common::{create_user, Client, TestApp, PASSWORD};
use diesel::prelude::*;

fn wait_for(client: &mut Client, name: &str, text: &str) -> String {
    for _ in 0..400 {
        let body = client
            .get_htmx(&format!("/admin/projections/{name}/progress"))
            .body;
        if body.contains(text) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("never saw {text:?}");
}

#[test]
fn a_difference_found_by_verify_is_an_error_with_its_rows_behind_a_disclosure() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    // Two accounts, counted exactly.
    let page = admin.get("/admin/projections");
    assert!(!page.body.contains("about "), "small tables are counted");

    // A read model changed behind the projection's back (what verify is for).
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query("UPDATE users SET display_name = 'Tampered' WHERE username = 'ana'")
        .execute(&mut conn)
        .unwrap();
    let res = admin.post_htmx("/admin/projections/users/verify", &[]);
    assert_eq!(res.status, 200);
    let done = wait_for(&mut admin, "users", "verify done");
    assert!(done.contains("role=\"alert\""), "{done}");
    assert!(
        done.contains("class=\"flash flash-error differences\""),
        "{done}"
    );
    assert!(done.contains("2 rows differ from a rebuild"), "{done}");
    let details = &done[done
        .find("<details>")
        .expect("the rows are behind a disclosure")..];
    assert!(details.contains("Tampered"), "{details}");
    // The full page shows the same, the actions still there.
    let page = admin.get("/admin/projections");
    page.assert_contains("2 rows differ from a rebuild")
        .assert_contains("<details><summary>Show the rows that differ</summary>")
        .assert_contains(">Verify</button>");

    // A rebuild repairs it and the error goes.
    admin.post("/admin/projections/users/rebuild", &[("confirm", "yes")]);
    wait_for(&mut admin, "users", "rebuild done");
    let page = admin.get("/admin/projections");
    assert!(!page.body.contains("rows differ"), "{}", page.body);
}

/// Whatever a run is doing, its progress names it: never "0 / 0" while the events are being
/// counted, never a bare 100% while the indexes are built or the tables swapped.
#[test]
fn every_phase_of_a_run_is_named_in_its_progress() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let phases = [
        ("preparing", 0, 0, "Preparing: creating the shadow tables"),
        (
            "replaying",
            0,
            2_000,
            "Reading the log into the shadow tables: 0 / 2,000 events",
        ),
        (
            "replaying",
            1_500,
            2_000,
            "Reading the log into the shadow tables: 1,500 / 2,000 events",
        ),
        (
            "indexing",
            2_000,
            2_000,
            "Building the shadow tables' indexes",
        ),
        (
            "analyzing",
            2_000,
            2_000,
            "Analyzing: gathering the new tables' statistics",
        ),
        ("swapping", 2_000, 2_000, "Swapping the new tables in"),
        (
            "comparing",
            2_000,
            2_000,
            "Comparing the rebuilt tables with the live ones",
        ),
    ];
    for (phase, done, total, says) in phases {
        diesel::sql_query(
            "INSERT INTO projection_runs (name, kind, state, phase, events_done, events_total) \
             VALUES ('users', 'rebuild', 'running', $1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET state = 'running', phase = $1, events_done = $2, \
               events_total = $3, updated_at = now()",
        )
        .bind::<diesel::sql_types::Text, _>(phase)
        .bind::<diesel::sql_types::BigInt, _>(done)
        .bind::<diesel::sql_types::BigInt, _>(total)
        .execute(&mut conn)
        .unwrap();
        for body in [
            admin.get_htmx("/admin/projections/users/progress").body,
            admin.get("/admin/projections").body,
        ] {
            assert!(body.contains(says), "{phase}: {body}");
            assert!(body.contains(&format!("rebuild {phase}</span>")), "{body}");
            assert!(!body.contains("0 / 0"), "{phase}: {body}");
            assert!(body.contains("<progress"), "{phase}: {body}");
            // Polled while it runs.
            assert!(body.contains("hx-trigger=\"every 1s\""), "{phase}: {body}");
        }
    }
}

/// A subscriber's backlog is counted while short and estimated (and said to be) when long; the
/// page says where its time went (Server-Timing, read by `cargo bench --bench projections_page`).
#[test]
fn a_long_backlog_is_estimated_and_the_page_times_its_parts() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let mut generator = heyboss::threats::simulate::Generator::new(7, vec!["sig".into()], 100);
    heyboss::threats::simulate::append_unprojected(
        &mut conn,
        &mut generator,
        &mut Default::default(),
        1_500,
    );
    // One reader that never started, one that has read everything.
    diesel::sql_query(
        "INSERT INTO subscriber_checkpoints (name, last_transaction_id, last_position) \
         SELECT 'idle-reader', 0, 0 UNION ALL \
         SELECT 'caught-up', max(transaction_id), max(position) FROM events",
    )
    .execute(&mut conn)
    .unwrap();
    let statuses = heyboss::es::subscriber::statuses(&mut conn).unwrap();
    let of = |name: &str| statuses.iter().find(|s| s.name == name).unwrap();
    assert!(of("idle-reader").behind >= 1_500, "{statuses:?}");
    assert!(of("idle-reader").behind_estimated);
    assert_eq!(
        (of("caught-up").behind, of("caught-up").behind_estimated),
        (0, false)
    );

    let page = admin.get("/admin/projections");
    let row = |name: &str| {
        let at = page
            .body
            .find(&format!("<th scope=\"row\">{name}</th>"))
            .unwrap();
        page.body[at..at + page.body[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row("idle-reader").contains("about 1,5"),
        "{}",
        row("idle-reader")
    );
    assert!(!row("caught-up").contains("about"), "{}", row("caught-up"));
    let timing = page
        .header("server-timing")
        .expect("a Server-Timing header");
    for part in [
        "subscribers;dur=",
        "positions;dur=",
        "rows;dur=",
        "render;dur=",
    ] {
        assert!(timing.contains(part), "{timing}");
    }
}
