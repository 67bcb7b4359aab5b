//! Lists that grow page with a total count, sort by their columns and search (issue 19.4), over
//! real HTTP.

mod common;
mod scholarships_support;

use common::{create_named_user, create_user, Client, TestApp, PASSWORD};

fn admin(app: &TestApp) -> Client {
    create_user(app, "root", "admin", PASSWORD);
    let mut c = Client::new(app);
    c.login("root", PASSWORD);
    c
}

/// The usernames of the accounts table, in order.
fn usernames(body: &str) -> Vec<String> {
    body.split("<td><a href=\"/admin/accounts/")
        .skip(1)
        .map(|s| s[s.find('>').unwrap() + 1..s.find("</a>").unwrap()].to_owned())
        .collect()
}

#[test]
fn the_accounts_page_pages_with_a_total_sorts_and_searches() {
    let app = TestApp::spawn();
    let mut c = admin(&app);
    for i in 0..44 {
        create_named_user(
            &app,
            &format!("user{i:02}"),
            &format!("Person {}", 43 - i),
            "student",
        );
    }
    create_named_user(&app, "zed", "Ada Lovelace", "student");

    // 46 accounts, 20 a page, by username.
    let first = c.get("/admin/accounts");
    first.assert_contains("1–20 of 46");
    assert_eq!(usernames(&first.body)[0], "root");
    assert_eq!(usernames(&first.body).len(), 20);
    let third = c.get("/admin/accounts?sort=username&dir=asc&page=3");
    third.assert_contains("41–46 of 46");
    assert_eq!(
        usernames(&third.body),
        ["user39", "user40", "user41", "user42", "user43", "zed"]
    );
    assert!(!third.body.contains("rel=\"next\""));
    third.assert_contains("sort=username&amp;dir=asc&amp;page=2\" rel=\"prev\"");

    // Sorted by name, descending: the header says so and the rows follow.
    let by_name = c.get("/admin/accounts?sort=name&dir=desc");
    by_name.assert_contains("aria-sort=\"descending\"");
    assert_eq!(usernames(&by_name.body)[..2], ["root", "user34"]);
    // An unknown column is the default order, not an error.
    let odd = c.get("/admin/accounts?sort=password&page=x");
    assert_eq!(odd.status, 200);
    assert_eq!(usernames(&odd.body)[0], "root");

    // Search by name or username, in any letter case; the paging links keep the search.
    let found = c.get("/admin/accounts?q=LOVE");
    assert_eq!(usernames(&found.body), ["zed"]);
    found.assert_contains("1–1 of 1");
    let found = c.get("/admin/accounts?q=USER1");
    assert_eq!(usernames(&found.body).len(), 10);
    let none = c.get("/admin/accounts?q=nobody%25");
    none.assert_contains("No account's name or username contains “nobody%”");

    // HTMX swaps only the list.
    let fragment = c.get_htmx("/admin/accounts?q=ada&page=1");
    fragment.assert_contains("id=\"account-list\"");
    assert!(!fragment.body.contains("Create an account"));
}

/// A student signed up (account and inquiry) through the enrollment service, as the sign-up page
/// does.
fn student(app: &TestApp, username: &str, name: &str, term: &str) -> uuid::Uuid {
    let mut conn = app.state.pool.get().unwrap();
    let account = heyboss::accounts::NewAccount::parse(username, name, "", "student", PASSWORD)
        .expect("a valid account");
    heyboss::enrollment::service::sign_up(
        &mut conn,
        &app.state.store,
        heyboss::es::Metadata::new(heyboss::es::Actor::Cli),
        account,
        &heyboss::enrollment::commands::Term::parse(term).unwrap(),
    )
    .expect("signed up")
}

/// The pipeline table's rows as (student, term).
fn pipeline_rows(body: &str) -> Vec<(String, String)> {
    body.split("<td><a href=\"/enrollment/students/")
        .skip(1)
        .map(|s| {
            let name = s[s.find('>').unwrap() + 1..s.find("</a>").unwrap()].to_owned();
            let cells: Vec<&str> = s.split("<td>").collect();
            // Student, username, term: the term is the third cell.
            let term = cells[2][..cells[2].find("</td>").unwrap()].to_owned();
            (name, term)
        })
        .collect()
}

