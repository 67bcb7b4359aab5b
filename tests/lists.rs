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
    // The notifications subscriber catches up after the commands: wait until it has written all
    // thirty. The frame reads the unread count a moment before the page reads the list, so while
    // it is still writing, one page can count 29 new beside a list of 30 (seen once in CI).
    let first = loop {
        let page = c.get("/notifications");
        let caught_up =
            page.body.contains("1–25 of 30") && page.body.contains("Mark all as read (30 new)");
        if caught_up || start.elapsed().as_secs() > 10 {
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

/// The applicants of the committee board, in order.
fn board_names(body: &str) -> Vec<String> {
    body.split("<td data-label=\"Applicant\"><a href=\"/scholarships/applications/")
        .skip(1)
        .map(|s| s[s.find('>').unwrap() + 1..s.find("</a>").unwrap()].to_owned())
        .collect()
}

/// `n` students named "Student 00".. who applied to `fund`, oldest first.
fn applicants(app: &TestApp, fund: uuid::Uuid, n: usize) -> Vec<uuid::Uuid> {
    (0..n)
        .map(|i| {
            let s = create_named_user(
                app,
                &format!("s{i:02}"),
                &format!("Student {i:02}"),
                "student",
            );
            scholarships_support::apply_directly(app, fund, s);
            scholarships_support::application_id(app, fund, s)
        })
        .collect()
}

#[test]
fn the_committee_board_pages_with_a_total_and_sorts_by_its_columns() {
    let app = TestApp::spawn();
    create_user(&app, "office", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("office", PASSWORD);
    let fund = scholarships_support::create_open_fund(&mut staff, "Board", "1000");
    let apps = applicants(&app, fund, 55);
    let board = format!("/scholarships/funds/{fund}");

    // 55 applications, 50 a page, ranked (unreviewed: oldest first).
    let first = staff.get(&board);
    first
        .assert_contains("1–50 of 55")
        .assert_contains("Ranked by average review score");
    let names = board_names(&first.body);
    assert_eq!((names.len(), names[0].as_str()), (50, "Student 00"));
    let second = staff.get(&format!("{board}?page=2"));
    second.assert_contains("51–55 of 55");
    assert_eq!(board_names(&second.body)[0], "Student 50");

    // One reviewed application ranks first, and first by number of reviews too.
    staff.post(
        &format!("/scholarships/applications/{}/reviewers", apps[30]),
        &[("reviewer_id", &rita.to_string())],
    );
    let mut r = Client::new(&app);
    r.login("rita", PASSWORD);
    let review = format!("/scholarships/applications/{}/review", apps[30]);
    r.get(&review);
    let res = r.post(
        &review,
        &[
            ("merit", "4"),
            ("need", "4"),
            ("statement", "4"),
            ("community", "4"),
            ("comment", ""),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(board_names(&staff.get(&board).body)[0], "Student 30");
    let by_reviews = staff.get(&format!("{board}?sort=reviews&dir=desc"));
    assert_eq!(board_names(&by_reviews.body)[0], "Student 30");
    by_reviews.assert_contains("aria-sort=\"descending\"");

    // By applicant, descending, with the rank column gone (it is the ranking's alone).
    let by_name = staff.get(&format!("{board}?sort=applicant&dir=desc"));
    assert_eq!(
        board_names(&by_name.body)[..2],
        ["Student 54", "Student 53"]
    );
    assert!(!by_name.body.contains("data-label=\"Rank\""));
    by_name.assert_contains("1–50 of 55");
    // The next page keeps the order; HTMX swaps the board alone.
    by_name.assert_contains("sort=applicant&amp;dir=desc&amp;page=2\" rel=\"next\"");
    let fragment = staff.get_htmx(&format!("{board}?sort=applicant&dir=desc&page=2"));
    assert!(fragment
        .body
        .trim_start()
        .starts_with("<section id=\"board\""));
    assert_eq!(
        board_names(&fragment.body),
        [
            "Student 04",
            "Student 03",
            "Student 02",
            "Student 01",
            "Student 00"
        ]
    );
    // A decision taken on a sorted page leads back to that page in that order.
    let res = staff.post(
        &format!("/scholarships/applications/{}/decision", apps[1]),
        &[
            ("outcome", "decline"),
            ("reason", "Not this year."),
            ("sort", "applicant"),
            ("dir", "desc"),
            ("page", "2"),
        ],
    );
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(
        res.header("location"),
        Some(format!("{board}?sort=applicant&dir=desc&page=2").as_str())
    );
}

/// The applicants of one section of the reviewer's queue (`to-do` or `scored`), in order.
fn queue_names(body: &str, section: &str) -> Vec<String> {
    let start = body
        .find(&format!("<section class=\"card\" id=\"{section}\">"))
        .unwrap();
    let end = start + body[start..].find("</section>").unwrap();
    body[start..end]
        .split("<td data-label=\"Applicant\">")
        .skip(1)
        .map(|s| s[..s.find("</td>").unwrap()].to_owned())
        .collect()
}

#[test]
fn the_review_queue_pages_each_list_with_a_total_and_sorts_them_apart() {
    let app = TestApp::spawn();
    create_user(&app, "office", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("office", PASSWORD);
    let fund = scholarships_support::create_open_fund(&mut staff, "Queue", "1000");
    let apps = applicants(&app, fund, 30);
    staff.get(&format!("/scholarships/funds/{fund}"));
    for a in &apps {
        let res = staff.post(
            &format!("/scholarships/applications/{a}/reviewers"),
            &[("reviewer_id", &rita.to_string())],
        );
        assert_eq!(res.status, 303);
    }
    let mut r = Client::new(&app);
    r.login("rita", PASSWORD);
    // Rita scores three: 2, 5 and 3 on every criterion.
    for (a, score) in [(apps[0], "2"), (apps[1], "5"), (apps[2], "3")] {
        let review = format!("/scholarships/applications/{a}/review");
        r.get(&review);
        let res = r.post(
            &review,
            &[
                ("merit", score),
                ("need", score),
                ("statement", score),
                ("community", score),
                ("comment", ""),
            ],
        );
        assert_eq!(res.status, 303, "{}", res.body);
    }

    let queue = r.get("/scholarships/reviews");
    queue
        .assert_contains("To do (27)")
        .assert_contains("Scored (3)")
        .assert_contains("1–25 of 27")
        .assert_contains("1–3 of 3");
    let to_do = queue_names(&queue.body, "to-do");
    assert_eq!((to_do.len(), to_do[0].as_str()), (25, "Student 03"));
    assert_eq!(
        queue_names(&queue.body, "scored"),
        ["Student 00", "Student 01", "Student 02"]
    );

    // The to-do list's second page, and the scored list by score: each keeps the other's place.
    let both =
        r.get("/scholarships/reviews?sort=applicant&dir=desc&scored_sort=score&scored_dir=desc");
    assert_eq!(
        queue_names(&both.body, "to-do")[..2],
        ["Student 29", "Student 28"]
    );
    assert_eq!(
        queue_names(&both.body, "scored"),
        ["Student 01", "Student 02", "Student 00"]
    );
    let body = both.body.replace("&amp;", "&").replace("&#x2F;", "/");
    assert!(
        body.contains("href=\"/scholarships/reviews?scored_sort=score&scored_dir=desc&sort=applicant&dir=desc&page=2\" rel=\"next\""),
        "{body}"
    );
    let page2 = r.get(
        "/scholarships/reviews?scored_sort=score&scored_dir=desc&sort=applicant&dir=desc&page=2",
    );
    page2.assert_contains("26–27 of 27");
    assert_eq!(
        queue_names(&page2.body, "to-do"),
        ["Student 04", "Student 03"]
    );
    assert_eq!(queue_names(&page2.body, "scored")[0], "Student 01");
    // "Next application" is the queue's first to score, whatever the page shows.
    page2.assert_contains(&format!(
        "/scholarships/applications/{}/review\" rel=\"next\">Next application: Student 03",
        apps[3]
    ));
}
