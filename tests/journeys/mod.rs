//! Shared steps of the browser journeys (tests/e2e_journeys.rs): sign in or up, act through HTMX
//! and prove the page was not reloaded, check every page's health (no console error, no failed
//! request, no serious or critical axe violation), and save screenshots for the README.
//!
//! A journey for another role (say two analysts with different clearances) needs only
//! `create_account` (e.g. `create_account(&app, "ana", "Ana Analyst", "analyst")`), one `Browser`
//! per user with `sign_in`, `Health::page` after each navigation (`Health::quiet` after in-page
//! actions), `htmx_submit` for in-place actions, `table_rows` to compare what each user sees, and
//! `screenshot(&browser, "top-threats")` for the README's slot.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use crate::common::{TestApp, PASSWORD};
use crate::webdriver::Browser;
use heyboss::es::{Actor, CommandContext, Metadata};

/// Sign in through the login form; the browser lands on the role's home page.
pub fn sign_in(browser: &Browser, app: &TestApp, username: &str) {
    browser.goto(&app.url("/login"));
    browser.fill("#username", username);
    browser.fill("#password", PASSWORD);
    browser.click(&browser.find("form[action='/login'] button[type=submit]"));
    browser.wait_for_text("Sign out");
}

/// Sign up as a new student through /signup (the first term offered); lands on /enrollment.
pub fn sign_up_student(browser: &Browser, app: &TestApp, username: &str, name: &str) {
    browser.goto(&app.url("/signup"));
    browser.fill("#signup-username", username);
    browser.fill("#signup-name", name);
    browser.fill("#signup-email", &format!("{username}@example.edu"));
    browser.fill("#signup-password", PASSWORD);
    browser.click(&browser.find("form[action='/signup'] button[type=submit]"));
    browser.wait_for_text("Sign out");
}

/// An account with a password (signs in with `PASSWORD`) and a display name, as the CLI makes.
pub fn create_account(app: &TestApp, username: &str, display_name: &str, role: &str) -> uuid::Uuid {
    let mut conn = app.state.pool.get().unwrap();
    let account =
        heyboss::accounts::NewAccount::parse(username, display_name, "", role, PASSWORD).unwrap();
    heyboss::accounts::service::register(
        &mut conn,
        &app.state.store,
        Metadata::new(Actor::Cli),
        account,
        |_, _| Ok(()),
    )
    .unwrap()
}

/// A student account recorded straight through the store (no password, cannot sign in): quick
/// company for the journey's student on shared pages such as the committee board.
pub fn register_student(app: &TestApp, username: &str, display_name: &str) -> uuid::Uuid {
    use heyboss::accounts::{Account, AccountCommand, Role};
    let mut conn = app.state.pool.get().unwrap();
    let id = uuid::Uuid::new_v4();
    app.state
        .store
        .execute::<Account>(
            &mut conn,
            &id.to_string(),
            &AccountCommand::Register {
                username: username.into(),
                display_name: display_name.into(),
                email: String::new(),
                role: Role::Student,
            },
            &CommandContext::new(Metadata::new(Actor::Cli)),
        )
        .unwrap();
    id
}

/// The text of the first element matching `css` (waits for it to exist).
pub fn text_of(browser: &Browser, css: &str) -> String {
    let e = browser.find(css);
    browser.text(&e)
}

/// Whether the first element matching `css` is inside the window (a person sees it without
/// scrolling).
pub fn in_view(browser: &Browser, css: &str) -> bool {
    browser.find(css);
    browser
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect();
             return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;",
            json!([css]),
        )
        .as_bool()
        .unwrap_or(false)
}

/// The body rows of a table as text cells, in order (compare what two users see of one report).
pub fn table_rows(browser: &Browser, table_css: &str) -> Vec<Vec<String>> {
    browser.find(table_css);
    let rows = browser.execute(
        "return [...document.querySelectorAll(arguments[0] + ' tbody tr')]
           .map(tr => [...tr.children].map(td => td.innerText.trim()));",
        json!([table_css]),
    );
    serde_json::from_value(rows).unwrap_or_default()
}

/// How many elements match `css` now.
pub fn count(browser: &Browser, css: &str) -> usize {
    browser.find_all(css).len()
}

