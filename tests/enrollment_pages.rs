//! Enrollment over real HTTP: sign-up, the student's and the staff's pages, scope, concurrency,
//! the pipeline and the "as of" view.

mod common;

use std::sync::Barrier;

use common::{count_events, create_user, Client, Response, TestApp, PASSWORD};
use diesel::prelude::*;
use heyboss::schema::users;
use uuid::Uuid;

fn user_id(app: &TestApp, username: &str) -> Uuid {
    let mut conn = app.state.pool.get().unwrap();
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(&mut conn)
        .unwrap()
}

/// Sign up through the form; the new student is signed in.
fn signup(app: &TestApp, username: &str, name: &str) -> (Client, Uuid) {
    let mut c = Client::new(app);
    c.get("/signup").assert_contains("Sign up as a student");
    let res = c.post(
        "/signup",
        &[
            ("username", username),
            ("display_name", name),
            ("email", &format!("{username}@example.edu")),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(res.status, 303, "sign-up failed: {}", res.body);
    assert_eq!(res.header("location"), Some("/enrollment"));
    (c, user_id(app, username))
}

fn staff(app: &TestApp, username: &str) -> Client {
    create_user(app, username, "staff", PASSWORD);
    let mut c = Client::new(app);
    c.login(username, PASSWORD);
    c
}

/// The stream version the page's forms carry.
fn version(body: &str) -> String {
    let marker = "name=\"version\" value=\"";
    let start = body.find(marker).expect("a form with a version") + marker.len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_owned()
}

/// Load `page`, then post `action` with the version the page showed, as the page's form would.
fn act(c: &mut Client, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
    let body = c.get(page).body;
    let v = version(&body);
    // Confirmed, as the withdrawal's question asks (tests/confirmations.rs asks it).
    let mut all = vec![
        ("version", v.as_str()),
        ("command_id", "cmd"),
        ("confirm", "yes"),
    ];
    all.extend_from_slice(fields);
    let id = Uuid::new_v4().to_string();
    all[1] = ("command_id", &id);
    let path = if page == "/enrollment" {
        format!("/enrollment/actions/{action}")
    } else {
        format!("{page}/actions/{action}")
    };
    c.post(&path, &all)
}

#[track_caller]
fn assert_done(res: &Response, page: &str) {
    assert_eq!(res.status, 303, "expected a redirect, got: {}", res.body);
    assert_eq!(res.header("location"), Some(page));
}

#[test]
fn a_student_signs_up_from_the_login_page_and_starts_at_inquiry() {
    let app = TestApp::spawn();
    let mut anon = Client::new(&app);
    anon.get("/login").assert_contains("href=\"/signup\"");

    // Bad input: a clear message, the form again, nothing recorded.
    anon.get("/signup");
    let res = anon.post(
        "/signup",
        &[
            ("username", "x"),
            ("display_name", "Xavier"),
            ("email", ""),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("A username has 3 to 32 characters");
    let res = anon.post(
        "/signup",
        &[
            ("username", "xavier"),
            ("display_name", "Xavier"),
            ("email", ""),
            ("password", PASSWORD),
            ("term", "2027-winter"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("is not a term");
    assert_eq!(count_events(&app, "UserRegistered"), 0);

    let (mut student, id) = signup(&app, "maya", "Maya Student");
    let page = student.get("/enrollment");
    assert_eq!(page.status, 200);
    page.assert_contains("<h1>My enrollment</h1>")
        .assert_contains("Welcome! Your enrollment for 2027-fall has begun")
        .assert_contains("Inquired about the 2027-fall term")
        .assert_contains("Start the application")
        .assert_contains("Reason for withdrawing");
    // Only the legal actions are offered.
    assert!(!page.body.contains("Accept the offer"));
    assert!(!page.body.contains("Submit the application"));
    assert_eq!(count_events(&app, "Inquired"), 1);
    let mut conn = app.state.pool.get().unwrap();
    let role: String = users::table
        .find(id)
        .select(users::role)
        .first(&mut conn)
        .unwrap();
    assert_eq!(role, "student");

    // Signed in, the sign-up form sends the student home and creates nothing.
    assert_eq!(
        student.get("/signup").header("location"),
        Some("/enrollment")
    );
    student.get("/enrollment");
    let res = student.post(
        "/signup",
        &[
            ("username", "maya2"),
            ("display_name", "Maya Again"),
            ("email", ""),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(res.status, 303);
    assert_eq!(count_events(&app, "UserRegistered"), 1);

    // The same username again is refused.
    let mut other = Client::new(&app);
    other.get("/signup");
    let res = other.post(
        "/signup",
        &[
            ("username", "MAYA"),
            ("display_name", "Another Maya"),
            ("email", ""),
            ("password", PASSWORD),
            ("term", "2027-fall"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("is taken");
    assert_eq!(count_events(&app, "Inquired"), 1);
}

#[test]
fn student_and_staff_walk_the_whole_path_and_the_timeline_says_who_did_what() {
    let app = TestApp::spawn();
    let (mut s, id) = signup(&app, "leo", "Leo Learner");
    let mut office = staff(&app, "sam");
    let staff_page = format!("/enrollment/students/{id}");

    assert_done(&act(&mut s, "/enrollment", "start", &[]), "/enrollment");
    s.get("/enrollment").assert_contains("Application started.");

    // Through HTMX: the progress fragment comes back with the event named in HX-Trigger.
    let v = version(&s.get("/enrollment").body);
    let res = s.post_htmx(
        "/enrollment/actions/submit",
        &[("version", &v), ("command_id", "htmx-submit")],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("hx-trigger"), Some("ApplicationSubmitted"));
    assert!(
        res.body
            .trim_start()
            .starts_with("<div id=\"enrollment-progress\""),
        "a fragment: {}",
        res.body
    );
    assert!(!res.body.contains("<html"));
    res.assert_contains("Application submitted.");

    // The student has nothing to do while the office collects documents.
    s.get("/enrollment")
        .assert_contains("Nothing for you to do now");

    assert_done(
        &act(
            &mut office,
            &staff_page,
            "document",
            &[("document", "transcript")],
        ),
        &staff_page,
    );
    let page = office.get(&staff_page);
    page.assert_contains("transcript: received, identification: pending")
        .assert_contains("Record identification received");
    assert!(
        !page.body.contains("Record decision"),
        "no decision before both documents"
    );
    assert_done(
        &act(
            &mut office,
            &staff_page,
            "document",
            &[("document", "identification")],
        ),
        &staff_page,
    );
    assert_done(
        &act(
            &mut office,
            &staff_page,
            "decide",
            &[("decision", "admitted")],
        ),
        &staff_page,
    );
    assert_done(
        &act(&mut s, "/enrollment", "accept", &[("deposit", "250.00")]),
        "/enrollment",
    );
    assert_done(
        &act(&mut office, &staff_page, "orientation", &[]),
        &staff_page,
    );
    assert_done(
        &act(
            &mut s,
            "/enrollment",
            "courses",
            &[("courses", "cs101, math201")],
        ),
        "/enrollment",
    );
    assert_done(&act(&mut office, &staff_page, "confirm", &[]), &staff_page);

    let page = s.get("/enrollment");
    page.assert_contains("id=\"current-stage\">Enrolled<")
        .assert_contains("Offer accepted with a deposit of $250.00")
        .assert_contains("Courses registered: CS101, MATH201")
        .assert_contains("Admission decided: admitted")
        .assert_contains("by sam")
        .assert_contains("by you (Leo Learner)");
    assert!(
        !page.body.contains("Reason for withdrawing"),
        "no withdrawal once enrolled"
    );
    for t in [
        "Inquired",
        "ApplicationStarted",
        "ApplicationSubmitted",
        "AdmissionDecided",
        "OfferAccepted",
        "OrientationCompleted",
        "CoursesRegistered",
        "Enrolled",
    ] {
        assert_eq!(count_events(&app, t), 1, "{t}");
    }
    assert_eq!(count_events(&app, "DocumentReceived"), 2);
    office
        .get(&staff_page)
        .assert_contains("by Leo Learner")
        .assert_contains("by you (sam)");
}

#[test]
fn illegal_or_bad_actions_are_refused_with_a_message_and_change_nothing() {
    let app = TestApp::spawn();
    let (mut s, _) = signup(&app, "ivy", "Ivy");
    let before = count_events(&app, "Inquired") + count_events(&app, "OfferAccepted");

    // Not offered on the page, but posted anyway: the decider's reason, and the page again.
    let res = act(&mut s, "/enrollment", "accept", &[("deposit", "100")]);
    assert_eq!(res.status, 422);
    res.assert_contains("An admission decision is needed before accepting an offer.")
        .assert_contains("<h1>My enrollment</h1>");

    let res = act(
        &mut s,
        "/enrollment",
        "courses",
        &[("courses", "not a course")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("is not a course code");

    let res = act(&mut s, "/enrollment", "withdraw", &[("reason", "   ")]);
    assert_eq!(res.status, 422);
    res.assert_contains("Give a reason for withdrawing");

    // Through HTMX the fragment comes back with the message, status 422.
    let v = version(&s.get("/enrollment").body);
    let res = s.post_htmx(
        "/enrollment/actions/accept",
        &[("version", &v), ("deposit", "-3")],
    );
    assert_eq!(res.status, 422);
    assert!(res
        .body
        .trim_start()
        .starts_with("<div id=\"enrollment-progress\""));
    res.assert_contains("is not a deposit amount");

    let res = s.post("/enrollment/actions/fly", &[]);
    assert_eq!(res.status, 404);
    let res = s.post("/enrollment/actions/start", &[("version", "abc")]);
    assert_eq!(res.status, 400);

    assert_eq!(
        count_events(&app, "Inquired") + count_events(&app, "OfferAccepted"),
        before
    );
    assert_eq!(count_events(&app, "Withdrawn"), 0);
}

#[test]
fn a_student_account_made_by_an_admin_begins_with_an_inquiry_on_the_page() {
    let app = TestApp::spawn();
    create_user(&app, "stu", "student", PASSWORD);
    let mut s = Client::new(&app);
    s.login("stu", PASSWORD);
    let page = s.get("/enrollment");
    page.assert_contains("No enrollment yet.")
        .assert_contains("Begin with an inquiry");
    assert!(!page.body.contains("Reason for withdrawing"));
    let res = s.post(
        "/enrollment/actions/inquire",
        &[("version", "0"), ("term", "autumn")],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("is not a term");
    let res = s.post(
        "/enrollment/actions/inquire",
        &[("version", "0"), ("term", "2028-spring")],
    );
    assert_done(&res, "/enrollment");
    s.get("/enrollment")
        .assert_contains("Inquired about the 2028-spring term")
        .assert_contains("Start the application");
    assert_eq!(count_events(&app, "Inquired"), 1);
}

#[test]
fn a_double_submitted_form_is_applied_once() {
    let app = TestApp::spawn();
    let (mut s, _) = signup(&app, "dora", "Dora Double");
    let v = version(&s.get("/enrollment").body);
    let fields = [("version", v.as_str()), ("command_id", "same-form")];
    assert_done(&s.post("/enrollment/actions/start", &fields), "/enrollment");
    // The second click of the same form: no second event, no conflict, the same outcome.
    assert_done(&s.post("/enrollment/actions/start", &fields), "/enrollment");
    assert_eq!(count_events(&app, "ApplicationStarted"), 1);
}

#[test]
fn withdrawal_and_reinstatement_return_the_student_to_their_step() {
    let app = TestApp::spawn();
    let (mut s, id) = signup(&app, "wes", "Wes");
    let mut office = staff(&app, "sue");
    let staff_page = format!("/enrollment/students/{id}");
    assert_done(&act(&mut s, "/enrollment", "start", &[]), "/enrollment");
    assert_done(
        &act(
            &mut s,
            "/enrollment",
            "withdraw",
            &[("reason", "Taking a gap year")],
        ),
        "/enrollment",
    );
    let page = s.get("/enrollment");
    page.assert_contains("id=\"current-stage\">Withdrawn<")
        .assert_contains("Withdrawn: Taking a gap year")
        .assert_contains("The admissions office can reinstate your enrollment");
    assert!(!page.body.contains("Submit the application"));

    let page = office.get(&staff_page);
    page.assert_contains(">Reinstate</button>");
    assert_done(
        &act(&mut office, &staff_page, "reinstate", &[]),
        &staff_page,
    );
    s.get("/enrollment")
        .assert_contains("id=\"current-stage\">Application started<")
        .assert_contains("Submit the application");
    assert_eq!(count_events(&app, "Withdrawn"), 1);
    assert_eq!(count_events(&app, "Reinstated"), 1);
}

#[test]
fn a_student_sees_and_changes_only_their_own_enrollment() {
    let app = TestApp::spawn();
    let (mut alice, alice_id) = signup(&app, "alice", "Alice");
    let (mut bob, bob_id) = signup(&app, "bob", "Bob Other");
    let mut office = staff(&app, "stan");
    create_user(&app, "anna", "analyst", PASSWORD);
    let mut analyst = Client::new(&app);
    analyst.login("anna", PASSWORD);

    // Another student's page and actions: 404, not the page.
    let res = alice.get(&format!("/enrollment/students/{bob_id}"));
    assert_eq!(res.status, 404);
    assert!(!res.body.contains("Bob Other"));
    let res = alice.get(&format!("/enrollment/students/{bob_id}?as_of=2030-01-01"));
    assert_eq!(res.status, 404);
    alice.get("/enrollment");
    let res = alice.post(
        &format!("/enrollment/students/{bob_id}/actions/withdraw"),
        &[("reason", "mischief"), ("confirm", "yes")],
    );
    assert_eq!(res.status, 404);
    // Their own staff URL sends them to their page; the office's steps are not theirs.
    let res = alice.get(&format!("/enrollment/students/{alice_id}"));
    assert_eq!(res.status, 303);
    assert_eq!(res.header("location"), Some("/enrollment"));
    alice.get("/enrollment");
    let res = alice.post(
        &format!("/enrollment/students/{alice_id}/actions/decide"),
        &[("decision", "admitted")],
    );
    assert_eq!(res.status, 403);
    let res = alice.get("/enrollment/pipeline");
    assert_eq!(res.status, 403);
    assert!(!res.body.contains("Bob Other"));
    // Alice's page shows nothing of Bob's.
    let page = alice.get("/enrollment");
    assert!(!page.body.contains("Bob Other"));

    // Staff see everyone, and take only the office's steps.
    office
        .get(&format!("/enrollment/students/{bob_id}"))
        .assert_contains("Bob Other");
    office
        .get("/enrollment/pipeline")
        .assert_contains("Alice")
        .assert_contains("Bob Other");
    office.get(&format!("/enrollment/students/{bob_id}"));
    let res = office.post(
        &format!("/enrollment/students/{bob_id}/actions/start"),
        &[("version", "1")],
    );
    assert_eq!(res.status, 403);
    res.assert_contains("Only the student takes this step");
    let res = office.get("/enrollment");
    assert_eq!(res.header("location"), Some("/enrollment/pipeline"));
    let res = office.get(&format!("/enrollment/students/{}", Uuid::new_v4()));
    assert_eq!(res.status, 404);

    // Other roles see none of it.
    assert_eq!(analyst.get("/enrollment/pipeline").status, 403);
    assert_eq!(analyst.get("/enrollment").status, 403);
    assert_eq!(
        analyst
            .get(&format!("/enrollment/students/{bob_id}"))
            .status,
        404
    );

    // Anonymous visitors are sent to sign in.
    let mut anon = Client::new(&app);
    assert_eq!(anon.get("/enrollment").header("location"), Some("/login"));

    assert_eq!(count_events(&app, "Withdrawn"), 0);
    assert_eq!(count_events(&app, "AdmissionDecided"), 0);
    assert_eq!(count_events(&app, "ApplicationStarted"), 0);
    let _ = bob.get("/enrollment");
}

#[test]
fn two_staff_deciding_at_once_give_one_decision_and_one_conflict() {
    let app = TestApp::spawn();
    let (mut s, id) = signup(&app, "cara", "Cara");
    let page = format!("/enrollment/students/{id}");
    let mut first = staff(&app, "pat");
    let mut second = staff(&app, "quinn");
    assert_done(&act(&mut s, "/enrollment", "start", &[]), "/enrollment");
    assert_done(&act(&mut s, "/enrollment", "submit", &[]), "/enrollment");
    assert_done(
        &act(&mut first, &page, "document", &[("document", "transcript")]),
        &page,
    );
    assert_done(
        &act(
            &mut first,
            &page,
            "document",
            &[("document", "identification")],
        ),
        &page,
    );

    // Both open the page and see the same version; then both decide at the same moment.
    let v1 = version(&first.get(&page).body);
    let v2 = version(&second.get(&page).body);
    assert_eq!(v1, v2);
    let path = format!("{page}/actions/decide");
    let barrier = Barrier::new(2);
    let (a, b) = std::thread::scope(|scope| {
        let ha = scope.spawn(|| {
            barrier.wait();
            first.post(
                &path,
                &[
                    ("version", &v1),
                    ("command_id", "a"),
                    ("decision", "admitted"),
                ],
            )
        });
        let hb = scope.spawn(|| {
            barrier.wait();
            second.post(
                &path,
                &[
                    ("version", &v2),
                    ("command_id", "b"),
                    ("decision", "denied"),
                ],
            )
        });
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [303, 409],
        "one decision, one conflict: {} / {}",
        a.body,
        b.body
    );
    let loser = if a.status == 409 { &a } else { &b };
    loser
        .assert_contains("Someone else changed this enrollment while you were looking at it")
        .assert_contains("<h1>Cara");
    assert_eq!(count_events(&app, "AdmissionDecided"), 1);

    // The loser's page now shows the decision that won, and no decision form.
    let winner_decision = if a.status == 303 {
        "admitted"
    } else {
        "denied"
    };
    loser.assert_contains(&format!("Admission decided: {winner_decision}"));
    assert!(!loser.body.contains("Record decision"));

    // A stale page through HTMX: the fragment with the same message, status 409.
    first.get(&page);
    let res = first.post_htmx(&format!("{page}/actions/reinstate"), &[("version", &v1)]);
    assert_eq!(res.status, 409);
    assert!(res
        .body
        .trim_start()
        .starts_with("<div id=\"enrollment-progress\""));
    res.assert_contains("Someone else changed this enrollment");
    assert_eq!(count_events(&app, "Reinstated"), 0);
}

#[test]
fn the_pipeline_counts_filters_lists_and_exports_students() {
    let app = TestApp::spawn();
    let (mut a, _) = signup(&app, "amy", "Amy Early");
    let (_b, _) = signup(&app, "ben", "Ben Benson");
    let (mut c, c_id) = signup(&app, "cat", "Cat Catalano");
    let mut office = staff(&app, "sol");
    assert_done(&act(&mut a, "/enrollment", "start", &[]), "/enrollment");
    assert_done(
        &act(
            &mut c,
            "/enrollment",
            "withdraw",
            &[("reason", "Other plans")],
        ),
        "/enrollment",
    );

    let page = office.get("/enrollment/pipeline");
    assert_eq!(page.status, 200);
    page.assert_contains("<h1>Enrollment pipeline</h1>")
        .assert_contains("<th scope=\"col\" class=\"num\">2027-fall</th>")
        .assert_contains("href=\"/enrollment/pipeline?stage=inquiry&amp;term=2027-fall\">1</a>")
        .assert_contains(
            "href=\"/enrollment/pipeline?stage=application_started&amp;term=2027-fall\">1</a>",
        )
        .assert_contains("href=\"/enrollment/pipeline?stage=withdrawn&amp;term=2027-fall\">1</a>")
        .assert_contains("<td class=\"num\"><strong>3</strong></td>");

    let list = office.get("/enrollment/pipeline?stage=application_started");
    list.assert_contains("Amy Early");
    assert!(!list.body.contains("Ben Benson"));
    let list = office.get("/enrollment/pipeline?name=BENS");
    list.assert_contains("Ben Benson");
    assert!(!list.body.contains("Amy Early"));
    let list = office.get("/enrollment/pipeline?term=2028-spring");
    list.assert_contains("No students match these filters.");
    let list = office.get_htmx("/enrollment/pipeline?name=amy");
    assert!(list.body.starts_with("<div id=\"pipeline-list\">"));
    list.assert_contains("Amy Early");
    assert_eq!(office.get("/enrollment/pipeline?stage=flying").status, 400);
    assert_eq!(office.get("/enrollment/pipeline?days=0").status, 400);

    let csv = office.get("/enrollment/pipeline?format=csv&stage=withdrawn");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "student,username,term,step,last_activity");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("Cat Catalano,cat,2027-fall,Withdrawn,"));

    // No progress in 14 days: make Ben's last event old (the clock of the read model).
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query(
        "UPDATE enrollment_students SET last_event_at = now() - interval '20 days'
         WHERE student_id IN (SELECT id FROM users WHERE username IN ('ben', 'cat'))",
    )
    .execute(&mut conn)
    .unwrap();
    let page = office.get("/enrollment/pipeline");
    let stalled = &page.body[page.body.find("id=\"stalled\"").expect("a stalled table")..];
    assert!(stalled.contains("Ben Benson"));
    assert!(stalled.contains("<td class=\"num\">20</td>"));
    assert!(!stalled.contains("Amy Early"), "Amy moved today");
    assert!(
        !stalled.contains("Cat Catalano"),
        "withdrawn students are not waiting on anyone"
    );
    let page = office.get("/enrollment/pipeline?days=30");
    page.assert_contains("Every open enrollment has moved in the last 30 days.");
    let _ = c_id;
}

#[test]
fn the_as_of_view_folds_the_events_up_to_a_date() {
    use heyboss::es::projection::rebuild;
    let app = TestApp::spawn();
    let (mut s, id) = signup(&app, "olga", "Olga Old");
    let mut office = staff(&app, "ted");
    // Olga's inquiry and application happened in the past: record them with their own dates.
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query(
        "INSERT INTO events (stream_type, stream_id, stream_version, event_type, payload, metadata, recorded_at)
         VALUES ('enrollment', $1, 2, 'ApplicationStarted', '{\"term\":\"2027-fall\"}', $2, now() - interval '10 days'),
                ('enrollment', $1, 3, 'ApplicationSubmitted', '{\"term\":\"2027-fall\"}', $2, now() - interval '5 days')",
    )
    .bind::<diesel::sql_types::Text, _>(id.to_string())
    .bind::<diesel::sql_types::Jsonb, _>(serde_json::json!({
        "actor": {"kind": "user", "id": id},
        "command_id": Uuid::new_v4(), "correlation_id": Uuid::new_v4()
    }))
    .execute(&mut conn)
    .unwrap();
    // Written around the store: bring the stream's claimed version up to the log.
    diesel::sql_query("SELECT events_sync_streams()")
        .execute(&mut conn)
        .unwrap();
    let projection = app
        .state
        .store
        .projections()
        .get("enrollment")
        .unwrap()
        .clone();
    rebuild(&mut conn, projection.as_ref(), 100, |_| {}).unwrap();

    let day = |days_ago: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days_ago))
            .date_naive()
            .to_string()
    };
    let now = s.get("/enrollment");
    now.assert_contains("id=\"current-stage\">Application submitted<");

    let then = s.get(&format!("/enrollment?as_of={}", day(7)));
    assert_eq!(then.status, 200);
    then.assert_contains(&format!("As of {}", day(7)))
        .assert_contains("id=\"current-stage\">Application started<")
        .assert_contains("Application started")
        .assert_contains("Actions are not offered on a past view.");
    assert!(
        !then.body[then.body.find("id=\"timeline-heading\"").unwrap()..]
            .contains("Application submitted"),
        "a later event leaks into the past"
    );
    assert!(!then.body.contains("Withdraw</button>"));

    let staff_view = office.get(&format!("/enrollment/students/{id}?as_of={}", day(7)));
    staff_view.assert_contains("id=\"current-stage\">Application started<");

    let res = s.get("/enrollment?as_of=yesterday");
    assert_eq!(res.status, 400);
    res.assert_contains("is not a date");
}

#[test]
fn demo_data_has_students_at_many_steps_and_is_idempotent() {
    use heyboss::es::projection::rebuild;
    let app = TestApp::spawn();
    heyboss::demo::seed(&app.state).unwrap();
    heyboss::demo::seed(&app.state).unwrap();
    // Eleven demo students and the foundation's demo `student`.
    assert_eq!(count_events(&app, "Inquired"), 12);
    assert_eq!(count_events(&app, "Withdrawn"), 2);
    assert_eq!(count_events(&app, "Reinstated"), 1);
    assert_eq!(count_events(&app, "Enrolled"), 1);

    let mut office = Client::new(&app);
    office.login("staff", heyboss::demo::DEMO_PASSWORD);
    let page = office.get("/enrollment/pipeline");
    for name in [
        "Ines Inquirer",
        "Wren Waitlisted",
        "Wanda Withdrawn",
        "Remy Reinstated",
        "Enzo Enrolled",
    ] {
        page.assert_contains(name);
    }
    let mut student = Client::new(&app);
    student.login("remy", heyboss::demo::DEMO_PASSWORD);
    student
        .get("/enrollment")
        .assert_contains("Reinstated")
        .assert_contains("by Sam Staff");

    // The inline projection and a rebuild from the log agree.
    let snapshot = |conn: &mut PgConnection| -> String {
        #[derive(QueryableByName)]
        struct Dump {
            #[diesel(sql_type = diesel::sql_types::Text)]
            dump: String,
        }
        diesel::sql_query(
            "SELECT coalesce((SELECT string_agg(concat_ws('|', student_id, term, step, stage, decision, transcript, identification, deposit_cents, courses, withdrawn, version, last_event_at), ',' ORDER BY student_id) FROM enrollment_students), '')
             || '#' || coalesce((SELECT string_agg(concat_ws('|', term, stage, students), ',' ORDER BY term, stage) FROM enrollment_stage_counts WHERE students <> 0), '') AS dump",
        )
        .get_result::<Dump>(conn)
        .unwrap()
        .dump
    };
    let mut conn = app.state.pool.get().unwrap();
    let inline = snapshot(&mut conn);
    let projection = app
        .state
        .store
        .projections()
        .get("enrollment")
        .unwrap()
        .clone();
    rebuild(&mut conn, projection.as_ref(), 7, |_| {}).unwrap();
    assert_eq!(snapshot(&mut conn), inline);
    assert!(inline.contains("withdrawn"));
}
