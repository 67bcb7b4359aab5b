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

mod scholarships_support;

const AWARDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/legacy_awards.csv"
);

/// The reasons every run of the awards fixture gives for the rows it cannot import, by line.
const AWARDS_REFUSED: &[&str] = &[
    "line 3 (AWD-1002): the legacy id appears with different values on lines 3, 11",
    "line 7 (AWD-1006): unknown status \"ON_HOLD\": it maps to no award state",
    "line 8 (AWD-1007): amount: \"12O0\" is not an amount",
    "line 9 (AWD-1008): the student is missing (no student_number)",
    "line 10 (AWD-1009): the fund Dean's Merit Scholarship (2026-fall, legacy fund F-77) refuses it: the award of $6,500.00 exceeds the remaining budget $6,000.00",
    "line 11 (AWD-1002): the legacy id appears with different values on lines 3, 11",
    "line 12 (AWD-1010): unknown fund Alumni Bursary (2026-fall): give its budget in fund_budget to create it",
    "line 15 (AWD-1012): the fund Dean's Merit Scholarship (2026-fall, legacy fund F-77) has a budget of $10,000.00 in heyboss, and this row says $12,000.00",
    "line 16 (AWD-1013): the student S2001001 already has an application or award in the fund Dean's Merit Scholarship (2026-fall, legacy fund F-77) in heyboss (one per student and fund)",
];

/// Budget, awarded and remaining of a fund as the read model has them, in cents.
fn fund_money(app: &TestApp, fund: uuid::Uuid) -> (i64, i64) {
    use heyboss::schema::scholarship_funds as funds;
    let mut conn = app.state.pool.get().unwrap();
    funds::table
        .find(fund)
        .select((funds::budget_cents, funds::awarded_cents))
        .first(&mut conn)
        .unwrap()
}