/// Choose an option of a <select> (or set a date input) by value, firing `change` as a user would.
pub fn choose(browser: &Browser, css: &str, value: &str) {
    browser.find(css);
    let ok = browser.execute(
        "const el = document.querySelector(arguments[0]);
         el.value = arguments[1];
         el.dispatchEvent(new Event('change', {bubbles: true}));
         return el.value === arguments[1];",
        json!([css, value]),
    );
    assert_eq!(ok, json!(true), "{css} has no option {value:?}");
}

/// Click a submit button whose form posts through HTMX, wait until `expect` shows, and prove the
/// page was swapped in place rather than reloaded.
#[track_caller]
///
/// While the request runs, the loading bar shows and the form's button is disabled (so a second
/// click cannot send it twice): both are watched and asserted.
pub fn htmx_submit(browser: &Browser, button_css: &str, expect: &str) {
    browser.mark_page();
    browser.execute(
        "window.__heybossSeen = {bar: false, disabled: false};
         const bar = document.getElementById('loading-bar');
         new MutationObserver(records => {
           if (bar && bar.classList.contains('htmx-request')) window.__heybossSeen.bar = true;
           for (const r of records) if (r.target.tagName === 'BUTTON' && r.target.disabled) window.__heybossSeen.disabled = true;
         }).observe(document.body, {attributes: true, subtree: true, attributeFilter: ['class', 'disabled']});",
        json!([]),
    );
    browser.click(&browser.find(button_css));
    browser.wait_for_text(expect);
    wait_until_idle(browser);
    assert!(
        !browser.page_was_reloaded(),
        "{button_css} reloaded the page instead of swapping a fragment"
    );
    let seen = browser.execute("return window.__heybossSeen;", json!([]));
    assert_eq!(
        seen,
        json!({"bar": true, "disabled": true}),
        "{button_css}: the loading bar and the disabled button while the request ran"
    );
}

/// Make a text box taller by dragging its corner, as a person does with a long answer: the
/// browser then gives it an inline style (allowed by the CSP, being set through the CSSOM), which
/// an HTMX swap must not copy as an attribute (that the CSP blocks).
pub fn resize_text_box(browser: &Browser, css: &str) {
    let e = browser.find(css);
    let size = |b: &Browser| {
        b.execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.width, r.height];",
            json!([css]),
        )
    };
    browser.execute(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
        json!([css]),
    );
    let before = size(browser);
    let (w, h) = (
        before[0].as_f64().unwrap() as i64,
        before[1].as_f64().unwrap() as i64,
    );
    browser.drag(&e, (w / 2 - 3, h / 2 - 3), (0, 60));
    let styled = browser.execute(
        "return document.querySelector(arguments[0]).getAttribute('style');",
        json!([css]),
    );
    assert!(
        styled.as_str().is_some_and(|s| s.contains("height")),
        "{css} was not resized ({before} then style {styled})"
    );
}

