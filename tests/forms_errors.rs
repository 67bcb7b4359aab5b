//! Forms catch mistakes (issue 19.6): a value that must exist is chosen from what exists, the
//! command refuses anything else however it arrives, and a form shows all its errors at once.

mod common;

use common::{count_events, create_user, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};

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
