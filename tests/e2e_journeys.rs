//! The product's journeys in a real headless Chromium against the real app: a student and the
//! staff move one enrollment from inquiry to enrolled and one scholarship from application to a
//! disbursed award, each in their own browser. Every action goes through HTMX and is proven not
//! to reload the page; every page is checked for console errors, failed requests and serious or
//! critical axe violations. Screenshots for the README: `HEYBOSS_SCREENSHOTS=1` (see README).
//!
//! Ignored by plain `cargo test`; `.ci/run` runs them (`--run-ignored all`):
//! `cargo nextest run --run-ignored all -E 'binary(=e2e_journeys)'`.
//!
//! The analysts' journey: two analysts with different clearances on one top-threats report, and a
//! clearance revoked by an admin that is gone from the next refresh.

mod common;
mod journeys;
mod scholarships_support;
mod webdriver;

use common::TestApp;
use journeys::{
    assert_usable_on_a_phone, choose, count, create_account, htmx_submit, in_view,
    overflowing_elements, register_student, screenshot, screenshot_of, sign_in, sign_up_student,
    table_rows, text_of, wait_until, wait_until_idle, Health,
};
use serde_json::json;
use webdriver::Browser;

/// The student's part of the enrollment page: stepper steps done, and timeline entries.
fn progress(browser: &Browser) -> (usize, usize) {
    (
        count(browser, ".stepper .step-done"),
        count(browser, ".timeline li"),
    )
}

/// Act on the enrollment page through HTMX; the stepper and timeline must move, in place.
#[track_caller]
fn enrollment_step(browser: &Browser, health: &Health, button_css: &str, stage: &str) {
    let (done, events) = progress(browser);
    htmx_submit(browser, button_css, &format!("now: {stage}"));
    assert_eq!(text_of(browser, "#current-stage"), stage);
    let (done_after, events_after) = progress(browser);
    assert!(
        done_after >= done,
        "the stepper went back: {done} -> {done_after}"
    );
    assert!(
        events_after > events,
        "the timeline did not grow after {button_css}"
    );
    assert!(
        text_of(browser, "#enrollment-progress .flash-success").ends_with('.'),
        "a success message follows the action"
    );
    // Keyboard focus continues from the message, not from the top of the page.
    // (The move happens once HTMX has settled the swap, a moment after the request ends.)
    wait_until(
        &format!("focus moves to the message after {button_css}"),
        || {
            browser.execute(
                "return document.activeElement.matches('#enrollment-progress .flash-success');",
                json!([]),
            ) == json!(true)
        },
    );
    health.quiet(browser);
}

