//! Lists that grow page with a total count, sort by their columns and search (issue 19.4), over
//! real HTTP.

mod common;

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