#[test]
fn the_enrollment_pipeline_pages_with_a_total_and_sorts_terms_in_calendar_order() {
    let app = TestApp::spawn();
    create_user(&app, "office", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("office", PASSWORD);
    let terms = ["2027-fall", "2027-spring", "2028-spring"];
    for i in 0..55 {
        student(
            &app,
            &format!("s{i:02}"),
            &format!("Student {i:02}"),
            terms[i % 3],
        );
    }

    // 55 students, 50 a page, most recent activity first.
    let first = staff.get("/enrollment/pipeline");
    first.assert_contains("1–50 of 55");
    let rows = pipeline_rows(&first.body);
    assert_eq!(rows.len(), 50);
    assert_eq!(rows[0].0, "Student 54", "the newest first");
    first.assert_contains("rel=\"next\"");
    let second = staff.get("/enrollment/pipeline?page=2");
    second.assert_contains("51–55 of 55");
    assert_eq!(pipeline_rows(&second.body).len(), 5);
    // A page past the last shows the last.
    staff
        .get("/enrollment/pipeline?page=9")
        .assert_contains("51–55 of 55");

    // Terms in calendar order: spring 2027, fall 2027, spring 2028 (not alphabetical).
    let by_term = staff.get("/enrollment/pipeline?sort=term&dir=asc");
    by_term.assert_contains("aria-sort=\"ascending\"");
    let rows = pipeline_rows(&by_term.body);
    assert_eq!(rows[0].1, "2027-spring");
    assert_eq!(rows[18].1, "2027-fall", "18 students in spring 2027");
    let by_term = staff.get("/enrollment/pipeline?sort=term&dir=desc");
    assert_eq!(pipeline_rows(&by_term.body)[0].1, "2028-spring");

    // By name, both ways; the pages never overlap.
    let a = pipeline_rows(&staff.get("/enrollment/pipeline?sort=name&dir=asc").body);
    let b = pipeline_rows(
        &staff
            .get("/enrollment/pipeline?sort=name&dir=asc&page=2")
            .body,
    );
    assert_eq!(a[0].0, "Student 00");
    assert_eq!(b.last().unwrap().0, "Student 54");
    let mut names: Vec<String> = a.iter().chain(&b).map(|r| r.0.clone()).collect();
    names.dedup();
    assert_eq!(names.len(), 55);
    let z = pipeline_rows(&staff.get("/enrollment/pipeline?sort=name&dir=desc").body);
    assert_eq!(z[0].0, "Student 54");

    // A filter is kept by the paging and sorting links, and counted.
    let spring = staff.get("/enrollment/pipeline?term=2027-spring&sort=name&dir=asc");
    spring.assert_contains("1–18 of 18");
    spring.assert_contains("pipeline?term=2027-spring&amp;days=14&amp;sort=name&amp;dir=desc");
    assert!(pipeline_rows(&spring.body)
        .iter()
        .all(|(_, t)| t == "2027-spring"));

    // The CSV holds every matching row, in the order asked for.
    let csv = staff.get("/enrollment/pipeline?format=csv&sort=name&dir=desc");
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 56);
    assert!(lines[1].starts_with("Student 54,"));
    assert!(lines[55].starts_with("Student 00,"));

    // HTMX swaps only the list, which still starts with its own element.
    let fragment = staff.get_htmx("/enrollment/pipeline?sort=step");
    assert!(fragment.body.starts_with("<div id=\"pipeline-list\">"));
    fragment.assert_contains("of 55");
}