#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn a_student_and_the_staff_take_an_enrollment_and_a_scholarship_from_start_to_finish() {
    let app = TestApp::spawn();
    let committee = create_account(&app, "committee", "Jordan Reyes", "staff");
    let student = Browser::start();
    let staff = Browser::start();
    let mut health = Health::new();

    // --- The student signs up; the enrollment begins with an inquiry.
    student.goto(&app.url("/signup"));
    health.page(&student);
    sign_up_student(&student, &app, "ada", "Ada Lovelace");
    assert!(student.current_url().ends_with("/enrollment"));
    student.wait_for_text("Welcome!");
    health.page(&student);
    assert_eq!(text_of(&student, "#current-stage"), "Inquiry");
    assert_eq!(progress(&student), (1, 1));
    assert_usable_on_a_phone(&student, "the student's enrollment");

    // Start and submit the application: the stepper and the timeline update without a reload.
    enrollment_step(
        &student,
        &health,
        "form[action='/enrollment/actions/start'] button",
        "Application started",
    );
    enrollment_step(
        &student,
        &health,
        "form[action='/enrollment/actions/submit'] button",
        "Application submitted",
    );
    student.wait_for_text("the next step is the admissions office's");
    assert!(progress(&student).0 >= 3);

    // --- Staff find the student in the pipeline (filtered in place) and record documents and
    // the admission decision.
    sign_in(&staff, &app, "committee");
    assert!(staff.current_url().ends_with("/enrollment/pipeline"));
    health.page(&staff);
    staff.fill("#filter-name", "Lovelace");
    htmx_submit(
        &staff,
        "form[action='/enrollment/pipeline'][hx-get] button",
        "Ada Lovelace",
    );
    // The filtered list came in place, and its address was pushed for the back button.
    wait_until("the filter is in the address", || {
        staff.current_url().contains("name=Lovelace")
    });
    health.quiet(&staff);
    staff.click(&staff.find("#pipeline-list a[href^='/enrollment/students/']"));
    staff.wait_for_text("Record for the office");
    health.page(&staff);
    let student_page = staff.current_url();
    assert_usable_on_a_phone(&staff, "the office's page of a student");
    for document in ["transcript", "identification"] {
        htmx_submit(
            &staff,
            &format!("form[action$='/actions/document']:has(input[value='{document}']) button"),
            &format!("Document received: {document}."),
        );
        // The form for that document is gone once it is recorded.
        assert!(staff
            .try_find(&format!("input[name='document'][value='{document}']"))
            .is_none());
        health.quiet(&staff);
    }
    assert_eq!(text_of(&staff, "#current-stage"), "Documents received");
    choose(&staff, "#decide-decision", "admitted");
    enrollment_step(
        &staff,
        &health,
        "form[action$='/actions/decide'] button",
        "Admitted",
    );

    // --- Staff open a scholarship fund (the fund list swaps in place).
    staff.goto(&app.url("/scholarships/funds"));
    health.page(&staff);
    staff.find(".empty");
    staff.fill("#fund-name", "Lovelace Prize");
    choose(&staff, "#fund-term", "2027-fall");
    staff.fill("#fund-budget", "10,000.00");
    staff.fill("#fund-criteria", "Curiosity and a plan.");
    choose(&staff, "#fund-opens-on", "2020-01-01");
    choose(&staff, "#fund-closes-on", "2099-12-31");
    // A person making room for a long text: the swap that follows must not copy the box's
    // inline style as an attribute (HTMX settles `style` by default; the CSP blocks it).
    journeys::resize_text_box(&staff, "#fund-criteria");
    htmx_submit(
        &staff,
        "form[action='/scholarships/funds'] button[type=submit]",
        "Lovelace Prize",
    );
    health.quiet(&staff);
    // A new fund is closed until the committee opens its window.
    htmx_submit(
        &staff,
        "form[action$='/window']:has(input[value='true']) button",
        "The fund is open for applications.",
    );
    health.quiet(&staff);
    health.audit_now(&staff);

    // --- The student accepts the admission offer and applies for the scholarship.
    student.goto(&app.url("/enrollment"));
    health.page(&student);
    student.fill("#accept-deposit", "250.00");
    enrollment_step(
        &student,
        &health,
        "form[action='/enrollment/actions/accept'] button",
        "Offer accepted",
    );
    student.click(&student.find("nav a[href='/scholarships']"));
    student.wait_for_text("Open funds");
    health.page(&student);
    student.fill(
        "textarea[name='statement']",
        "I want to build the analytical engine.",
    );
    htmx_submit(
        &student,
        "form[action$='/apply'] button",
        "Your application is submitted.",
    );
    health.quiet(&student);
    health.audit_now(&student);

    // --- Staff: the committee board; assign a reviewer, score, decide an award. Two more
    // applicants (straight through the store) make the ranking visible.
    staff.goto(&app.url("/scholarships/funds"));
    staff.click(&staff.find("#funds a[href^='/scholarships/funds/']:not([href$='/report'])"));
    staff.wait_for_text("Committee board");
    let board = staff.current_url();
    let fund: uuid::Uuid = board.rsplit('/').next().unwrap().parse().unwrap();
    for (username, name) in [("grace", "Grace Hopper"), ("alan", "Alan Turing")] {
        let id = register_student(&app, username, name);
        scholarships_support::apply_directly(&app, fund, id);
    }
    staff.goto(&board);
    staff.wait_for_text("1–3 of 3");
    health.page(&staff);
    assert_usable_on_a_phone(&staff, "the committee board");
    let row = staff
        .execute(
            "return [...document.querySelectorAll('#board tbody tr')].find(tr => tr.innerText.includes(arguments[0])).id;",
            json!(["Ada Lovelace"]),
        )
        .as_str()
        .unwrap()
        .to_owned();
    // No reviewer is preselected: the committee chooses one.
    choose(
        &staff,
        &format!("#{row} select[name=reviewer_id]"),
        &committee.to_string(),
    );
    htmx_submit(
        &staff,
        &format!("#{row} form[action$='/reviewers'] button"),
        "Reviewer assigned.",
    );
    health.quiet(&staff);

    let report = format!("{board}/report");
    staff.goto(&report);
    health.page(&staff);
    assert_eq!(text_of(&staff, "#awarded"), "$0.00");
    assert_eq!(text_of(&staff, "#remaining"), "$10,000.00");

    staff.click(&staff.find("nav a[href='/scholarships/reviews']"));
    staff.wait_for_text("To do (1)");
    health.page(&staff);
    staff.click(&staff.find("#to-do a.button"));
    staff.wait_for_text("Your review");
    health.page(&staff);
    assert_usable_on_a_phone(&staff, "the review form");
    for (field, score) in [
        ("merit", "5"),
        ("need", "4"),
        ("statement", "5"),
        ("community", "4"),
    ] {
        choose(&staff, &format!("#review-{field}"), score);
    }
    staff.fill("#review-comment", "A clear plan.");
    htmx_submit(
        &staff,
        "#review-form button[type=submit]",
        "Your review is saved.",
    );
    health.quiet(&staff);

    staff.goto(&board);
    health.page(&staff);
    staff.wait_for_text("4.50");
    // Reviewed first: Ada ranks first, ahead of the unreviewed.
    let ranking: Vec<(String, String)> = table_rows(&staff, "#board table")
        .into_iter()
        .map(|cells| {
            (
                cells[0].clone(),
                cells[1].lines().next().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(ranking.len(), 3, "{ranking:?}");
    assert_eq!(ranking[0], ("1".to_owned(), "Ada Lovelace".to_owned()));
    screenshot_of(&staff, "committee-board", "#board");
    staff.click(&staff.find(&format!("#{row} details.decide summary")));
    assert_usable_on_a_phone(&staff, "the committee board's decision form");
    choose(&staff, &format!("#{row} select[name='outcome']"), "award");
    // Bad input: the message shows in place, nothing is recorded, the form keeps what was typed.
    staff.fill(&format!("#{row} input[name='amount']"), "12.345");
    // Scrolled down, as on a long board: the page's message area is out of sight.
    let scrolled = staff.execute(
        "window.scrollTo(0, document.body.scrollHeight); return window.scrollY;",
        json!([]),
    );
    assert!(scrolled.as_f64().unwrap_or(0.0) > 150.0, "{scrolled}");
    staff.fill(
        &format!("#{row} input[name='reason']"),
        "Top of the ranking.",
    );
    htmx_submit(
        &staff,
        &format!("#{row} form[action$='/decision'] button"),
        "is not an amount",
    );
    health.refused(&staff, 422);
    assert!(
        in_view(&staff, &format!("#{row} .field-error")),
        "the mistake is shown beside its field, where the staff member is looking"
    );
    wait_until("the focus on the summary of the mistakes", || {
        staff
            .execute(
                "return !!document.activeElement && document.activeElement.classList.contains('error-summary');",
                json!([]),
            )
            .as_bool()
            .unwrap_or(false)
    });
    health.audit_now(&staff);
    assert_eq!(text_of(&staff, "#remaining"), "$10,000.00");
    staff.fill(&format!("#{row} input[name='amount']"), "2,500.00");
    htmx_submit(
        &staff,
        &format!("#{row} form[action$='/decision'] button"),
        "Awarded $2,500.00.",
    );
    assert!(
        staff.try_find("#messages .flash-error").is_none(),
        "the old refusal is gone after the next action"
    );
    assert_eq!(text_of(&staff, "#remaining"), "$7,500.00");
    health.quiet(&staff);
    health.audit_now(&staff);

    // The fund report changed with the decision.
    staff.goto(&report);
    health.page(&staff);
    assert_eq!(text_of(&staff, "#awarded"), "$2,500.00");
    assert_eq!(text_of(&staff, "#remaining"), "$7,500.00");
    staff.wait_for_text("Top of the ranking.");

    // --- The student accepts the award: offered now, paid once enrolled. The notification
    // banner tells of the offer, with the unread count in the navigation, and leaves the
    // keyboard focus where it was (it loads after the page).
    // The banner's text once it has loaded (None before).
    let banner = || {
        student
            .execute(
                "const n = document.querySelector('#notices .flash'); return n ? n.innerText : null;",
                json!([]),
            )
            .as_str()
            .map(str::to_owned)
    };
    let banner_says = |text: &str| banner().is_some_and(|b| b.contains(text));
    wait_until("the banner tells of the award", || {
        student.goto(&app.url("/scholarships"));
        wait_until_idle(&student);
        banner_says("Accept or decline it.")
    });
    health.page(&student);
    assert!(student.try_find("#unread-count").is_some());
    let focus_in_banner = student.execute(
        "return document.activeElement.closest('#notices') !== null;",
        json!([]),
    );
    assert_eq!(focus_in_banner, json!(false), "the banner took the focus");
    student.wait_for_text("$2,500.00");
    assert_usable_on_a_phone(&student, "the student's award to accept or decline");
    htmx_submit(
        &student,
        "form[action$='/award']:has(input[value='accept']) button",
        "It will be disbursed once you are enrolled.",
    );
    health.quiet(&student);
    // Accepted, the offer is no longer asked for on the next page.
    wait_until("the banner forgets the answered offer", || {
        student.goto(&app.url("/scholarships"));
        wait_until_idle(&student);
        banner().is_some_and(|b| !b.contains("Accept or decline it."))
    });

    // --- Orientation (staff), courses (student), enrollment confirmed (staff).
    staff.goto(&student_page);
    health.page(&staff);
    enrollment_step(
        &staff,
        &health,
        "form[action$='/actions/orientation'] button",
        "Orientation completed",
    );
    student.goto(&app.url("/enrollment"));
    health.page(&student);
    screenshot(&student, "student-enrollment");
    student.fill("#register-courses", "CS101, MATH201");
    enrollment_step(
        &student,
        &health,
        "form[action='/enrollment/actions/courses'] button",
        "Courses registered",
    );
    staff.goto(&student_page);
    health.page(&staff);
    enrollment_step(
        &staff,
        &health,
        "form[action$='/actions/confirm'] button",
        "Enrolled",
    );

    // The student sees the finished enrollment and the award disbursed (the scholarships
    // context reacted to `Enrolled`).
    student.goto(&app.url("/enrollment"));
    health.page(&student);
    assert_eq!(progress(&student).0, 9, "every step is done");
    student.wait_for_text("You are enrolled: every step is complete.");
    student.goto(&app.url("/scholarships"));
    health.page(&student);
    student.wait_for_text("disbursed");
    // The application's own page, with its history; the account page.
    student.click(&student.find("#student-scholarships a[href^='/scholarships/applications/']"));
    student.wait_for_text("History");
    health.page(&student);
    student.wait_for_text("$2,500.00");
    student.click(&student.find("header a[href='/account']"));
    health.page(&student);
    // The staff see the same application from the committee's side, and an enrollment as of a
    // past day.
    staff.goto(&board);
    staff.click(&staff.find(&format!("#{row} a[href^='/scholarships/applications/']")));
    staff.wait_for_text("Average score");
    health.page(&staff);
    staff.goto(&format!("{student_page}?as_of=2020-01-01"));
    staff.wait_for_text("No enrollment events yet on that date.");
    health.quiet(&staff);
    health.audit_now(&staff);
    // A page that does not exist answers a proper page (the browser logs its 404).
    student.goto(&app.url("/no-such-page"));
    health.refused(&student, 404);
    health.page(&student);

    // At phone width nothing overflows sideways.
    student.set_window_size(390, 844);
    for path in ["/enrollment", "/scholarships", "/account"] {
        student.goto(&app.url(path));
        health.quiet(&student);
        let wide = overflowing_elements(&student);
        assert!(wide.is_empty(), "{path} overflows at phone width: {wide:?}");
    }
    student.goto(&app.url("/enrollment"));
    screenshot(&student, "student-enrollment-phone");
    staff.set_window_size(390, 844);
    let pipeline = app.url("/enrollment/pipeline");
    let funds = app.url("/scholarships/funds");
    let reviews = app.url("/scholarships/reviews");
    for url in [&pipeline, &funds, &board, &report, &student_page, &reviews] {
        staff.goto(url);
        health.quiet(&staff);
        let wide = overflowing_elements(&staff);
        assert!(wide.is_empty(), "{url} overflows at phone width: {wide:?}");
        let out = journeys::actions_out_of_reach(&staff);
        assert!(
            out.is_empty(),
            "{url}: actions out of reach at phone width: {out:#?}"
        );
    }

    let audited = health.audited();
    assert!(audited.len() >= 13, "pages checked with axe: {audited:?}");
}

/// The health checks can fail: an unlabeled field, a failed request, an inline style the CSP
/// blocks and a page without visible focus are each caught (so a clean journey means something).
#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn the_page_checks_catch_what_they_look_for() {
    let app = TestApp::spawn();
    let browser = Browser::start();
    browser.goto(&app.url("/login"));
    assert!(browser.accessibility_violations().is_empty());
    assert!(browser.console_errors().is_empty());
    assert_eq!(journeys::focus_problem(&browser), None);

    browser.execute(
        "const i = document.createElement('input'); i.id = 'unlabeled'; document.querySelector('main').append(i);
         const img = document.createElement('img'); img.src = '/static/missing.png'; img.alt = ''; document.querySelector('main').append(img);",
        json!([]),
    );
    journeys::wait_until("the missing image failed", || {
        browser
            .execute(
                "return document.querySelector('main img').complete;",
                json!([]),
            )
            .as_bool()
            .unwrap_or(false)
    });
    let violations = browser.accessibility_violations();
    assert!(
        violations.iter().any(|v| v.starts_with("\"label\"")),
        "{violations:#?}"
    );
    let errors = browser.console_errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("missing.png") && e.contains("404")),
        "{errors:#?}"
    );

    // An inline style blocked by the Content-Security-Policy is caught: Chromium leaves it out
    // of the log WebDriver reads, so a journey once logged 38 of them and passed.
    browser.execute(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<p style=\"color: red\">styled</p>');",
        json!([]),
    );
    let errors = browser.console_errors();
    assert!(
        errors.iter().any(|e| e.contains("style-src")),
        "{errors:#?}"
    );
    // ... by the page's listener and in Chromium's own log alike.
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("chromium:") && e.contains("Content Security Policy")),
        "{errors:#?}"
    );
    // ... and in a page the browser navigated to since.
    browser.goto(&app.url("/login"));
    browser.execute(
        "document.head.insertAdjacentHTML('beforeend', '<style>p { color: red; }</style>');",
        json!([]),
    );
    let errors = browser.console_errors();
    assert!(
        errors.iter().any(|e| e.contains("style-src")),
        "{errors:#?}"
    );

    // A stylesheet that hides the focus ring is caught.
    browser.execute(
        "document.styleSheets[0].insertRule(':focus-visible { outline: none !important; }', document.styleSheets[0].cssRules.length);",
        json!([]),
    );
    let problem = journeys::focus_problem(&browser);
    assert!(
        problem
            .as_deref()
            .is_some_and(|p| p.contains("not visible")),
        "{problem:?}"
    );
}

