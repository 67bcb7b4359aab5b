//! The scholarships read models are projections: emptied and replayed from the log, they come
//! back exactly as they were.

mod common;
mod scholarships_support;

use diesel::prelude::*;
use diesel::sql_types::Text;
use heyboss::es::projection::rebuild;

#[derive(QueryableByName)]
struct Dump {
    #[diesel(sql_type = Text)]
    rows: String,
}

fn dump(conn: &mut PgConnection, table: &str) -> String {
    diesel::sql_query(format!(
        "SELECT coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '') AS rows FROM {table} t"
    ))
    .get_result::<Dump>(conn)
    .unwrap()
    .rows
}

#[test]
fn rebuilding_the_scholarship_projections_reproduces_the_read_models() {
    let app = common::TestApp::spawn();
    heyboss::demo::seed(&app.state).unwrap();
    // An enrollment reaction too, so disbursed awards and enrolled students are in the log.
    let student = heyboss::accounts::queries::find_by_username(
        &mut app.state.pool.get().unwrap(),
        "scholar02",
    )
    .unwrap()
    .unwrap()
    .id;
    scholarships_support::append_enrollment(
        &app,
        student,
        "Enrolled",
        serde_json::json!({"term": "2027-fall"}),
    );
    assert_eq!(
        scholarships_support::events_of(&app, "AwardDisbursed").len(),
        1
    );

    let tables = [
        "scholarship_funds",
        "scholarship_applications",
        "scholarship_assignments",
        "scholarship_reviews",
        "scholarship_decisions",
        "scholarship_enrolled_students",
    ];
    let mut conn = app.state.pool.get().unwrap();
    let before: Vec<String> = tables.iter().map(|t| dump(&mut conn, t)).collect();
    assert!(
        before.iter().all(|rows| !rows.is_empty()),
        "every table has rows"
    );
    for name in [
        "scholarship_funds",
        "scholarship_applications",
        "scholarship_enrolled_students",
    ] {
        let projection = app.state.store.projections().get(name).unwrap().clone();
        let replayed = rebuild(&mut conn, projection.as_ref(), 7, |_| {}).unwrap();
        assert!(replayed > 0, "{name} replays events");
    }
    for (table, rows) in tables.iter().zip(before) {
        assert_eq!(dump(&mut conn, table), rows, "{table} after a rebuild");
    }
}
