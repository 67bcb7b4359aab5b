//! Numbers and times read naturally: times in the viewer's time zone (chosen on /account, else
//! the campus default), relative when recent with the exact time in the title, and terms in
//! calendar order. (The formats themselves: unit tests in src/web/format.rs.)

mod common;

use chrono::Utc;
use common::forms::forms;
use common::{count_events, create_user, Client, TestApp, PASSWORD};

/// The zone abbreviation the exact time of an event recorded now carries (EST or EDT, ...).
fn abbreviation(zone: chrono_tz::Tz) -> String {
    Utc::now().with_timezone(&zone).format("%Z").to_string()
}

/// The `title` of the first `<time>` of the enrollment timeline.
fn first_time_title(body: &str) -> String {
    let at = body.find("<time datetime=").expect("a time on the page");
    let title = &body[at..];
    let start = title.find("title=\"").unwrap() + 7;
    title[start..start + title[start..].find('"').unwrap()].to_owned()
}

fn begin_enrollment(s: &mut Client) {
    let page = s.get("/enrollment").body;
    let begin = forms(&page)
        .into_iter()
        .find(|f| f.action == "/enrollment/actions/inquire")
        .expect("the inquiry form");
    assert_eq!(s.submit(&begin, &[]).status, 303);
}

#[test]
fn a_user_chooses_the_time_zone_their_times_read_in() {
    let app = TestApp::spawn_with(|s| s.time_zone = chrono_tz::Europe::Paris);
    create_user(&app, "ines", "student", PASSWORD);
    let mut s = Client::new(&app);
    s.login("ines", PASSWORD);
    begin_enrollment(&mut s);

    // The campus default first, and a recent event reads as relative.
    let page = s.get("/enrollment").body;
    let title = first_time_title(&page);
    assert!(
        title.ends_with(&abbreviation(chrono_tz::Europe::Paris)),
        "{title}"
    );
    assert!(page.contains(">just now</time>"), "{page}");

    // A zone that does not exist is refused with a message, and nothing is recorded.
    let account = s.get("/account");
    account.assert_contains("The campus time zone (Europe&#x2F;Paris)");
    let form = forms(&account.body)
        .into_iter()
        .find(|f| f.action == "/account/time-zone")
        .expect("the time zone form");
    let res = s.submit(&form, &[("time_zone", "Mars/Olympus_Mons")]);
    assert_eq!(res.status, 422);
    res.assert_contains("is not a time zone");
    assert_eq!(count_events(&app, "TimeZoneChosen"), 0);

    let res = s.submit(&form, &[("time_zone", "America/New_York")]);
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(count_events(&app, "TimeZoneChosen"), 1);
    s.get("/account")
        .assert_contains("Times are now shown in America&#x2F;New_York.")
        .assert_contains("<option selected>America&#x2F;New_York</option>");
    let title = first_time_title(&s.get("/enrollment").body);
    assert!(
        title.ends_with(&abbreviation(chrono_tz::America::New_York)),
        "{title}"
    );

    // Choosing it again says so; back to the campus default.
    let form = forms(&s.get("/account").body)
        .into_iter()
        .find(|f| f.action == "/account/time-zone")
        .unwrap();
    let res = s.submit(&form, &[("time_zone", "America/New_York")]);
    assert_eq!(res.status, 422);
    res.assert_contains("already shown in America&#x2F;New_York");
    assert_eq!(s.submit(&form, &[("time_zone", "")]).status, 303);
    let title = first_time_title(&s.get("/enrollment").body);
    assert!(
        title.ends_with(&abbreviation(chrono_tz::Europe::Paris)),
        "{title}"
    );
}

#[test]
fn the_pipeline_lists_terms_in_calendar_order() {
    let app = TestApp::spawn();
    create_user(&app, "sam", "staff", PASSWORD);
    for (name, term) in [
        ("fay", "2027-fall"),
        ("spa", "2027-spring"),
        ("sum", "2027-summer"),
    ] {
        create_user(&app, name, "student", PASSWORD);
        let mut s = Client::new(&app);
        s.login(name, PASSWORD);
        let page = s.get("/enrollment").body;
        let begin = forms(&page)
            .into_iter()
            .find(|f| f.action == "/enrollment/actions/inquire")
            .unwrap();
        assert_eq!(s.submit(&begin, &[("term", term)]).status, 303);
    }
    let mut staff = Client::new(&app);
    staff.login("sam", PASSWORD);
    let page = staff.get("/enrollment/pipeline").body;
    let at = |t: &str| {
        page.find(&format!(">{t}</th>"))
            .unwrap_or_else(|| panic!("{t}: {page}"))
    };
    assert!(at("2027-spring") < at("2027-summer") && at("2027-summer") < at("2027-fall"));
}
