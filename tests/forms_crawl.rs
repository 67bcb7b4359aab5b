//! No acknowledged action is lost: every form of every role's pages in the demo, posted the way a
//! person with one rendered page would (each form, then one of them again with other values, as
//! a stale tab or the back button does), and every answer that says "done" has its events in the
//! log. Plus the cases that were lost before forms had keys of their own.

mod common;

use std::collections::{BTreeMap, HashSet, VecDeque};

use common::forms::{self, Form};
use common::{Client, Response, TestApp};
use diesel::prelude::*;
use heyboss::demo::DEMO_PASSWORD;
use heyboss::schema::{command_outcomes, events, users};

/// Forms that are not commands on the log: signing out, marking notifications read, and the
/// projection jobs (rebuild and verify write read models, not events).
fn is_command(action: &str) -> bool {
    !(action == "/logout"
        || action == "/login"
        || action.starts_with("/notifications")
        || action.starts_with("/admin/projections"))
}

/// The demo's users, one or more of each role and stage; the admin last, whose forms reset
/// passwords and deactivate accounts.
const USERS: &[&str] = &[
    "reviewer",
    "staff",
    "analyst",
    "student",
    "ines",
    "arlo",
    "dana",
    "cora",
    "wanda",
    "scholar01",
    "scholar04",
    "admin",
];

#[derive(Default)]
struct Tally {
    posts: usize,
    successes: usize,
    /// Routes (action with ids replaced) that answered a success at least once.
    routes_done: HashSet<String>,
    refused_reuse: usize,
    duplicates: usize,
}

#[test]
fn every_success_of_every_form_of_every_role_is_in_the_log() {
    let app = TestApp::spawn();
    heyboss::demo::seed(&app.state).unwrap();
    let mut tally = Tally::default();
    for user in USERS {
        crawl(&app, user, &mut tally);
    }
    println!(
        "{} posts, {} successes on {} routes, {} reused keys refused, {} double submits",
        tally.posts,
        tally.successes,
        tally.routes_done.len(),
        tally.refused_reuse,
        tally.duplicates
    );
    let mut routes: Vec<_> = tally.routes_done.iter().collect();
    routes.sort();
    println!("{routes:#?}");
    // The crawl must reach the commands of every context, or it proves little.
    for route in [
        "/enrollment/actions/submit",
        "/enrollment/students/{id}/actions/document",
        "/enrollment/students/{id}/actions/decide",
        "/scholarships/applications/{id}/review",
        "/scholarships/applications/{id}/decision",
        "/scholarships/applications/{id}/reviewers",
        "/scholarships/funds",
        "/admin/signatures",
        "/admin/clearances",
        "/admin/accounts/{id}/role",
    ] {
        assert!(
            tally.routes_done.contains(route),
            "the crawl never got a success from {route}"
        );
    }
    assert!(tally.refused_reuse >= 5, "stale forms were posted");
}