#[test]
fn notifications_page_with_a_total_newest_first() {
    use heyboss::accounts::{AccountCommand, Role};
    let app = TestApp::spawn();
    let ann = create_named_user(&app, "ann", "Ann Example", "student");
    let mut conn = app.state.pool.get().unwrap();
    // Thirty role changes, each of which tells Ann.
    for i in 0..30 {
        let role = if i % 2 == 0 {
            Role::Staff
        } else {
            Role::Student
        };
        heyboss::accounts::service::execute(
            &mut conn,
            &app.state.store,
            &heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli)),
            ann,
            AccountCommand::ChangeRole { role },
        )
        .expect("the role changes");
    }
    let mut c = Client::new(&app);
    c.login("ann", PASSWORD);
    let start = std::time::Instant::now();
    let first = loop {
        let page = c.get("/notifications");
        if page.body.contains("1–25 of 30") || start.elapsed().as_secs() > 10 {
            break page;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    first.assert_contains("1–25 of 30");
    first.assert_contains("Mark all as read (30 new)");
    assert_eq!(
        first
            .body
            .matches("<span class=\"badge\">new</span>")
            .count(),
        25
    );
    let second = c.get("/notifications?page=2");
    second.assert_contains("26–30 of 30");
    let listed = |body: &str| body[body.find("id=\"notification-list\"").unwrap()..].to_owned();
    assert_eq!(listed(&second.body).matches("<li>").count(), 5);
    // The newest first: the last change (the 30th) made Ann a student again, the first one staff.
    let first_list = listed(&first.body);
    let first_item = &first_list[first_list.find("<li>").unwrap()..];
    assert!(first_item[..first_item.find("</li>").unwrap()].contains("from staff to student"));
    let second_list = listed(&second.body);
    let last_item = &second_list[second_list.rfind("<li>").unwrap()..];
    assert!(last_item[..last_item.find("</li>").unwrap()].contains("from student to staff"));
    let fragment = c.get_htmx("/notifications?page=2");
    fragment.assert_contains("id=\"notification-list\"");
    assert!(!fragment.body.contains("<h1>"));
}

#[test]
fn a_long_history_pages_newest_first_with_a_total() {
    use diesel::prelude::*;
    use heyboss::accounts::{AccountCommand, Role};
    let app = TestApp::spawn();
    let mut c = admin(&app);
    let ann = create_named_user(&app, "ann", "Ann Example", "student");
    let mut conn = app.state.pool.get().unwrap();
    for i in 0..60 {
        let role = if i % 2 == 0 {
            Role::Staff
        } else {
            Role::Student
        };
        heyboss::accounts::service::execute(
            &mut conn,
            &app.state.store,
            &heyboss::es::CommandContext::new(heyboss::es::Metadata::new(heyboss::es::Actor::Cli)),
            ann,
            AccountCommand::ChangeRole { role },
        )
        .expect("the role changes");
    }
    let (stream_type, total): (String, i64) = heyboss::schema::events::table
        .filter(heyboss::schema::events::stream_id.eq(ann.to_string()))
        .group_by(heyboss::schema::events::stream_type)
        .select((
            heyboss::schema::events::stream_type,
            diesel::dsl::count_star(),
        ))
        .first(&mut conn)
        .unwrap();
    assert!(total > 60);
    let path = format!("/history/{stream_type}/{ann}");
    let first = c.get(&path);
    first.assert_contains(&format!("1–50 of {total}"));
    let listed = |body: &str| {
        let list = &body[body.find("id=\"history-list\"").unwrap()..];
        list[..list.find("</ol>").unwrap()].matches("<li>").count()
    };
    assert_eq!(listed(&first.body), 50);
    let second = c.get(&format!("{path}?page=2"));
    second.assert_contains(&format!("51–{total} of {total}"));
    assert_eq!(listed(&second.body), (total - 50) as usize);
    // The first page starts with the newest event (the 60th change: back to student) and the
    // last page ends with the oldest (the account's registration).
    let list = &first.body[first.body.find("id=\"history-list\"").unwrap()..];
    assert!(list.find("staff to student").unwrap() < list.find("student to staff").unwrap());
    let fragment = c.get_htmx(&format!("{path}?page=2"));
    assert!(fragment.body.contains("id=\"history-list\""));
    assert!(!fragment.body.contains("<h1>"));
}

/// The fund names of the staff's funds table, in order.
fn fund_names(body: &str) -> Vec<String> {
    body.split("<td data-label=\"Fund\"><a href=\"/scholarships/funds/")
        .skip(1)
        .map(|s| s[s.find('>').unwrap() + 1..s.find("</a>").unwrap()].to_owned())
        .collect()
}

#[test]
fn the_funds_list_pages_with_a_total_and_sorts_by_money() {
    let app = TestApp::spawn();
    create_user(&app, "office", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("office", PASSWORD);
    for i in 0..27 {
        scholarships_support::create_open_fund(
            &mut staff,
            &format!("Fund {i:02}"),
            &format!("{}", 1000 + (i * 37) % 27 * 100),
        );
    }
    let first = staff.get("/scholarships/funds");
    first.assert_contains("1–25 of 27");
    let names = fund_names(&first.body);
    assert_eq!(names.len(), 25);
    assert_eq!(names[0], "Fund 26", "the newest first");
    let second = staff.get("/scholarships/funds?page=2");
    second.assert_contains("26–27 of 27");
    assert_eq!(fund_names(&second.body), ["Fund 01", "Fund 00"]);

    // By budget, largest first: 1000 + 26 * 100 = $3,600.00 is the largest budget.
    let by_budget = staff.get("/scholarships/funds?sort=budget&dir=desc");
    by_budget.assert_contains("aria-sort=\"descending\"");
    let top = &by_budget.body[by_budget.body.find("data-label=\"Budget\"").unwrap()..];
    assert!(
        top.starts_with("data-label=\"Budget\">$3,600.00"),
        "{}",
        &top[..60]
    );
    let by_name = staff.get("/scholarships/funds?sort=name&dir=asc");
    assert_eq!(fund_names(&by_name.body)[..2], ["Fund 00", "Fund 01"]);
    // HTMX swaps the list alone.
    let fragment = staff.get_htmx("/scholarships/funds?sort=name&dir=desc");
    assert!(fragment.body.trim_start().starts_with("<div id=\"funds\">"));
    assert_eq!(fund_names(&fragment.body)[0], "Fund 26");
}