#[test]
fn legacy_awards_become_history_once_within_the_budget_and_the_decider_takes_over() {
    use heyboss::import::legacy_uuid;
    use heyboss::scholarships::commands::FundCommand;
    use scholarships_support::create_open_fund;

    let app = TestApp::spawn();
    // Kim is a heyboss student already, and the committee made the Access Grant in heyboss.
    app.create_account("kim", "student", PASSWORD);
    app.create_account("committee", "staff", PASSWORD);
    app.create_account("root", "admin", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let access = create_open_fund(&mut staff, "Access Grant", "8000");
    let before = total_events(&app);

    let out = heyboss(&app.db.url, &["import", "awards", AWARDS, "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for reason in AWARDS_REFUSED {
        assert!(text.contains(reason), "{reason:?} in:\n{text}");
    }
    let summary = "16 rows: 6 imported, 1 unchanged (imported before), 9 not imported; 5 student accounts created; 2 funds created";
    assert!(text.contains(summary), "{text}");
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert_eq!(total_events(&app), before, "the dry run wrote nothing");
    assert_eq!(user_id(&app, "s2001001"), None);

    let out = heyboss(&app.db.url, &["import", "awards", AWARDS]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    for reason in AWARDS_REFUSED {
        assert!(text.contains(reason), "{reason:?} in:\n{text}");
    }
    assert!(text.contains(summary), "{text}");
    assert_eq!(count_events(&app, "AwardImported"), 6);
    assert_eq!(count_events(&app, "FundCreated"), 3);
    // 5 accounts, 2 funds, 6 awards.
    let after = total_events(&app);
    assert_eq!(after, before + 13);

    // The funds: live awards (accepted 2,500 and disbursed 1,500) hold budget; the declined and
    // revoked ones do not.
    let merit = legacy_uuid("fund", "F-77");
    assert_eq!(fund_money(&app, merit), (1_000_000, 400_000));
    assert_eq!(fund_money(&app, access).1, 100_000);
    let funds = staff.get("/scholarships/funds");
    funds
        .assert_contains("Dean&#x27;s Merit Scholarship")
        .assert_contains("Community Service Award")
        .assert_contains("$6,000.00");
    let board = staff.get(&format!("/scholarships/funds/{merit}"));
    board
        .assert_contains("Imported from the legacy system (award AWD-1001, status ACCEPTED)")
        .assert_contains("Maya Okafor")
        .assert_contains("$4,000.00");

    // The fund report lists each imported award in its decision history.
    let report = staff.get(&format!("/scholarships/funds/{merit}/report"));
    assert_eq!(report.status, 200, "{}", report.body);
    report
        .assert_contains("<span class=\"badge\">imported</span>")
        .assert_contains("Imported from the legacy system (award AWD-1004, status DECLINED)");

    // Again: nothing changes.
    let out = heyboss(&app.db.url, &["import", "awards", AWARDS]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("16 rows: 0 imported, 7 unchanged (imported before), 9 not imported; 0 student accounts created; 0 funds created"),
        "{text}"
    );
    assert_eq!(total_events(&app), after);

    // A corrected file that changes an imported award is refused for that row.
    let changed =
        std::env::temp_dir().join(format!("awards-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &changed,
        "legacy_id,student_number,name,email,fund_id,fund_name,term,amount,status,updated_at\n\
         AWD-1001,S2001001,Maya Okafor,maya.okafor@students.example.edu,F-77,Dean's Merit Scholarship,FA2026,2500.00,DISBURSED,2026-09-01\n",
    )
    .unwrap();
    let out = heyboss(
        &app.db.url,
        &["import", "awards", changed.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("line 2 (AWD-1001): this legacy id was imported before with other values"),
        "{out:?}"
    );
    assert_eq!(total_events(&app), after);

    // The decider takes over. Kim accepts her offered award on her page.
    let mut kim = Client::new(&app);
    kim.login("kim", PASSWORD);
    let kims = legacy_uuid("award", "AWD-1014");
    let offered_then = chrono::Utc::now()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B");
    std::thread::sleep(std::time::Duration::from_millis(20));
    kim.get("/scholarships")
        .assert_contains("Access Grant")
        .assert_contains("$1,000.00");
    let res = kim.post(
        &format!("/scholarships/applications/{kims}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(count_events(&app, "AwardAccepted"), 1);
    // As of before she answered, her page and the application's show the imported offer.
    let past = kim.get(&format!("/scholarships?as_of={offered_then}"));
    past.assert_contains("This page shows the past")
        .assert_contains("Access Grant")
        .assert_contains("offered");
    let past = kim.get(&format!(
        "/scholarships/applications/{kims}?as_of={offered_then}"
    ));
    assert_eq!(past.status, 200, "{}", past.body);
    past.assert_contains("offered").assert_contains(
        "Imported from the legacy system (award AWD-1014, status PENDING_ACCEPTANCE)",
    );
    let now = kim.get(&format!("/scholarships/applications/{kims}"));
    now.assert_contains("accepted");
    // Kim enrolls: the enrollment reaction disburses her accepted (imported) award.
    let kim_id = user_id(&app, "kim").unwrap();
    scholarships_support::append_enrollment(
        &app,
        kim_id,
        "Enrolled",
        serde_json::json!({ "term": "2027-fall" }),
    );
    let disbursed = scholarships_support::events_of(&app, "AwardDisbursed");
    assert_eq!(disbursed.len(), 1);
    assert_eq!(disbursed[0].0["application_id"], kims.to_string());
    // Maya's accepted award is disbursed, Aiko's disbursed one revoked (its money returns), and
    // Omar's declined one cannot be disbursed.
    let store = &app.state.store;
    let ctx = heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli));
    let mut conn = app.state.pool.get().unwrap();
    let mut run = |command: FundCommand| {
        store.execute::<heyboss::scholarships::Fund>(&mut conn, &merit.to_string(), &command, &ctx)
    };
    run(FundCommand::DisburseAward {
        application_id: legacy_uuid("award", "AWD-1001"),
        reason: "enrolled for the fall".into(),
    })
    .unwrap();
    run(FundCommand::RevokeAward {
        application_id: legacy_uuid("award", "AWD-1003"),
        reason: "the student left".into(),
    })
    .unwrap();
    let refused = run(FundCommand::DisburseAward {
        application_id: legacy_uuid("award", "AWD-1004"),
        reason: "by mistake".into(),
    })
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("only an accepted award can be disbursed (this one is refused)"),
        "{refused}"
    );
    drop(conn);
    assert_eq!(fund_money(&app, merit), (1_000_000, 250_000));

    // The fund's history says it in words, and the replay folds the imported award.
    let mut admin = Client::new(&app);
    admin.login("root", PASSWORD);
    let history = admin.get(&format!("/history/fund/{merit}?step=2"));
    assert_eq!(history.status, 200, "{}", history.body);
    history
        .assert_contains("Award imported from the legacy system: $2,500.00 accepted")
        .assert_contains("AWD-1001")
        .assert_contains("legacy_awards.csv");
    let maya = user_id(&app, "s2001001").unwrap();
    assert!(
        history
            .body
            .contains(&format!("Decision for student {maya}")),
        "the replay shows the imported award"
    );
    assert!(history.body.contains("awarded $2,500.00 (accepted)"));

    let out = heyboss(&app.db.url, &["projections", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
