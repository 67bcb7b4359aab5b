//! The admin's projections page in a real headless Chromium (issue 19.9): a difference found by
//! Verify shows as an error (role=alert, the error colours) with its rows behind a disclosure,
//! and the page's actions stay in reach, on a desktop and on a phone; the page is healthy (axe,
//! console, CSP) before and after. Ignored by plain `cargo test`:
//! `cargo nextest run --run-ignored all -E 'binary(=e2e_projections)'`.

mod common;
mod journeys;
mod webdriver;

use common::TestApp;
use diesel::prelude::*;
use journeys::{actions_out_of_reach, create_account, sign_in, wait_until, Health};
use serde_json::json;
use webdriver::Browser;

/// The actions (Rebuild, Verify) of the row of `name`: each one's box, and whether it lies in the
/// window (after the row is scrolled to the top of it).
fn actions_in_window(browser: &Browser, name: &str) -> Vec<(String, bool)> {
    let found = browser.execute(
        "const row = document.getElementById('progress-' + arguments[0]).closest('tr');
         row.scrollIntoView({block: 'start'});
         const w = document.documentElement.clientWidth, h = document.documentElement.clientHeight;
         return [...row.querySelectorAll('button')].map(b => {
           const r = b.getBoundingClientRect();
           return [b.innerText.trim(), r.left >= 0 && r.right <= w && r.top >= 0 && r.bottom <= h];
         });",
        json!([name]),
    );
    serde_json::from_value(found).unwrap()
}

#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn a_difference_found_by_verify_is_an_error_that_keeps_the_actions_in_reach() {
    let app = TestApp::spawn();
    create_account(&app, "boss", "Bo Boss", "admin");
    for i in 0..30 {
        create_account(&app, &format!("user{i}"), &format!("User {i}"), "analyst");
    }
    let browser = Browser::start();
    let mut health = Health::new();
    sign_in(&browser, &app, "boss");
    browser.goto(&app.url("/admin/projections"));
    browser.wait_for_text("Catch-up subscribers");
    health.page(&browser);

    // Rows changed behind the projection's back, with long values (what verify is for).
    let mut conn = app.state.pool.get().unwrap();
    diesel::sql_query(
        "UPDATE users SET display_name = 'Tampered ' || repeat('x', 120) WHERE username LIKE 'user%'",
    )
    .execute(&mut conn)
    .unwrap();
    browser.click(&browser.find("form[action='/admin/projections/users/verify'] button"));
    wait_until("the verify ends", || {
        browser.page_text().contains("rows differ from a rebuild")
    });
    journeys::wait_until_idle(&browser);

    let alert = browser.find("#progress-users [role=alert]");
    assert!(browser
        .text(&alert)
        .contains("60 rows differ from a rebuild"));
    // An error, in the error colours: not the grey of a hint.
    let colours = browser.execute(
        "const a = document.querySelector('#progress-users [role=alert]');
         const hint = document.querySelector('.hint');
         return [getComputedStyle(a).color, getComputedStyle(a).backgroundColor, getComputedStyle(hint).color];",
        json!([]),
    );
    assert_ne!(
        colours[0], colours[2],
        "the difference is not grey: {colours}"
    );
    assert_ne!(colours[1], json!("rgba(0, 0, 0, 0)"), "{colours}");
    // The rows wait behind a closed disclosure.
    let open = browser.execute(
        "return document.querySelector('#progress-users details').open;",
        json!([]),
    );
    assert_eq!(open, json!(false));
    assert!(!browser.page_text().contains("missing from the live table"));
    health.quiet(&browser);
    health.audit_now(&browser);

    for (width, height) in [(1280, 900), (390, 844)] {
        browser.set_window_size(width, height);
        for open in [false, true] {
            browser.execute(
                "document.querySelector('#progress-users details').open = arguments[0];",
                json!([open]),
            );
            let actions = actions_in_window(&browser, "users");
            assert_eq!(actions.len(), 2, "{actions:?}");
            assert!(
                actions.iter().all(|(_, seen)| *seen),
                "at {width}x{height} (rows shown: {open}) the actions leave the window: {actions:?}"
            );
            let out = actions_out_of_reach(&browser);
            assert!(out.is_empty(), "at {width}x{height}: {out:#?}");
            let wide = journeys::overflowing_elements(&browser);
            assert!(wide.is_empty(), "at {width}x{height}: {wide:?}");
        }
    }
    browser.set_window_size(1280, 900);
    assert!(browser.page_text().contains("missing from the live table"));
    health.audit_now(&browser);
    health.quiet(&browser);
}
