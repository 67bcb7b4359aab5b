//! Forms catch mistakes (issue 19.6): a value that must exist is chosen from what exists, the
//! command refuses anything else however it arrives, and a form shows all its errors at once.

mod common;
mod scholarships_support;

use common::{count_events, create_user, Client, Response, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use scholarships_support::*;

/// Every event in the log: a refused form records none.
fn all_events(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    let mut conn = app.state.pool.get().unwrap();
    heyboss::schema::events::table
        .count()
        .get_result(&mut conn)
        .unwrap()
}

/// `message` beside the control `id` (`{id}-error`), which says it is invalid and is described
/// by the message.
fn assert_beside(body: &str, id: &str, message: &str) {
    let at = body
        .find(&format!("<p class=\"field-error\" id=\"{id}-error\">"))
        .unwrap_or_else(|| panic!("no message beside {id}: {body}"));
    let beside = &body[at..at + body[at..].find("</p>").unwrap()];
    assert!(beside.contains(message), "{id}: {message:?} in {beside}");
    let control = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no control {id}"));
    let tag = &body[control..control + body[control..].find('>').unwrap()];
    assert!(
        tag.contains("aria-invalid=\"true\"")
            && tag.contains(&format!("aria-describedby=\"{id}-error")),
        "{id}: {tag}"
    );
}

/// The form was refused with every mistake: 422, the summary counting them and linking to each
/// field, and each message beside its field (`{id}-error`), which says it is invalid and is
/// described by the message.
fn assert_every_mistake(res: &Response, mistakes: &[(&str, &str)]) {
    assert_eq!(res.status, 422, "{}", res.body);
    let body = res.body.replace("&#x2F;", "/");
    let summary = if mistakes.len() == 1 {
        "correct the field marked below".to_owned()
    } else {
        format!("correct the {} fields marked below", mistakes.len())
    };
    assert!(body.contains(&summary), "{summary} in {body}");
    for (id, message) in mistakes {
        assert_beside(&body, id, message);
        assert!(
            body.contains(&format!("<li><a href=\"#{id}\">")),
            "the summary links to {id}"
        );
    }
    assert_eq!(
        body.matches("class=\"field-error\"").count(),
        mistakes.len(),
        "no other field is marked"
    );
}

#[test]
fn a_fund_form_offers_terms_and_shows_every_error_beside_its_field() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let page = staff.get("/scholarships/funds");
    // The term is chosen from a list of terms written as everywhere else.
    let select = &page.body[page.body.find("<select id=\"fund-term\"").unwrap()..];
    let select = &select[..select.find("</select>").unwrap()];
    assert!(
        select.contains("-fall\">") && select.contains("-spring\">"),
        "{select}"
    );

    // Four mistakes at once: four messages, each beside its field, and nothing recorded.
    let res = staff.post(
        "/scholarships/funds",
        &[
            ("name", " "),
            ("term", "fall 2027"),
            ("budget", "lots"),
            ("criteria", ""),
            ("opens_on", "2027-03-01"),
            ("closes_on", "2027-01-01"),
        ],
    );
    assert_eq!(res.status, 422, "{}", res.body);
    res.assert_contains("correct the 4 fields marked below");
    for (field, message) in [
        ("fund-name-error", "A fund needs a name"),
        (
            "fund-term-error",
            "is not a term: write it as year-season, e.g. 2027-fall",
        ),
        ("fund-budget-error", "is not an amount"),
        (
            "fund-closes-on-error",
            "must close on or after the day it opens",
        ),
    ] {
        let at = res.body.find(&format!("id=\"{field}\"")).expect(field);
        assert!(
            res.body[at..at + 200].contains(message),
            "{field}: {}",
            &res.body[at..at + 200]
        );
        res.assert_contains(&format!("aria-describedby=\"{field}\""));
    }
    assert_eq!(count_events(&app, "FundCreated"), 0);

    // A crafted post with only the term wrong gets the same clear refusal.
    let res = staff.post(
        "/scholarships/funds",
        &[
            ("name", "Merit"),
            ("term", "fall 2027"),
            ("budget", "1000"),
            ("criteria", ""),
            ("opens_on", "2027-01-01"),
            ("closes_on", "2027-02-01"),
        ],
    );
    assert_eq!(res.status, 422);
    res.assert_contains("correct the field marked below")
        .assert_contains("&quot;fall 2027&quot; is not a term");
    assert_eq!(count_events(&app, "FundCreated"), 0);
}

