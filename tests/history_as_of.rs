//! `?as_of=`: the funds and a student's scholarship page as they stood at a moment of the past,
//! folded from the events, compared with the live page captured at that moment; scoped like the
//! live pages.

mod common;
mod scholarships_support;

use chrono::{SecondsFormat, Utc};
use common::{create_user, text_of, Client, TestApp, PASSWORD};
use scholarships_support::*;

/// The text of every cell of every body row of the first table after `marker`, tags removed and
/// spaces collapsed.
fn table_rows(body: &str, marker: &str) -> Vec<Vec<String>> {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in:\n{body}"));
    let rest = &body[start..];
    let Some(tbody) = rest.find("<tbody>") else {
        return Vec::new();
    };
    let end = rest.find("</tbody>").unwrap();
    let table = &rest[tbody..end];
    table
        .split("<tr")
        .skip(1)
        .map(|tr| {
            tr.split("<td")
                .skip(1)
                .map(|td| text_of(&td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()]))
                .collect()
        })
        .collect()
}

/// A moment just after everything recorded so far, as the `as_of` of an address.
fn now_mark() -> String {
    let t = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
    // What is recorded next is recorded after it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    t.replace('+', "%2B")
}

#[test]
fn funds_and_a_students_page_as_of_a_moment_are_the_live_pages_of_that_moment() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    create_user(&app, "bea", "student", PASSWORD);
    create_user(&app, "ana", "analyst", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    let fund = create_open_fund(&mut staff, "Then fund", "5000");
    let application = apply_and_award(&app, &mut staff, &mut student, fund, ada, "1,500");

    // The live pages at that moment.
    let funds_then = table_rows(&staff.get("/scholarships/funds").body, "<h2>Funds</h2>");
    let student_then = student.get("/scholarships").body;
    let apps_then = table_rows(&student_then, "<h2>Your applications</h2>");
    let open_then = text_of(
        &student_then[student_then.find("<h2>Open funds</h2>").unwrap()
            ..student_then.find("<h2>Your applications</h2>").unwrap()],
    );
    let app_page = format!("/scholarships/applications/{application}");
    let app_then: Vec<(String, String)> = [&mut staff, &mut student]
        .into_iter()
        .map(|c| {
            let body = c.get(&app_page).body;
            (facts(&body), history_section(&body))
        })
        .collect();
    let then = now_mark();
    assert_eq!(funds_then.len(), 1);
    assert_eq!(funds_then[0][3..6], ["$5,000.00", "$1,500.00", "$3,500.00"]);
    assert!(apps_then[0][4].contains("Accept"), "{apps_then:?}");

    // Afterwards: the student accepts, another fund, a second award, the first fund closes.
    let res = student.post(
        &format!("/scholarships/applications/{application}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let second = create_open_fund(&mut staff, "Later fund", "900");
    let res = staff.post(
        &format!("/scholarships/funds/{fund}/window"),
        &[("open", "false")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let funds_now = table_rows(&staff.get("/scholarships/funds").body, "<h2>Funds</h2>");
    assert_eq!(funds_now.len(), 2, "the live page moved on");
    assert!(funds_now.iter().any(|r| r[0] == "Later fund"));

    // As of the moment: the same rows as the live page then, under the banner.
    let res = staff.get(&format!("/scholarships/funds?as_of={then}"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("This page shows the past")
        .assert_contains("Back to now");
    let funds_as_of = table_rows(&res.body, "<h2>Funds</h2>");
    assert_eq!(funds_as_of.len(), 1);
    // Name, term, window, budget, awarded, remaining, and the open badge (without its button).
    assert_eq!(funds_as_of[0][..6], funds_then[0][..6]);
    assert_eq!(funds_as_of[0][6], "open");
    assert!(
        !res.body.contains("Create a fund"),
        "nothing to change in the past"
    );
    assert!(!res
        .body
        .contains(&format!("/scholarships/funds/{fund}/window\"")));
    assert!(!res.body.contains(&second.to_string()));

    let res = student.get(&format!("/scholarships?as_of={then}"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("This page shows the past");
    let apps_as_of = table_rows(&res.body, "<h2>Your applications</h2>");
    assert_eq!(apps_as_of.len(), 1);
    assert_eq!(apps_as_of[0][..4], apps_then[0][..4]);
    assert_eq!(apps_as_of[0][4], "offered", "the offer stood, unanswered");
    let open_as_of = text_of(
        &res.body[res.body.find("<h2>Open funds</h2>").unwrap()
            ..res.body.find("<h2>Your applications</h2>").unwrap()],
    );
    assert_eq!(open_as_of, open_then);
    // And now: accepted.
    let now = table_rows(
        &student.get("/scholarships").body,
        "<h2>Your applications</h2>",
    );
    assert_eq!(now[0][4], "accepted");

    // The application's page, for the committee and for the applicant: as it was then.
    for (i, c) in [&mut staff, &mut student].into_iter().enumerate() {
        let now = c.get(&app_page).body;
        assert!(facts(&now).contains("accepted"), "{}", facts(&now));
        let res = c.get(&format!("{app_page}?as_of={then}"));
        assert_eq!(res.status, 200, "{}", res.body);
        res.assert_contains("This page shows the past");
        assert_eq!(facts(&res.body), app_then[i].0);
        assert!(facts(&res.body).contains("offered"));
        assert_eq!(history_section(&res.body), app_then[i].1);
        assert!(history_section(&now).contains("AwardAccepted"));
    }
    let mut bea = Client::new(&app);
    bea.login("bea", PASSWORD);
    assert_eq!(bea.get(&format!("{app_page}?as_of={then}")).status, 404);
    assert_eq!(
        student.get(&format!("{app_page}?as_of=2000-01-01")).status,
        404
    );

    // Before the fund existed, there was nothing.
    let res = staff.get("/scholarships/funds?as_of=2000-01-01");
    res.assert_contains("No funds yet");

    // Scoped like the live pages: another student sees none of ada's applications; a student
    // may not see the funds page; an analyst has no scholarships page.
    let res = bea.get(&format!("/scholarships?as_of={then}"));
    assert_eq!(res.status, 200);
    assert!(table_rows(&res.body, "<h2>Your applications</h2>").is_empty());
    assert_eq!(
        student
            .get(&format!("/scholarships/funds?as_of={then}"))
            .status,
        student.get("/scholarships/funds").status
    );
    assert_ne!(student.get("/scholarships/funds").status, 200);
    let mut analyst = Client::new(&app);
    analyst.login("ana", PASSWORD);
    assert_eq!(
        analyst.get(&format!("/scholarships?as_of={then}")).status,
        403
    );

    // A moment that is not one is refused with a message.
    let res = staff.get("/scholarships/funds?as_of=last%20week");
    assert_eq!(res.status, 400);
    res.assert_contains("is not a moment");
}

/// The "History" section of an application's page, as text.
fn history_section(body: &str) -> String {
    let start = body
        .find("<h2>History</h2>")
        .unwrap_or_else(|| panic!("no history in:\n{body}"));
    let end = start + body[start..].find("</section>").unwrap();
    text_of(&body[start..end])
}

/// The facts of a signature or application page (group, default score, status, rule), as text.
fn facts(body: &str) -> String {
    let start = body
        .find("<dl class=\"facts\">")
        .unwrap_or_else(|| panic!("no facts in:\n{body}"));
    let end = start + body[start..].find("</dl>").unwrap();
    text_of(&body[start..end])
}

#[test]
fn a_signature_as_of_a_moment_is_its_page_of_that_moment_for_those_cleared_then_and_now() {
    let app = TestApp::spawn();
    create_user(&app, "boss", "admin", PASSWORD);
    // A clearance names a group some signature is in: one signature per group first.
    {
        let mut admin = Client::new(&app);
        admin.login("boss", PASSWORD);
        for g in ["alpha", "beta"] {
            admin.get("/admin/signatures");
            let res = admin.post(
                "/admin/signatures",
                &[
                    ("name", &format!("Seed {g}")),
                    ("group", g),
                    ("rule_text", "seed"),
                    ("default_score", "10"),
                ],
            );
            assert_eq!(res.status, 303, "{}", res.body);
        }
    }
    for (name, groups) in [
        ("both", &["alpha", "beta"][..]),
        ("beta_only", &["beta"][..]),
    ] {
        create_user(&app, name, "analyst", PASSWORD);
        let mut admin = Client::new(&app);
        admin.login("boss", PASSWORD);
        admin.get("/admin/signatures");
        for g in groups {
            let res = admin.post(
                "/admin/clearances",
                &[("username", name), ("group", g), ("action", "grant")],
            );
            assert_eq!(res.status, 303, "{}", res.body);
        }
    }
    let mut admin = Client::new(&app);
    admin.login("boss", PASSWORD);
    admin.get("/admin/signatures");
    let set = |admin: &mut Client, group: &str, rule: &str, score: &str| {
        admin.get("/admin/signatures");
        let res = admin.post(
            "/admin/signatures",
            &[
                ("name", "Emotet"),
                ("group", group),
                ("rule_text", rule),
                ("default_score", score),
            ],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    };
    let before = now_mark();
    set(&mut admin, "alpha", "rule one", "50");
    let mut both = Client::new(&app);
    both.login("both", PASSWORD);
    let page = "/threats/signatures/Emotet";
    let facts_then = facts(&both.get(page).body);
    assert!(facts_then.contains("alpha") && facts_then.contains("rule one"));
    let then = now_mark();
    set(&mut admin, "beta", "rule two", "80");
    let facts_now = facts(&both.get(page).body);
    assert!(facts_now.contains("beta") && facts_now.contains("rule two"));

    let res = both.get(&format!("{page}?as_of={then}"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("This page shows the past")
        .assert_contains("Back to now");
    assert_eq!(facts(&res.body), facts_then);
    // Its history as of then: the creation, not the revision.
    assert!(
        res.body.contains("<strong>Signature created</strong>")
            && !res.body.contains("<strong>Signature revised</strong>")
    );
    assert_eq!(
        facts(&admin.get(&format!("{page}?as_of={then}")).body),
        facts_then
    );

    // Cleared for its group now but not for the group it had then: not found, as for a page
    // one may not see; before it existed, not found either.
    let mut beta_only = Client::new(&app);
    beta_only.login("beta_only", PASSWORD);
    assert_eq!(beta_only.get(page).status, 200);
    assert_eq!(beta_only.get(&format!("{page}?as_of={then}")).status, 404);
    assert_eq!(both.get(&format!("{page}?as_of={before}")).status, 404);
    assert_eq!(both.get(&format!("{page}?as_of=soon")).status, 400);
}