/// Wait (up to 10 s) until `done` holds; `what` names it in the failure.
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Wait until HTMX has no request in flight (the loading bar is off again).
pub fn wait_until_idle(browser: &Browser) {
    for _ in 0..200 {
        let busy = browser.execute(
            "return document.querySelector('.htmx-request') !== null;",
            json!([]),
        );
        if busy == json!(false) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("an HTMX request never finished");
}

/// What sticks out of the window sideways (empty when the page fits): the outermost elements whose
/// right edge passes the window's, outside any scrolling container such as `.table-wrap`.
pub fn overflowing_elements(browser: &Browser) -> Vec<String> {
    let found = browser.execute(
        "const w = document.documentElement.clientWidth;
         if (document.documentElement.scrollWidth <= w + 1) return [];
         const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
             const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } return false; };
         const out = [];
         for (const el of document.body.querySelectorAll('*')) {
           const r = el.getBoundingClientRect();
           if (r.right > w + 1 && !scrolls(el) && !(el.parentElement && el.parentElement.getBoundingClientRect().right > w + 1)) {
             out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className ? '.' + String(el.className).split(' ').join('.') : '') + ' right=' + Math.round(r.right));
           }
         }
         if (out.length) return out;
         const all = [...document.body.querySelectorAll('*')].map(el => [el.getBoundingClientRect().right, el]).sort((a, b) => b[0] - a[0]).slice(0, 4);
         return ['the page is ' + document.documentElement.scrollWidth + 'px wide, the window ' + w + 'px'].concat(all.map(([r, el]) => el.tagName.toLowerCase() + '.' + String(el.className) + ' right=' + Math.round(r)));",
        json!([]),
    );
    found
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The action controls (buttons, disclosures, button links) a person cannot reach at the current
/// window width without scrolling sideways: past the window's left or right edge, or clipped by
/// a container that scrolls sideways (a wide table). Empty when every one is in reach.
pub fn actions_out_of_reach(browser: &Browser) -> Vec<String> {
    let found = browser.execute(
        "const w = document.documentElement.clientWidth;
         const out = [];
         for (const el of document.querySelectorAll('main button, main summary, main a.button, main input[type=submit]')) {
           const r = el.getBoundingClientRect();
           if (r.width === 0 || r.height === 0) continue;
           const name = el.tagName.toLowerCase() + ' [' + (el.innerText || el.value || '').trim().slice(0, 40) + ']';
           if (r.left < -1 || r.right > w + 1) { out.push(name + ' at ' + Math.round(r.left) + '..' + Math.round(r.right) + ' in a ' + w + 'px window'); continue; }
           for (let p = el.parentElement; p; p = p.parentElement) {
             const o = getComputedStyle(p).overflowX;
             if (o !== 'auto' && o !== 'scroll' && o !== 'hidden') continue;
             const pr = p.getBoundingClientRect();
             if (r.left < pr.left - 1 || r.right > pr.right + 1) { out.push(name + ' hidden sideways in ' + p.tagName.toLowerCase() + '.' + String(p.className)); break; }
           }
         }
         return out;",
        json!([]),
    );
    serde_json::from_value(found).unwrap_or_default()
}

/// At phone width (390x844), every action of the page is in reach and nothing overflows
/// sideways; the window is given back its desktop size after.
#[track_caller]
pub fn assert_usable_on_a_phone(browser: &Browser, what: &str) {
    browser.set_window_size(390, 844);
    wait_until_idle(browser);
    let out = actions_out_of_reach(browser);
    let wide = overflowing_elements(browser);
    browser.set_window_size(1280, 900);
    assert!(
        out.is_empty(),
        "{what} at phone width: actions out of reach: {out:#?}"
    );
    assert!(
        wide.is_empty(),
        "{what} overflows sideways at phone width: {wide:?}"
    );
}

/// Health checks for every page a journey visits: console errors and failed requests after every
/// page and action; axe once per distinct page (path with ids blanked out), since it is slow.
#[derive(Default)]
pub struct Health {
    audited: BTreeSet<String>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// After navigating (or landing after a redirect): the page answered, logged no error, and
    /// passes axe if this kind of page has not been checked yet.
    #[track_caller]
    pub fn page(&mut self, browser: &Browser) {
        self.quiet(browser);
        let url = browser.current_url();
        let key = page_key(&url);
        if self.audited.insert(key.clone()) {
            let violations = browser.accessibility_violations();
            assert!(
                violations.is_empty(),
                "accessibility violations on {url}: {violations:#?}"
            );
            let h1s = count(browser, "h1");
            assert_eq!(h1s, 1, "{url} has {h1s} h1 elements");
            for landmark in ["header", "main", "footer"] {
                assert_eq!(count(browser, landmark), 1, "{url} needs one <{landmark}>");
            }
            if let Some(problem) = focus_problem(browser) {
                panic!("{url}: {problem}");
            }
            if std::env::var("HEYBOSS_A11Y_ALL").is_ok() {
                eprintln!(
                    "{key}: {:#?}",
                    browser.accessibility_findings(&["minor", "moderate"])
                );
            }
            if std::env::var("HEYBOSS_SCREENSHOTS").as_deref() == Ok("all") {
                let name = key.trim_matches('/').replace(['/', '{', '}'], "_");
                screenshot(
                    browser,
                    &format!("pages/{}", if name.is_empty() { "home" } else { &name }),
                );
            }
        }
    }

    /// After an in-page action: nothing failed in the console or on the network.
    #[track_caller]
    pub fn quiet(&self, browser: &Browser) {
        let errors = browser.console_errors();
        assert!(
            errors.is_empty(),
            "console errors on {}: {errors:#?}",
            browser.current_url()
        );
    }

