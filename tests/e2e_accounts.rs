//! In a real headless Chromium: sign-in, the admin's accounts page, no console errors, no serious
//! accessibility violations. Ignored by plain `cargo test`; `.ci/run` runs them (--run-ignored all).

mod common;
mod journeys;
mod webdriver;

use common::{create_user, TestApp, PASSWORD};
use webdriver::Browser;

fn sign_in(browser: &Browser, app: &TestApp, username: &str) {
    browser.goto(&app.url("/login"));
    browser.fill("#username", username);
    browser.fill("#password", PASSWORD);
    browser.click(&browser.find("form[action='/login'] button[type=submit]"));
    browser.wait_for_text("Sign out");
}

#[test]
#[ignore = "needs chromium; run with --run-ignored all"]
fn an_admin_signs_in_and_creates_an_account_in_the_browser() {
    let app = TestApp::spawn();
    create_user(&app, "root", "admin", PASSWORD);
    let browser = Browser::start();

    browser.goto(&app.url("/login"));
    assert!(
        browser.accessibility_violations().is_empty(),
        "{:?}",
        browser.accessibility_violations()
    );
    sign_in(&browser, &app, "root");
    assert!(browser.current_url().ends_with("/admin/accounts"));

    browser.fill("#new-username", "sam");
    browser.fill("#new-name", "Sam Staff");
    browser.fill("#new-password", "sams long password");
    browser
        .click(&browser.find("form[method='post'][action='/admin/accounts'] button[type=submit]"));
    browser.wait_for_text("Account sam created.");
    assert!(browser.page_text().contains("Sam Staff"));

    let violations = browser.accessibility_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let errors = browser.console_errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The shared page checks (landmarks, one h1, visible focus, no axe finding at all) on the
    // admin's pages and the sign-in page.
    let mut health = journeys::Health::new();
    health.page(&browser);
    browser.click(&browser.find("a[href^='/admin/accounts/']"));
    browser.wait_for_text("Role");
    health.page(&browser);
    browser.goto(&app.url("/account"));
    health.page(&browser);
    browser.click(&browser.find("form[action='/logout'] button"));
    browser.wait_for_text("Sign in");
    health.page(&browser);
}