fn pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut previous = "";
    path.split('/')
        .map(|seg| {
            let after = std::mem::replace(&mut previous, seg);
            if after == "signatures" && !seg.is_empty() {
                return "{name}";
            }
            let looks_like_id = seg.len() >= 8
                && seg.chars().any(|c| c.is_ascii_digit())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '-' || c == ':');
            if looks_like_id {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn crawl(app: &TestApp, username: &str, tally: &mut Tally) {
    let mut client = Client::new(app);
    client.login(username, DEMO_PASSWORD);
    let user_id = user_id(app, username);
    // Where a person of this role starts their day; then everything reachable.
    let start: &[&str] = match username {
        "reviewer" => &["/scholarships/reviews"],
        "staff" => &[
            "/enrollment/pipeline?stage=application_submitted",
            "/enrollment/pipeline?stage=documents_received",
        ],
        _ => &[],
    };
    let mut queue: VecDeque<String> = start
        .iter()
        .chain(["/", "/account"].iter())
        .map(|p| p.to_string())
        .collect();
    // A page again after a command worked on it (the next step's forms), at most four times;
    // at most six pages of one pattern (six students, six funds).
    let mut visits: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_pattern: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut pages = 0;
    while let Some(path) = queue.pop_front() {
        let visited = visits.entry(path.clone()).or_default();
        *visited += 1;
        let of_pattern = per_pattern.entry(pattern(&path)).or_default();
        of_pattern.insert(path.clone());
        if pages >= 250 || *visited > 4 || of_pattern.len() > 6 {
            continue;
        }
        let mut page = client.get(&path);
        // Follow the landing redirect of `/`.
        if page.status == 303 {
            if let Some(to) = page.header("location").map(str::to_owned) {
                if to != "/login" {
                    page = client.get(&to);
                }
            }
        }
        if page.status != 200 {
            continue;
        }
        pages += 1;
        for link in forms::links(&page.body) {
            let skip = link.contains("format=csv")
                || link.starts_with("/static")
                || link.starts_with("/logout")
                || link.starts_with("/api/")
                || visits.contains_key(&link);
            if !skip {
                queue.push_back(link);
            }
        }
        // Each visit chooses other options (the other document, the next decision).
        let variant = visits[&path] - 1;
        if post_forms_of_one_render(app, &mut client, username, user_id, &page, variant, tally) {
            queue.push_back(path);
        }
    }
}

/// Post every command form of one rendered page, then the first keyed form again with other
/// values under the same key (the stale tab), checking every answer against the log. Whether
/// any command worked.
fn post_forms_of_one_render(
    app: &TestApp,
    client: &mut Client,
    username: &str,
    user_id: uuid::Uuid,
    page: &Response,
    variant: usize,
    tally: &mut Tally,
) -> bool {
    let commands: Vec<Form> = forms::forms(&page.body)
        .into_iter()
        .filter(|f| f.method == "post" && is_command(&f.action))
        .collect();
    let mut first_keyed_success: Option<&Form> = None;
    let mut any_success = false;
    for form in &commands {
        let success = post_and_check(app, client, username, user_id, form, variant, tally);
        any_success |= success;
        if success && form.value("command_id").is_some() && first_keyed_success.is_none() {
            first_keyed_success = Some(form);
        }
    }
    if let Some(form) = first_keyed_success {
        let again = fill(form, variant);
        let other = fill(form, variant + 1);
        settle(app);
        let before = log_length(app);
        let res = post(client, &form.action, &other);
        tally.posts += 1;
        if other == again {
            // Nothing to vary: a double submit, answered with the first outcome.
            assert!(
                is_success(&res) && log_length(app) == before,
                "{username}: a double submit of {} must answer as the first did and record nothing ({} {})",
                form.action,
                res.status,
                res.body
            );
            tally.duplicates += 1;
        } else {
            assert!(
                !is_success(&res),
                "{username}: the same key with other values at {} must be refused, not answered {}: {}",
                form.action,
                res.status,
                res.body
            );
            assert_eq!(
                log_length(app),
                before,
                "a refused reuse records nothing: {username} at {} answered {}",
                form.action,
                res.status
            );
            // Refused as a reused form, unless the first command took the viewer's access away
            // (an admin who changed their own role).
            if res.status != 409 {
                assert!(
                    [403, 404].contains(&res.status),
                    "{}: {}",
                    res.status,
                    res.body
                );
                return any_success;
            }
            res.assert_contains("already used");
            tally.refused_reuse += 1;
        }
    }
    any_success
}

fn post_and_check(
    app: &TestApp,
    client: &mut Client,
    username: &str,
    user_id: uuid::Uuid,
    form: &Form,
    variant: usize,
    tally: &mut Tally,
) -> bool {
    let fields = fill(form, variant);
    let before = log_length(app);
    let head = log_head(app);
    let res = post(client, &form.action, &fields);
    tally.posts += 1;
    assert!(
        res.status < 500,
        "{username}: {} answered {}: {}",
        form.action,
        res.status,
        res.body
    );
    if !is_success(&res) {
        if std::env::var("CRAWL_LOG").is_ok() {
            println!(
                "{username} {} {}: {}",
                form.action,
                res.status,
                first_message(&res.body)
            );
        }
        return false;
    }
    tally.successes += 1;
    tally.routes_done.insert(pattern(&form.action));
    // A keyed command's outcome names its events; a command without a key (or whose handler
    // keeps none, like registering a sensor, whose token is shown once) must have grown the log.
    let stored = form
        .value("command_id")
        .and_then(|key| stored_positions(app, &format!("{user_id}:{key}")));
    match stored {
        Some(positions) => {
            assert!(
                !positions.is_empty(),
                "{username}: {} answered success and recorded no event",
                form.action
            );
            for p in positions {
                assert!(
                    event_exists(app, p),
                    "{username}: {} answered success; event {p} is not in the log",
                    form.action
                );
                // A form posted for the first time: its events are new, not an earlier
                // command's outcome answered again.
                assert!(
                    p > head,
                    "{username}: {} answered success with the outcome of an earlier command (event {p})",
                    form.action
                );
            }
        }
        None => assert!(
            log_length(app) > before,
            "{username}: {} answered success and recorded no event",
            form.action
        ),
    }
    true
}

fn post(client: &mut Client, action: &str, fields: &[(String, String)]) -> Response {
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = client.post(action, &fields);
    // A destructive action asks first (web/confirm.rs): confirm it, as a person would.
    if res.status == 200 && res.body.contains("name=\"confirm\" value=\"yes\"") {
        let confirmed: Vec<(&str, &str)> = fields.into_iter().chain([("confirm", "yes")]).collect();
        return client.post(action, &confirmed);
    }
    res
}

/// A plain (non-HTMX) form post that worked redirects, with a success message if any, or shows
/// its result (a new sensor's token); a refusal re-renders with 4xx.
fn is_success(res: &Response) -> bool {
    (res.status == 303 || res.status == 200)
        && res.header("location") != Some("/login")
        && !res
            .all_headers("set-cookie")
            .iter()
            .any(|c| c.starts_with("heyboss_flash=error") || c.starts_with("heyboss_flash=warning"))
}

/// Values a person would enter: the page's own where it has them, plausible ones elsewhere.
/// `variant` 1 changes every field a person could change.
fn fill(form: &Form, variant: usize) -> Vec<(String, String)> {
    let unique = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let v = variant;
    let mut out: Vec<(String, String)> = Vec::new();
    for f in &form.fields {
        if out.iter().any(|(k, _)| *k == f.name) {
            continue;
        }
        let value = match f.kind.as_str() {
            "hidden" | "button" => f.value.clone(),
            "select" | "radio" if f.options.iter().any(|o| !o.is_empty()) => {
                // A person picks a real choice, not the "choose…" placeholder.
                let choices: Vec<&String> = f.options.iter().filter(|o| !o.is_empty()).collect();
                // A select showing the current state (a role) is there to be changed.
                let i = choices.iter().position(|o| **o == f.value).unwrap_or(0);
                let change = usize::from(f.preselected);
                choices[(i + v + change) % choices.len()].clone()
            }
            _ if !f.value.is_empty() && v == 0 => f.value.clone(),
            _ => typed(&f.name, &f.kind, f.min.as_deref(), v, &unique),
        };
        out.push((f.name.clone(), value));
    }
    out
}

fn typed(name: &str, kind: &str, min: Option<&str>, v: usize, unique: &str) -> String {
    let today = chrono::Utc::now().date_naive();
    match name {
        "amount" => ["500.00", "600.00"][v % 2].into(),
        "deposit" => ["250.00", "300.00"][v % 2].into(),
        "budget" => ["10000", "20000"][v % 2].into(),
        "courses" => ["CS101, MATH201", "CS102"][v % 2].into(),
        "group" => ["malware", "phishing"][v % 2].into(),
        "term" => "2027-fall".into(),
        "opens_on" => today.to_string(),
        "closes_on" => (today + chrono::Days::new(60)).to_string(),
        "default_score" => ["50", "60"][v % 2].into(),
        "username" => format!("crawl{unique}"),
        "email" => format!("crawl{unique}@example.edu"),
        "current_password" => DEMO_PASSWORD.into(),
        _ if kind == "password" => "crawl-password-123".into(),
        _ if kind == "number" => min.unwrap_or("1").to_owned(),
        _ if kind == "date" => today.to_string(),
        _ => format!("Crawl {name} {unique} {v}"),
    }
}

fn user_id(app: &TestApp, username: &str) -> uuid::Uuid {
    let mut conn = app.state.pool.get().unwrap();
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .first(&mut conn)
        .unwrap()
}

/// Wait until every catch-up subscriber has handled the whole log, so that what a reactor
/// appends in reaction to an earlier command is not counted against the next one.
fn settle(app: &TestApp) {
    let mut conn = app.state.pool.get().unwrap();
    loop {
        let head = log_head(app);
        let names: Vec<String> = heyboss::schema::subscriber_checkpoints::table
            .select(heyboss::schema::subscriber_checkpoints::name)
            .load(&mut conn)
            .unwrap();
        for name in &names {
            let reached = heyboss::es::subscriber::wait_for(
                &mut conn,
                name,
                head,
                std::time::Duration::from_secs(10),
            )
            .unwrap();
            assert!(reached, "subscriber {name} did not catch up");
        }
        if log_head(app) == head {
            return;
        }
    }
}

fn log_length(app: &TestApp) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    events::table.count().get_result(&mut conn).unwrap()
}

fn log_head(app: &TestApp) -> i64 {
    let mut conn = app.state.pool.get().unwrap();
    heyboss::es::store::head_position(&mut conn).unwrap()
}

fn event_exists(app: &TestApp, position: i64) -> bool {
    let mut conn = app.state.pool.get().unwrap();
    diesel::select(diesel::dsl::exists(
        events::table.filter(events::position.eq(position)),
    ))
    .get_result(&mut conn)
    .unwrap()
}

/// The positions of the events a keyed command appended, if its outcome is stored.
fn stored_positions(app: &TestApp, key: &str) -> Option<Vec<i64>> {
    let mut conn = app.state.pool.get().unwrap();
    let outcome: Option<serde_json::Value> = command_outcomes::table
        .find(key)
        .select(command_outcomes::outcome)
        .first(&mut conn)
        .optional()
        .unwrap()
        .flatten();
    outcome.map(|o| {
        o["positions"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
            .unwrap_or_default()
    })
}

fn first_message(body: &str) -> String {
    body.split("role=\"alert\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("")
        .to_owned()
}