    /// After an action the server refused (bad input): the only console entries are the browser's
    /// notes of that answer's status (Chromium logs every 4xx response), nothing else.
    #[track_caller]
    pub fn refused(&self, browser: &Browser, status: u16) {
        let errors = browser.console_errors();
        assert!(
            !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| e.contains(&format!("status of {status}"))),
            "expected only the {status} answer in the console on {}: {errors:#?}",
            browser.current_url()
        );
    }

    /// Run axe on the current state of the page (after swaps that show new controls).
    #[track_caller]
    pub fn audit_now(&self, browser: &Browser) {
        let violations = browser.accessibility_violations();
        assert!(
            violations.is_empty(),
            "accessibility violations on {}: {violations:#?}",
            browser.current_url()
        );
    }

    /// The distinct pages checked with axe so far (for the test's own summary).
    pub fn audited(&self) -> Vec<String> {
        self.audited.iter().cloned().collect()
    }
}

/// Keyboard focus shows: Tab from the top reaches the skip link (on screen once focused) and then
/// the next link, each with a visible outline. `None` when it does, else what is wrong.
pub fn focus_problem(browser: &Browser) -> Option<String> {
    browser.execute(
        "window.scrollTo(0, 0);
         const start = document.createElement('span'); start.id = 'focus-start'; start.tabIndex = -1;
         document.body.prepend(start); start.focus();",
        json!([]),
    );
    let mut problem = None;
    for step in 0..2 {
        browser.press_tab();
        let focus = browser.execute(
            "const el = document.activeElement; const s = getComputedStyle(el); const r = el.getBoundingClientRect();
             return {cls: String(el.className), tag: el.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth), left: r.left};",
            json!([]),
        );
        if step == 0 && focus["cls"] != "skip-link" {
            problem = Some(format!("Tab first reaches {focus}, not the skip link"));
        } else if step == 0 && focus["left"].as_f64().unwrap_or(-1.0) < 0.0 {
            problem = Some("the focused skip link is off screen".into());
        } else if focus["outline"] == "none" || focus["width"].as_f64().unwrap_or(0.0) < 2.0 {
            problem = Some(format!("keyboard focus is not visible on {focus}"));
        }
        if problem.is_some() {
            break;
        }
    }
    browser.execute(
        "document.activeElement.blur(); document.getElementById('focus-start').remove();",
        json!([]),
    );
    problem
}

/// `/scholarships/funds/1b2c...?page=2` -> `/scholarships/funds/{id}`.
fn page_key(url: &str) -> String {
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path.split('/')
        .map(|seg| {
            if uuid::Uuid::parse_str(seg).is_ok() || seg.parse::<i64>().is_ok() {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Where screenshots go: `docs/screenshots/` when `HEYBOSS_SCREENSHOTS=1` (to refresh the
/// README's images), otherwise `target/screenshots/` so that plain runs leave the tree clean.
/// `HEYBOSS_SCREENSHOTS=all` also saves every page the journeys check into
/// `target/screenshots/pages/`, for looking them over.
pub fn screenshot_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if std::env::var("HEYBOSS_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    }
}

/// Save the window scrolled so that `css` sits at its top (a section below the page header).
pub fn screenshot_of(browser: &Browser, name: &str, css: &str) -> PathBuf {
    wait_until_idle(browser);
    browser.execute(
        "if (document.activeElement) document.activeElement.blur();
         const el = document.querySelector(arguments[0]);
         window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 16);",
        json!([css]),
    );
    let path = screenshot_dir().join(format!("{name}.png"));
    browser.screenshot(&path);
    path
}

/// Save the visible window as `NAME.png` (see `screenshot_dir`); scrolls to the top first and
/// waits for HTMX to settle so that the image shows a finished page.
pub fn screenshot(browser: &Browser, name: &str) -> PathBuf {
    wait_until_idle(browser);
    browser.execute(
        "window.scrollTo(0, 0); if (document.activeElement) document.activeElement.blur();",
        json!([]),
    );
    let path = screenshot_dir().join(format!("{name}.png"));
    browser.screenshot(&path);
    path
}