/// With JavaScript a destructive action asks in a dialog before it is sent: Cancel sends
/// nothing; OK applies it in place (HTMX). (Without JavaScript: tests/confirmations.rs.)
#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn withdrawing_in_the_browser_asks_first() {
    let app = TestApp::spawn();
    let browser = Browser::start();
    let health = Health::new();
    sign_up_student(&browser, &app, "wren", "Wren Walker");
    browser.fill("#withdraw-reason", "Moving abroad");
    let withdraw = "form[action='/enrollment/actions/withdraw'] button";
    browser.mark_page();
    browser.click(&browser.find(withdraw));
    assert!(browser
        .alert_text()
        .starts_with("Withdraw your application?"));
    browser.answer_alert(false);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(text_of(&browser, "#current-stage"), "Inquiry");
    assert_eq!(
        common::count_events(&app, "Withdrawn"),
        0,
        "Cancel sends nothing"
    );

    browser.click(&browser.find(withdraw));
    browser.answer_alert(true);
    browser.wait_for_text("You have withdrawn");
    assert!(
        !browser.page_was_reloaded(),
        "applied in place through HTMX"
    );
    assert_eq!(common::count_events(&app, "Withdrawn"), 1);
    health.quiet(&browser);
}

/// Two analysts with different clearances on one report, and a clearance revoked by an admin.
/// sig-a is in group alpha, sig-b in beta; file x (md5 X) is hit by both, file y (md5 Y) by
/// sig-b only. Ana holds alpha; Bob holds alpha and beta until the admin revokes beta.
#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn two_analysts_see_their_own_top_threats_and_a_revoked_clearance_disappears() {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::threats::service;
    const MD5_X: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const MD5_Y: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    let app = TestApp::spawn();
    create_account(&app, "root", "Avery Admin", "admin");
    create_account(&app, "ana", "Ana Analyst", "analyst");
    create_account(&app, "bob", "Bob Analyst", "analyst");
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx = CommandContext::new(Metadata::new(Actor::Cli));
        let s = &app.state.store;
        service::set_signature(
            &mut conn,
            s,
            &ctx,
            "sig-a",
            "alpha",
            Some(50),
            Some("rule a"),
        )
        .unwrap();
        service::set_signature(
            &mut conn,
            s,
            &ctx,
            "sig-b",
            "beta",
            Some(50),
            Some("rule b"),
        )
        .unwrap();
        service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
        service::change_clearance(&mut conn, s, &ctx, "bob", "alpha", true).unwrap();
        service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
        service::create_sensor(&mut conn, s, &ctx, "edge")
            .unwrap()
            .1
    };
    let now = chrono::Utc::now().to_rfc3339();
    let ev = |t: &str, data: serde_json::Value| json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data});
    let batch = json!({"events": [
        ev("SessionDiscovered", json!({"session_id": "s1", "start_time": now, "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 4431, "destination_port": 443})),
        ev("SessionDiscovered", json!({"session_id": "s2", "start_time": now, "protocol": "udp", "source_ip": "10.0.0.3", "destination_ip": "10.0.0.4", "source_port": 5353, "destination_port": 53})),
        ev("FileDiscovered", json!({"file_id": "x", "session_id": "s1", "md5": MD5_X, "filename": "invoice.exe", "file_type": "pe", "size_bytes": 48213})),
        ev("FileDiscovered", json!({"file_id": "y", "session_id": "s2", "md5": MD5_Y, "filename": "secret-plans.pdf", "file_type": "pdf", "size_bytes": 9120})),
        ev("FileScored", json!({"file_id": "x", "session_id": "s1", "integration": "yara", "score": 90, "signature": "sig-a"})),
        ev("FileScored", json!({"file_id": "x", "session_id": "s1", "integration": "clamav", "score": 40, "signature": "sig-b"})),
        ev("FileScored", json!({"file_id": "y", "session_id": "s2", "integration": "yara", "score": 70, "signature": "sig-b"})),
    ]});
    let res = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(batch)
        .expect("the sensor's batch is accepted");
    assert_eq!(res.status(), 200);

    let mut health = Health::new();
    let ana = Browser::start();
    let bob = Browser::start();
    sign_in(&ana, &app, "ana");
    sign_in(&bob, &app, "bob");
    for b in [&ana, &bob] {
        b.goto(&app.url("/threats/top/hash"));
        b.find("#report table");
        health.page(b);
    }
    // Same report, different rows and counts: md5, filename, type, hits, max score, signatures, …
    let ana_rows = table_rows(&ana, "#report table");
    let bob_rows = table_rows(&bob, "#report table");
    assert_eq!(ana_rows.len(), 1, "{ana_rows:?}");
    assert_eq!(&ana_rows[0][..5], [MD5_X, "invoice.exe", "pe", "1", "90"]);
    assert_eq!(ana_rows[0][5], "sig-a");
    assert_eq!(bob_rows.len(), 2, "{bob_rows:?}");
    assert_eq!(&bob_rows[0][..5], [MD5_X, "invoice.exe", "pe", "2", "90"]);
    assert_eq!(
        &bob_rows[1][..5],
        [MD5_Y, "secret-plans.pdf", "pdf", "1", "70"]
    );
    assert!(!ana.page_text().contains("secret-plans.pdf"));
    assert_eq!(
        count(&bob, "ol.hbars li.hbar"),
        2,
        "Bob's chart has a bar per row"
    );
    assert_eq!(
        count(&ana, "ol.hbars li.hbar"),
        1,
        "Ana's chart has one bar"
    );
    screenshot(&bob, "top-threats");
    assert_usable_on_a_phone(&bob, "the top threats report");
    // The histogram of hits over time fits a phone, its labels readable and its bars links that
    // zoom into their range.
    bob.set_window_size(390, 844);
    wait_until_idle(&bob);
    let chart = bob.execute(
        "const svg = document.querySelector('svg.histogram').getBoundingClientRect();
         const label = document.querySelector('svg.histogram .histogram-axis').getBoundingClientRect();
         const bars = document.querySelectorAll('svg.histogram a.histogram-link[href*=\"from=\"]').length;
         return [svg.right, label.height, bars];",
        json!([]),
    );
    bob.set_window_size(1280, 900);
    let (right, label_height) = (chart[0].as_f64().unwrap(), chart[1].as_f64().unwrap());
    assert!(
        right <= 390.0,
        "the histogram fits the phone: right edge at {right}"
    );
    assert!(
        label_height >= 11.0,
        "histogram labels are readable on a phone: {label_height} px high"
    );
    assert!(
        chart[2].as_i64().unwrap() >= 1,
        "the bars zoom in: {chart:?}"
    );

    // The admin revokes beta from Bob on the signatures page.
    let admin = Browser::start();
    sign_in(&admin, &app, "root");
    admin.goto(&app.url("/admin/signatures"));
    health.page(&admin);
    assert_usable_on_a_phone(&admin, "the signatures and clearances page");
    admin.click(&admin.find("button[aria-label='Revoke beta from bob']"));
    assert!(admin.alert_text().starts_with("Revoke beta from bob?"));
    admin.answer_alert(true);
    admin.wait_for_text("revoked");
    health.page(&admin);

    // Bob's next refresh (an HTMX swap of the report) no longer counts beta's hits.
    htmx_submit(
        &bob,
        "form[hx-get] button[type=submit]",
        "Counting hits of signatures in: alpha.",
    );
    let bob_rows = table_rows(&bob, "#report table");
    assert_eq!(bob_rows.len(), 1, "{bob_rows:?}");
    assert_eq!(&bob_rows[0][..5], [MD5_X, "invoice.exe", "pe", "1", "90"]);
    assert!(!bob.page_text().contains("secret-plans.pdf"));
    health.quiet(&bob);

    // The drill-down behind Bob's row lists only the visible hit.
    bob.goto(&app.url(&format!("/threats/top/hash/hits?key={MD5_X}&window=all")));
    health.page(&bob);
    let text = bob.page_text();
    assert!(text.contains("sig-a") && !text.contains("sig-b"), "{text}");
    assert_usable_on_a_phone(&bob, "the hits behind a row");

    // The audit log, which the admin reads on a phone too.
    admin.goto(&app.url("/audit"));
    health.page(&admin);
    assert_usable_on_a_phone(&admin, "the audit log");
    admin.goto(&app.url("/admin/sensors"));
    health.page(&admin);
    assert_usable_on_a_phone(&admin, "the sensors page");
}
