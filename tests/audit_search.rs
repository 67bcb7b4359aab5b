//! The audit log is searchable by people (issue 19.8): the stream and event types that exist
//! are offered, actors are found by name in any letter case, and a search that matches nothing
//! says so with a way back.

mod common;

use common::{create_named_user, create_user, Client, TestApp, PASSWORD};

#[test]
fn the_audit_log_offers_what_exists_and_finds_actors_by_name() {
    let app = TestApp::spawn();
    create_named_user(&app, "sstaff", "Sam Staff", "admin");
    create_user(&app, "stu", "student", PASSWORD);
    let mut sam = Client::new(&app);
    sam.login("sstaff", PASSWORD);
    // Sam changes stu's role: one RoleChanged by Sam.
    let stu = sam.get("/admin/accounts?q=stu");
    let at = stu.body.find("/admin/accounts/").unwrap() + "/admin/accounts/".len();
    let id = &stu.body[at..at + 36];
    sam.get(&format!("/admin/accounts/{id}"));
    let res = sam.post(&format!("/admin/accounts/{id}/role"), &[("role", "staff")]);
    assert_eq!(res.status, 303, "{}", res.body);

    let page = sam.get("/audit");
    // The select lists hold the types in the log, in words.
    page.assert_contains("<option value=\"user\">User</option>")
        .assert_contains("<option value=\"RoleChanged\">Role changed</option>");
    // Rows name actors as people read them.
    page.assert_contains("<td>Sam Staff</td>")
        .assert_contains("<td>the command line</td>");
    assert!(!page.body.contains("<td>cli</td>"));

    // By part of a display name, in any letter case.
    let by_sam = sam.get("/audit?actor=sam%20sTAFF&format=csv");
    assert_eq!(by_sam.body.lines().count(), 2, "{}", by_sam.body);
    assert!(by_sam.body.contains("RoleChanged"));
    // Types in any letter case or as words.
    for typed in ["rolechanged", "Role changed"] {
        let res = sam.get(&format!(
            "/audit?event_type={}&format=csv",
            typed.replace(' ', "%20")
        ));
        assert_eq!(res.body.lines().count(), 2, "{typed}: {}", res.body);
    }
    let by_cli = sam.get("/audit?actor=the%20command%20line&format=csv");
    assert_eq!(by_cli.body.lines().count(), 3, "{}", by_cli.body);

    // Nothing matches: the page says which filters and offers to clear them.
    let none = sam.get("/audit?actor=nobody-at-all&event_type=RoleChanged");
    assert_eq!(none.status, 200);
    none.assert_contains("No events match event type “RoleChanged”, actor “nobody-at-all”")
        .assert_contains("<a href=\"/audit\">clear filters</a>");

    // Errors read without status codes.
    let missing = sam.get_htmx("/history/user/nobody");
    assert_eq!(missing.status, 404);
    assert!(!missing.body.contains("404"), "{}", missing.body);
    // A history reads as sentences by people.
    let h = sam.get(&format!("/history/user/{id}"));
    h.assert_contains("<strong>Role changed from student to staff</strong>")
        .assert_contains("by Sam Staff")
        .assert_contains("<strong>Account created: student</strong>")
        .assert_contains("by the command line")
        .assert_contains("<dt>Username</dt><dd>stu</dd>");
}
