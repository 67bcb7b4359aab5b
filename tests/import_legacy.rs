//! `heyboss import enrollments` through the real binary on a realistic legacy export with bad
//! rows (tests/fixtures/legacy_enrollments.csv): the dry run lists every row it cannot map and
//! changes nothing; the import records what is known, creates accounts for unknown students,
//! changes nothing the second time; then the decider takes over.

mod common;

use common::heyboss_cli as heyboss;
use common::{count_events, Client, TestApp, PASSWORD};
use diesel::prelude::*;
use heyboss::schema::{credentials, events, users};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/legacy_enrollments.csv"
);

fn total_events(app: &TestApp) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    events::table.count().get_result(&mut conn).unwrap()
}

fn user_id(app: &TestApp, username: &str) -> Option<uuid::Uuid> {
    let mut conn = app.state.pool.get().unwrap();
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(&mut conn)
        .optional()
        .unwrap()
}

/// The reasons every run gives for the rows it cannot import, by line.
const REFUSED: &[&str] = &[
    "line 3 (ENR-2026-0002): the legacy id appears with different values on lines 3, 11",
    "line 7 (ENR-2026-0006): unknown status \"PENDING_REVIEW\": it maps to no step",
    "line 8 (ENR-2026-0007): bad date \"2026-13-01\" in updated_at",
    "line 9 (ENR-2026-0008): the student is missing (no student_number)",
    "line 11 (ENR-2026-0002): the legacy id appears with different values on lines 3, 11",
    "line 12 (ENR-2026-0010): the student's enrollment already has a history in heyboss (inquiry for 2027-fall)",
];

#[test]
fn a_legacy_export_becomes_history_once_and_the_decider_takes_over() {
    let app = TestApp::spawn();
    // Kim signed up in heyboss before the legacy records came in: her history stays hers.
    {
        let mut conn = app.state.pool.get().unwrap();
        let kim = heyboss::accounts::NewAccount::parse(
            "kim",
            "Kim Nguyen",
            "Kim.Nguyen@students.example.edu",
            "student",
            PASSWORD,
        )
        .unwrap();
        heyboss::enrollment::service::sign_up(
            &mut conn,
            &app.state.store,
            heyboss::es::Metadata::new(heyboss::es::Actor::Cli),
            kim,
            &heyboss::enrollment::Term::parse("2027-fall").unwrap(),
        )
        .unwrap();
    }
    let before = total_events(&app);

    let out = heyboss(
        &app.db.url,
        &["import", "enrollments", FIXTURE, "--dry-run"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for reason in REFUSED {
        assert!(text.contains(reason), "{reason:?} in:\n{text}");
    }
    assert!(
        text.contains("13 rows: 6 imported, 1 unchanged (imported before), 6 not imported; 6 student accounts created"),
        "{text}"
    );
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert_eq!(total_events(&app), before, "the dry run wrote nothing");
    assert_eq!(user_id(&app, "s1002345"), None);

    let out = heyboss(&app.db.url, &["import", "enrollments", FIXTURE]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for reason in REFUSED {
        assert!(text.contains(reason), "{reason:?} in:\n{text}");
    }
    assert!(text.contains("13 rows: 6 imported, 1 unchanged"), "{text}");
    assert_eq!(count_events(&app, "EnrollmentImported"), 6);
    // 6 accounts and 6 imported records.
    assert_eq!(total_events(&app), before + 12);
    let maya = user_id(&app, "s1002345").expect("an account for Maya");
    assert_eq!(maya, heyboss::import::legacy_uuid("student", "s1002345"));
    let mut conn = app.state.pool.get().unwrap();
    let has_password: i64 = credentials::table
        .filter(credentials::user_id.eq(maya))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(
        has_password, 0,
        "a created account has no password until an admin sets one"
    );
    let mut nobody = Client::new(&app);
    nobody.get("/login");
    let refused = nobody.post(
        "/login",
        &[("username", "s1002345"), ("password", PASSWORD)],
    );
    assert_ne!(refused.status, 303);

    // Again: nothing changes.
    let out = heyboss(&app.db.url, &["import", "enrollments", FIXTURE]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("13 rows: 0 imported, 7 unchanged (imported before), 6 not imported; 0 student accounts created"), "{text}");
    assert_eq!(total_events(&app), before + 12);

    // A corrected file that changes an imported record's status is refused for that row.
    let changed =
        std::env::temp_dir().join(format!("legacy-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &changed,
        "legacy_id,student_number,name,email,term,status,updated_at\n\
         ENR-2026-0001,S1002345,Maya Okafor,maya.okafor@students.example.edu,FA2026,DENIED,2026-07-03,\n",
    )
    .unwrap();
    let out = heyboss(
        &app.db.url,
        &["import", "enrollments", changed.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "line 2 (ENR-2026-0001): this legacy id was imported before with other values"
        ),
        "{out:?}"
    );
    assert_eq!(total_events(&app), before + 12);

    // The decider takes over: an admin sets Maya's password, she signs in and accepts her offer.
    app.create_account("registrar", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("registrar", PASSWORD);
    admin.get(&format!("/admin/accounts/{maya}"));
    let reset = admin.post(
        &format!("/admin/accounts/{maya}/password"),
        &[("new_password", "maya's new password")],
    );
    assert!(reset.status < 400, "{}", reset.body);
    let mut student = Client::new(&app);
    student.login("s1002345", "maya's new password");
    let page = student.get("/enrollment");
    page.assert_contains("Imported from the legacy system (record ENR-2026-0001, status ADMITTED)");
    let accepted = student.post("/enrollment/actions/accept", &[("deposit", "250")]);
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    assert_eq!(count_events(&app, "OfferAccepted"), 1);
    // A denied legacy record stays final.
    let lucas = user_id(&app, "s1002354").unwrap();
    let store = &app.state.store;
    let ctx = heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli));
    let denied = heyboss::enrollment::service::execute(
        &mut conn,
        store,
        &ctx,
        lucas,
        &heyboss::enrollment::EnrollmentCommand::Withdraw {
            reason: "moving".into(),
        },
    );
    assert!(denied
        .unwrap_err()
        .to_string()
        .contains("admission was denied"));
    // An imported enrolled student is enrolled for the scholarships context too.
    let aiko = user_id(&app, "s1002349").unwrap();
    assert!(heyboss::scholarships::service::is_enrolled(&mut conn, aiko).unwrap());

    let out = heyboss(&app.db.url, &["projections", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_file_without_the_columns_is_refused_whole() {
    let app = TestApp::spawn();
    let file = std::env::temp_dir().join(format!("legacy-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, "id,student,state\n1,S1,ADMITTED\n").unwrap();
    let out = heyboss(
        &app.db.url,
        &["import", "enrollments", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the header row lacks the column(s) legacy_id, student_number"),
        "{err}"
    );
    assert_eq!(total_events(&app), 0);
}
