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
        res.body.contains("<strong>Signature created in group")
            && !res.body.contains("<strong>Signature revised: group")
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

fn assign_and_score(
    committee: &mut Client,
    reviewer: &mut Client,
    application: uuid::Uuid,
    reviewer_id: uuid::Uuid,
    score: &str,
) {
    committee.get("/scholarships/funds");
    let res = committee.post(
        &format!("/scholarships/applications/{application}/reviewers"),
        &[("reviewer_id", &reviewer_id.to_string())],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    review(reviewer, application, score);
}

fn review(reviewer: &mut Client, application: uuid::Uuid, score: &str) {
    reviewer.get(&format!("/scholarships/applications/{application}/review"));
    let res = reviewer.post(
        &format!("/scholarships/applications/{application}/review"),
        &[
            ("merit", score),
            ("need", score),
            ("statement", score),
            ("community", score),
            ("comment", "read it twice"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
}

#[test]
fn a_funds_committee_board_as_of_a_moment_is_the_board_of_that_moment() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bea = create_user(&app, "bea", "student", PASSWORD);
    let cai = create_user(&app, "cai", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let mut reviewer = Client::new(&app);
    reviewer.login("rita", PASSWORD);
    let mut ada_c = Client::new(&app);
    ada_c.login("ada", PASSWORD);
    let mut bea_c = Client::new(&app);
    bea_c.login("bea", PASSWORD);
    let fund = create_open_fund(&mut staff, "Board fund", "5000");
    bea_c.get("/scholarships");
    let res = bea_c.post(
        &format!("/scholarships/funds/{fund}/apply"),
        &[("statement", "bea's plan")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let bea_app = application_id(&app, fund, bea);
    assign_and_score(&mut staff, &mut reviewer, bea_app, rita, "3");
    let ada_app = apply_and_award(&app, &mut staff, &mut ada_c, fund, ada, "1,500");
    let board_page = format!("/scholarships/funds/{fund}");
    let marker = "<caption class=\"visually-hidden\">Applications ranked";
    let then_body = staff.get(&board_page).body;
    let board_then = table_rows(&then_body, marker);
    let then = now_mark();
    assert_eq!(board_then.len(), 2, "{board_then:?}");
    assert!(board_then[0][1].starts_with("Student bea") || board_then[0][1].contains("bea"));
    assert!(board_then[0][2].starts_with("3.00"), "{board_then:?}");
    assert!(
        board_then[1][5].contains("awarded $1,500.00 (offered)"),
        "{board_then:?}"
    );

    // Afterwards: bea's review is revised up and she is declined, ada accepts, cai applies.
    review(&mut reviewer, bea_app, "5");
    let res = staff.post(
        &format!("/scholarships/applications/{bea_app}/decision"),
        &[("outcome", "decline"), ("reason", "the fund is spoken for")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let res = ada_c.post(
        &format!("/scholarships/applications/{ada_app}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let cai_app = apply_directly(&app, fund, cai);
    let res = staff.post(
        &format!("/scholarships/applications/{cai_app}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "1000"),
            ("reason", "late but good"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    let now_body = staff.get(&board_page).body;
    assert!(now_body.contains("<dd id=\"remaining\">$2,500.00</dd>"));
    let now = table_rows(&now_body, marker);
    assert_eq!(now.len(), 3, "the live board moved on");
    assert!(now[0][2].starts_with("5.00") && now[0][5].contains("declined"));

    let res = staff.get(&format!("{board_page}?as_of={then}"));
    assert_eq!(res.status, 200, "{}", res.body);
    res.assert_contains("This page shows the past")
        .assert_contains("the committee board as it stood");
    assert!(res.body.replace("&#x2F;", "/").contains(&format!(
        "<a href=\"/scholarships/funds/{fund}\">Back to now</a>"
    )));
    let past = table_rows(&res.body, marker);
    assert_eq!(past.len(), 2, "cai had not applied: {past:?}");
    for (p, t) in past.iter().zip(&board_then) {
        // Rank, applicant, average and reviews as they were; the decision column of the award.
        assert_eq!(p[..4], t[..4]);
    }
    assert_eq!(past[1][5], board_then[1][5], "the award stood, offered");
    assert!(past[0][5].contains("not decided"), "{past:?}");
    // Budget, awarded, remaining as they stood.
    res.assert_contains("<dd id=\"remaining\">$3,500.00</dd>");
    // Nothing to decide or assign in the past.
    assert!(!res.body.contains("/decision\""));
    assert!(!res.body.contains("/reviewers\""));
    assert!(!res.body.contains("Record the decision"));

    // The committee's own: a student may not see it, then or now; before the fund, not found.
    assert_eq!(
        ada_c.get(&format!("{board_page}?as_of={then}")).status,
        ada_c.get(&board_page).status
    );
    assert_ne!(ada_c.get(&board_page).status, 200);
    assert_eq!(
        staff.get(&format!("{board_page}?as_of=2000-01-01")).status,
        404
    );
    assert_eq!(
        staff.get(&format!("{board_page}?as_of=tomorrowish")).status,
        400
    );
}

fn sensor_event(t: &str, data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"id": uuid::Uuid::new_v4().to_string(), "type": t, "data": data})
}

fn post_events(app: &TestApp, token: &str, events: Vec<serde_json::Value>) {
    let r = ureq::post(&app.url("/api/v1/events"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(serde_json::json!({ "events": events }))
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn the_sessions_list_as_of_a_moment_is_the_list_of_that_moment_scoped_by_clearance() {
    use heyboss::es::{Actor, CommandContext, Metadata};
    use heyboss::threats::service;
    use serde_json::json;
    let app = TestApp::spawn();
    create_user(&app, "ana", "analyst", PASSWORD);
    create_user(&app, "bob", "analyst", PASSWORD);
    create_user(&app, "stan", "staff", PASSWORD);
    let token = {
        let mut conn = app.state.pool.get().unwrap();
        let ctx = CommandContext::new(Metadata::new(Actor::Cli));
        let s = &app.state.store;
        service::set_signature(&mut conn, s, &ctx, "sig-a", "alpha", Some(50), Some("a")).unwrap();
        service::set_signature(&mut conn, s, &ctx, "sig-b", "beta", None, None).unwrap();
        service::change_clearance(&mut conn, s, &ctx, "ana", "alpha", true).unwrap();
        service::change_clearance(&mut conn, s, &ctx, "bob", "beta", true).unwrap();
        service::create_sensor(&mut conn, s, &ctx, "edge")
            .unwrap()
            .1
    };
    let start = Utc::now().to_rfc3339();
    post_events(
        &app,
        &token,
        vec![
            sensor_event(
                "SessionDiscovered",
                json!({"session_id": "s1", "start_time": start, "protocol": "tcp", "source_ip": "10.0.0.1", "destination_ip": "10.0.0.2", "source_port": 1, "destination_port": 80}),
            ),
            sensor_event(
                "FileDiscovered",
                json!({"file_id": "x", "session_id": "s1", "md5": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "filename": "x.exe", "file_type": "pe", "size_bytes": 10}),
            ),
            sensor_event(
                "FileScored",
                json!({"file_id": "x", "session_id": "s1", "integration": "yara", "score": 40, "signature": "sig-b"}),
            ),
            sensor_event(
                "SessionScored",
                json!({"session_id": "s1", "threat_contributor": "SIG-B", "score": 40}),
            ),
        ],
    );
    let list = "/threats/sessions";
    let marker = "<caption class=\"visually-hidden\">Sessions</caption>";
    let mut ana = Client::new(&app);
    ana.login("ana", PASSWORD);
    let mut bob = Client::new(&app);
    bob.login("bob", PASSWORD);
    let ana_then = table_rows(&ana.get(list).body, marker);
    let bob_then = table_rows(&bob.get(list).body, marker);
    let then = now_mark();
    assert_eq!(ana_then.len(), 1);
    // Score, contributor, files, and the sensor that discovered the session.
    assert_eq!(ana_then[0][5..], ["40", "restricted", "1", "edge"]);
    assert_eq!(bob_then[0][5..], ["40", "SIG-B", "1", "edge"]);

    // Afterwards: a second session; s1 gets a file and a new score by sig-a.
    post_events(
        &app,
        &token,
        vec![
            sensor_event(
                "SessionDiscovered",
                json!({"session_id": "s2", "start_time": Utc::now().to_rfc3339(), "protocol": "udp", "source_ip": "10.0.0.3", "destination_ip": "10.0.0.4", "source_port": 2, "destination_port": 53}),
            ),
            sensor_event(
                "FileDiscovered",
                json!({"file_id": "z", "session_id": "s1", "md5": "cccccccccccccccccccccccccccccccc", "filename": "z.doc", "file_type": "doc", "size_bytes": 3}),
            ),
            sensor_event(
                "SessionScored",
                json!({"session_id": "s1", "threat_contributor": "sig-a", "score": 95}),
            ),
        ],
    );
    let ana_now = table_rows(&ana.get(list).body, marker);
    assert_eq!(ana_now.len(), 2, "the live list moved on");

    for (who, client, rows_then) in [("ana", &mut ana, &ana_then), ("bob", &mut bob, &bob_then)] {
        let res = client.get(&format!("{list}?as_of={then}"));
        assert_eq!(res.status, 200, "{who}: {}", res.body);
        res.assert_contains("This page shows the past");
        assert!(res
            .body
            .replace("&#x2F;", "/")
            .contains("<a href=\"/threats/sessions\">Back to now</a>"));
        let past = table_rows(&res.body, marker);
        assert_eq!(&past, rows_then, "{who}: as of then is the list of then");
        // Sorting and filtering keep the moment.
        let res = client.get(&format!("{list}?as_of={then}&min_score=41"));
        res.assert_contains("No sessions match.");
        let res = client.get(&format!("{list}?as_of={then}&sort=latest_score&dir=asc"));
        assert_eq!(table_rows(&res.body, marker).len(), 1);
        assert!(res.body.contains("as_of="), "links keep the moment");
        // A protocol or IP filter applies to the past list; the udp session came later.
        let res = client.get(&format!("{list}?as_of={then}&protocol=udp"));
        res.assert_contains("No sessions match.");
        let res = client.get(&format!(
            "{list}?as_of={then}&ip=10.0.0.3&ip={}",
            "10.0.0.1"
        ));
        assert_eq!(res.status, 200);
        // Filters the past cannot answer are refused in words, not ignored.
        let res = client.get(&format!(
            "{list}?as_of={then}&md5=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        ));
        assert_eq!(res.status, 422, "{}", res.body);
        res.assert_contains("filters by protocol and IP only");
    }
    // Scoped at every moment: ana never sees the signature she is not cleared for, then, now or
    // in the CSV of then.
    let later = now_mark();
    for at in [then.as_str(), later.as_str(), "2000-01-01"] {
        let body = ana.get(&format!("{list}?as_of={at}")).body;
        assert!(
            !body.to_lowercase().contains("sig-b"),
            "as of {at}:\n{body}"
        );
    }
    let csv = ana.get(&format!("{list}?as_of={then}&format=csv")).body;
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",40,restricted,1"), "{csv}");
    assert!(!csv.to_lowercase().contains("sig-b"));
    let ana_later = table_rows(&ana.get(&format!("{list}?as_of={later}")).body, marker);
    assert_eq!(ana_later, ana_now, "as of just now is the list now");
    // Before any session: none. Staff have no threat pages, then or now.
    ana.get(&format!("{list}?as_of=2000-01-01"))
        .assert_contains("No sessions match.");
    let mut stan = Client::new(&app);
    stan.login("stan", PASSWORD);
    assert_eq!(
        stan.get(&format!("{list}?as_of={then}")).status,
        stan.get(list).status
    );
    assert_ne!(stan.get(list).status, 200);
    assert_eq!(ana.get(&format!("{list}?as_of=never")).status, 400);
}