#[test]
fn a_clearance_is_granted_only_for_a_group_some_signature_is_in() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = &app.state.store;
    heyboss::threats::service::set_signature(
        &mut conn,
        store,
        &ctx,
        "Phish-Kit",
        "phishing",
        None,
        None,
    )
    .unwrap();
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);

    // The form offers the groups that exist.
    let page = admin.get("/admin/signatures");
    let select = &page.body[page.body.find("<select id=\"cl-group\"").unwrap()..];
    assert!(select[..select.find("</select>").unwrap()].contains("<option value=\"phishing\">"));

    // A misspelled group posted anyway is refused with the reason, and nothing is recorded.
    let res = admin.post(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "phishng"),
            ("action", "grant"),
        ],
    );
    assert!(res.status == 409 || res.status == 422, "{}", res.status);
    res.assert_contains("no signature is in the group &quot;phishng&quot;");
    // The CLI's path (the same service) refuses it too.
    let cli =
        heyboss::threats::service::change_clearance(&mut conn, store, &ctx, "ana", "phishng", true);
    assert!(cli
        .unwrap_err()
        .to_string()
        .contains("no signature is in the group"));
    assert_eq!(count_events(&app, "ClearanceGranted"), 0);

    let res = admin.post(
        "/admin/clearances",
        &[
            ("username", "ana"),
            ("group", "phishing"),
            ("action", "grant"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(count_events(&app, "ClearanceGranted"), 1);
}

#[test]
fn sign_up_shows_every_mistake_and_keeps_what_was_typed() {
    let app = TestApp::spawn();
    create_user(&app, "taken", "staff", PASSWORD);
    let mut c = Client::new(&app);
    c.get("/signup");
    let before = all_events(&app);
    let res = c.post(
        "/signup",
        &[
            ("username", "a b"),
            ("display_name", " "),
            ("email", "ada-at-example"),
            ("password", "short"),
            ("term", "fall 2027"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("signup-username", "A username has 3 to 32 characters"),
            ("signup-name", "Please give your name."),
            ("signup-email", "is not an email address"),
            ("signup-password", "at least 10 characters"),
            ("signup-term", "Choose a term"),
        ],
    );
    res.assert_contains("value=\"ada-at-example\"");
    // A taken username is said beside the other mistakes.
    let res = c.post(
        "/signup",
        &[
            ("username", "taken"),
            ("display_name", "Ada"),
            ("email", ""),
            ("password", "short"),
            ("term", "2027-fall"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("signup-username", "is taken"),
            ("signup-password", "at least 10 characters"),
        ],
    );
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_admins_account_form_shows_every_mistake() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "taken", "staff", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/accounts");
    let before = all_events(&app);
    let res = admin.post(
        "/admin/accounts",
        &[
            ("username", "taken"),
            ("display_name", "Sam\u{202E}"),
            ("email", "sam@"),
            ("role", "boss"),
            ("password", "short"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("new-username", "is taken"),
            ("new-name", "The name"),
            ("new-email", "is not an email address"),
            ("new-role", "Unknown role"),
            ("new-password", "at least 10 characters"),
        ],
    );
    res.assert_contains("The account was not created: correct the 5 fields");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_own_password_form_shows_every_mistake() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "student", PASSWORD);
    let mut c = Client::new(&app);
    c.login("ada", PASSWORD);
    c.get("/account");
    let res = c.post(
        "/account/password",
        &[
            ("current_password", "not my password"),
            ("new_password", "short"),
            ("confirm_password", "other"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("password-current", "The current password is wrong."),
            ("password-new", "at least 10 characters"),
            ("password-confirm", "differ"),
        ],
    );
    // With the current password right, the other two are still both said.
    let res = c.post(
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "short"),
            ("confirm_password", "other"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("password-new", "at least 10 characters"),
            ("password-confirm", "differ"),
        ],
    );
    assert_eq!(count_events(&app, "PasswordChanged"), 0);
}

/// A fund with Ada's application, Rita assigned to review it, and the committee signed in.
fn reviewed_fund(app: &TestApp) -> (Client, uuid::Uuid, uuid::Uuid) {
    create_user(app, "committee", "staff", PASSWORD);
    let rita = create_user(app, "rita", "staff", PASSWORD);
    let ada = create_user(app, "ada", "student", PASSWORD);
    let mut staff = Client::new(app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Merit", "1000");
    apply_directly(app, fund, ada);
    let a = application_id(app, fund, ada);
    staff.get(&format!("/scholarships/funds/{fund}"));
    let res = staff.post(
        &format!("/scholarships/applications/{a}/reviewers"),
        &[("reviewer_id", &rita.to_string())],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    (staff, fund, a)
}

#[test]
fn the_review_form_shows_every_mistake_with_the_criteria_named() {
    let app = TestApp::spawn();
    let (_, _, a) = reviewed_fund(&app);
    let mut rita = Client::new(&app);
    rita.login("rita", PASSWORD);
    let page = format!("/scholarships/applications/{a}/review");
    rita.get(&page);
    let before = all_events(&app);
    let res = rita.post(
        &page,
        &[
            ("merit", "9"),
            ("need", ""),
            ("statement", "3"),
            ("community", "x"),
            ("comment", "fine \u{202E} plan"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("review-merit", "A score is from 1 to 5, not 9."),
            ("review-need", "Choose a score from 1 to 5."),
            ("review-community", "Choose a score from 1 to 5."),
            ("review-comment", "The comment"),
        ],
    );
    // The summary names each criterion; what was chosen stays chosen.
    res.assert_contains("Academic merit: a score is from 1 to 5, not 9.")
        .assert_contains("Community contribution: choose a score")
        .assert_contains("<option value=\"3\" selected>");
    assert_eq!(all_events(&app), before);
}

#[test]
fn a_committee_decision_shows_every_mistake_in_its_row() {
    let app = TestApp::spawn();
    let (mut staff, fund, a) = reviewed_fund(&app);
    let before = all_events(&app);
    let res = staff.post(
        &format!("/scholarships/applications/{a}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "lots"),
            ("reason", " "),
            ("sort", "applicant"),
            ("dir", "asc"),
        ],
    );
    let row = format!("decision-{a}");
    assert_every_mistake(
        &res,
        &[
            (&format!("{row}-amount"), "is not an amount"),
            (&format!("{row}-reason"), "Give a reason for the decision"),
        ],
    );
    // The row's form is open, with what was typed, on the board as it was sorted.
    res.assert_contains("<details class=\"decide\" open>")
        .assert_contains("value=\"lots\"")
        .assert_contains("aria-sort=\"ascending\"");
    let res = staff.post_htmx(
        &format!("/scholarships/applications/{a}/decision"),
        &[("outcome", "maybe"), ("amount", ""), ("reason", "")],
    );
    assert_every_mistake(
        &res,
        &[
            (
                &format!("{row}-outcome"),
                "Choose award, decline or waitlist.",
            ),
            (&format!("{row}-reason"), "Give a reason"),
        ],
    );
    assert!(res.body.trim_start().starts_with("<section id=\"board\""));
    assert_eq!(all_events(&app), before);
    assert_eq!(awarded_cents(&app, fund), 0);
}

#[test]
fn the_signature_form_shows_every_mistake() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/signatures");
    let before = all_events(&app);
    let res = admin.post(
        "/admin/signatures",
        &[
            ("name", " "),
            ("group", "Not A Group!"),
            ("default_score", "500"),
            ("rule_text", "alert \u{202E} tcp"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("sig-name", "signature name"),
            ("sig-group", "group"),
            ("sig-score", "500"),
            ("sig-rule", "The rule text"),
        ],
    );
    res.assert_contains("value=\"Not A Group!\"");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_clearance_form_shows_both_mistakes() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    create_user(&app, "sam", "staff", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/signatures");
    let before = all_events(&app);
    let res = admin.post(
        "/admin/clearances",
        &[
            ("username", "sam"),
            ("group", "phishng"),
            ("action", "grant"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("cl-user", "&quot;sam&quot; is not an analyst"),
            ("cl-group", "No signature is in the group"),
        ],
    );
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_audit_filter_shows_every_mistake_and_htmx_brings_the_form_with_the_results() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    let bad = "/audit?actor=a%E2%80%AEb&from=yesterday&to=2020-13-01";
    let res = admin.get(bad);
    assert_every_mistake(
        &res,
        &[
            ("f-actor", "text direction control"),
            ("f-from", "is not a time"),
            ("f-to", "is not a time"),
        ],
    );
    res.assert_contains("value=\"yesterday\"");
    // Through HTMX the results say what is wrong, and the form comes out of band, marked.
    let fragment = admin.get_htmx(bad);
    assert_eq!(fragment.status, 422);
    assert!(fragment
        .body
        .trim_start()
        .starts_with("<section id=\"audit-results\""));
    fragment
        .assert_contains("The log was not searched: correct the 3 fields marked below.")
        .assert_contains("id=\"audit-filter\"")
        .assert_contains("hx-swap-oob=\"true\"")
        .assert_contains("id=\"f-from-error\"");
    // A good search brings the form back unmarked.
    let fine = admin.get_htmx("/audit?from=2020-01-01");
    assert_eq!(fine.status, 200);
    assert!(!fine.body.contains("field-error"));
    fine.assert_contains("hx-swap-oob=\"true\"");
}

#[test]
fn the_admins_role_and_password_forms_say_what_is_wrong_beside_the_field() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let sam = create_user(&app, "sam", "staff", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get(&format!("/admin/accounts/{sam}"));
    let before = all_events(&app);
    let res = admin.post(&format!("/admin/accounts/{sam}/role"), &[("role", "boss")]);
    assert_eq!(res.status, 422, "{}", res.body);
    assert_beside(&res.body, "account-role", "Unknown role");
    // Choosing the role it has is refused on the page too, not on an error page.
    let res = admin.post(&format!("/admin/accounts/{sam}/role"), &[("role", "staff")]);
    assert_eq!(res.status, 422, "{}", res.body);
    res.assert_contains("id=\"account-role-error\"")
        .assert_contains("<h1>sam");
    let res = admin.post(
        &format!("/admin/accounts/{sam}/password"),
        &[("new_password", "short")],
    );
    assert_eq!(res.status, 422, "{}", res.body);
    assert_beside(&res.body, "reset-password", "at least 10 characters");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_own_email_and_time_zone_forms_say_what_is_wrong_beside_the_field() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "student", PASSWORD);
    let mut c = Client::new(&app);
    c.login("ada", PASSWORD);
    c.get("/account");
    let before = all_events(&app);
    let res = c.post("/account/email", &[("email", "ada at home")]);
    assert_every_mistake(&res, &[("email-address", "is not an email address")]);
    res.assert_contains("Your email address is not changed")
        .assert_contains("value=\"ada at home\"");
    let res = c.post("/account/time-zone", &[("time_zone", "Mars/Olympus_Mons")]);
    assert_every_mistake(&res, &[("tz-zone", "is not a time zone")]);
    res.assert_contains("Your time zone is not changed");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_assign_reviewer_form_says_what_is_wrong_beside_the_rows_choice() {
    let app = TestApp::spawn();
    let (mut staff, _, a) = reviewed_fund(&app);
    let rita = {
        use diesel::prelude::*;
        use heyboss::schema::users;
        let mut conn = app.state.pool.get().unwrap();
        users::table
            .filter(users::username.eq("rita"))
            .select(users::id)
            .first::<uuid::Uuid>(&mut conn)
            .unwrap()
    };
    let before = all_events(&app);
    let path = format!("/scholarships/applications/{a}/reviewers");
    let id = format!("assign-{a}-reviewer");
    let res = staff.post(
        &path,
        &[
            ("reviewer_id", "nobody"),
            ("sort", "applicant"),
            ("dir", "asc"),
        ],
    );
    assert_every_mistake(&res, &[(&id, "Choose a reviewer from the list.")]);
    res.assert_contains("No reviewer was assigned")
        .assert_contains("aria-sort=\"ascending\"");
    // Rita is assigned already: said beside the choice, through HTMX too, the board alone.
    let res = staff.post_htmx(&path, &[("reviewer_id", &rita.to_string())]);
    assert_every_mistake(&res, &[(&id, "already assigned")]);
    assert!(res.body.trim_start().starts_with("<section id=\"board\""));
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_apply_form_says_what_is_wrong_beside_the_statement() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    create_user(&app, "ada", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Merit", "1000");
    let mut ada = Client::new(&app);
    ada.login("ada", PASSWORD);
    ada.get("/scholarships");
    let before = all_events(&app);
    let path = format!("/scholarships/funds/{fund}/apply");
    let id = format!("apply-{fund}-statement");
    let res = ada.post(&path, &[("statement", "   ")]);
    assert_every_mistake(&res, &[(&id, "Write a short statement")]);
    // Through HTMX the student's section alone, with what was typed kept.
    let res = ada.post_htmx(&path, &[("statement", "why \u{202E} me")]);
    assert_every_mistake(&res, &[(&id, "The statement")]);
    assert!(res
        .body
        .trim_start()
        .starts_with("<div id=\"student-scholarships\""));
    res.assert_contains("why [U+202E] me</textarea>");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_sensor_forms_say_what_is_wrong_beside_the_name_and_in_the_row() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/sensors");
    let before = all_events(&app);
    let res = admin.post("/admin/sensors", &[("name", "edge\u{202E}1")]);
    assert_every_mistake(&res, &[("sensor-name", "The sensor name")]);
    res.assert_contains("The sensor was not registered")
        .assert_contains("value=\"edge[U+202E]1\"");
    let res = admin.post_htmx("/admin/sensors", &[("name", "   ")]);
    assert_every_mistake(&res, &[("sensor-name", "")]);
    assert!(res
        .body
        .trim_start()
        .starts_with("<div id=\"admin-sensors\""));
    assert_eq!(all_events(&app), before);

    // Revoking a sensor revoked already (a second tab) says so in its row, not on an error page.
    let res = admin.post("/admin/sensors", &[("name", "branch")]);
    assert_eq!(res.status, 200, "{}", res.body);
    let marker = "action=\"/admin/sensors/";
    let at = res.body.find(marker).unwrap() + marker.len();
    let id = res.body[at..at + 36].to_owned();
    let revoke = format!("/admin/sensors/{id}/revoke");
    let res = admin.post(&revoke, &[("confirm", "yes")]);
    assert_eq!(res.status, 303, "{}", res.body);
    let before = all_events(&app);
    let res = admin.post(&revoke, &[("confirm", "yes")]);
    assert_eq!(res.status, 422, "{}", res.body);
    let row = format!("revoke-{id}-sensor");
    res.assert_contains(&format!("<p class=\"field-error\" id=\"{row}-error\">"))
        .assert_contains(&format!("<li><a href=\"#{row}\">"))
        .assert_contains("The sensor was not revoked");
    assert_eq!(all_events(&app), before);
}

#[test]
fn the_enrollment_step_forms_say_what_is_wrong_beside_the_field() {
    let app = TestApp::spawn();
    let leo = create_user(&app, "leo", "student", PASSWORD);
    create_user(&app, "sam", "staff", PASSWORD);
    let mut s = Client::new(&app);
    s.login("leo", PASSWORD);
    s.get("/enrollment");
    let before = all_events(&app);
    let res = s.post("/enrollment/actions/inquire", &[("term", "fall 2027")]);
    assert_every_mistake(&res, &[("inquire-term", "is not a term")]);
    res.assert_contains("Nothing was recorded: correct the field");
    assert_eq!(all_events(&app), before);

    let term = heyboss::enrollment::commands::Term::upcoming(chrono::Utc::now().date_naive(), 1)[0]
        .to_string();
    for (action, fields) in [
        ("inquire", vec![("term", term.as_str())]),
        ("start", vec![]),
        ("submit", vec![]),
    ] {
        let res = s.post(&format!("/enrollment/actions/{action}"), &fields);
        assert_eq!(res.status, 303, "{action}: {}", res.body);
    }
    // A withdrawal without a reason, through HTMX: the fragment, the message beside the reason.
    let before = all_events(&app);
    let res = s.post_htmx(
        "/enrollment/actions/withdraw",
        &[("reason", "   "), ("confirm", "yes")],
    );
    assert_every_mistake(
        &res,
        &[("withdraw-reason", "Give a reason for withdrawing")],
    );
    assert!(res
        .body
        .trim_start()
        .starts_with("<div id=\"enrollment-progress\""));
    assert_eq!(all_events(&app), before);

    // The office's decision, crafted: beside the decision, on the student's page.
    let mut office = Client::new(&app);
    office.login("sam", PASSWORD);
    let page = format!("/enrollment/students/{leo}");
    office.get(&page);
    for document in ["transcript", "identification"] {
        let res = office.post(
            &format!("{page}/actions/document"),
            &[("document", document)],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    }
    let before = all_events(&app);
    let res = office.post(&format!("{page}/actions/decide"), &[("decision", "maybe")]);
    assert_every_mistake(&res, &[("decide-decision", "")]);
    res.assert_contains("leo</span></h1>");
    assert_eq!(all_events(&app), before);
}

/// The account page's forms, as a browser reads them back after a refusal: each form's fields
/// as the user had them (the other forms' too), every mistake shown.
#[test]
fn a_refused_account_form_keeps_every_field_the_user_had() {
    let app = TestApp::spawn();
    create_user(&app, "ada", "student", PASSWORD);
    let mut c = Client::new(&app);
    c.login("ada", PASSWORD);
    c.get("/account");
    assert_eq!(
        c.post("/account/email", &[("email", "ada@example.edu")])
            .status,
        303
    );
    assert_eq!(
        c.post("/account/time-zone", &[("time_zone", "Europe/Paris")])
            .status,
        303
    );
    let value = |body: &str, action: &str, name: &str| {
        common::forms::forms(body)
            .into_iter()
            .find(|f| f.action == action)
            .unwrap_or_else(|| panic!("{action} on the page: {body}"))
            .value(name)
            .map(str::to_owned)
    };
    let kept = |res: &Response, zone: &str, email: &str| {
        assert_eq!(
            value(&res.body, "/account/email", "email").as_deref(),
            Some(email),
            "{}",
            res.body
        );
        assert_eq!(
            value(&res.body, "/account/time-zone", "time_zone").as_deref(),
            Some(zone),
            "{}",
            res.body
        );
        res.assert_contains("ada@example.edu");
    };

    // A time zone mistake: the email form still holds the address, the zone shows what was sent.
    let res = c.post("/account/time-zone", &[("time_zone", "Mars/Olympus_Mons")]);
    assert_every_mistake(&res, &[("tz-zone", "is not a time zone")]);
    kept(&res, "Mars/Olympus_Mons", "ada@example.edu");

    // An email mistake: what was typed, and the chosen zone.
    let res = c.post("/account/email", &[("email", "ada at home")]);
    assert_every_mistake(&res, &[("email-address", "is not an email address")]);
    kept(&res, "Europe/Paris", "ada at home");

    // A password mistake (every one at once), without JavaScript: the whole page as it was.
    let res = c.post(
        "/account/password",
        &[
            ("current_password", ""),
            ("new_password", "short"),
            ("confirm_password", "other"),
        ],
    );
    assert_every_mistake(
        &res,
        &[
            ("password-current", "current password"),
            ("password-new", "at least 10 characters"),
            ("password-confirm", "differ"),
        ],
    );
    kept(&res, "Europe/Paris", "ada@example.edu");
}
