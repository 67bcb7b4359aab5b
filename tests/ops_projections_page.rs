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
    assert!(done.contains("class=\"flash flash-error\""), "{done}");
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
