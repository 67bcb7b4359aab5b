//! Scope: students see only their own applications, reviewers only those assigned to them and
//! never their own, the committee (staff) all of them. What one may not see answers 404.

mod common;
mod scholarships_support;

use common::{create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;

#[test]
fn students_see_only_their_own_applications() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bob = create_user(&app, "bob", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Scoped fund", "1000");
    let mut ada_c = Client::new(&app);
    ada_c.login("ada", PASSWORD);
    let mut bob_c = Client::new(&app);
    bob_c.login("bob", PASSWORD);
    for c in [&mut ada_c, &mut bob_c] {
        c.get("/scholarships");
        let res = c.post(
            &format!("/scholarships/funds/{fund}/apply"),
            &[("statement", "mine")],
        );
        assert_eq!(res.status, 303);
    }
    let (a, b) = (
        application_id(&app, fund, ada),
        application_id(&app, fund, bob),
    );
    staff.get("/scholarships/funds");
    staff.post(
        &format!("/scholarships/applications/{a}/decision"),
        &[
            ("outcome", "award"),
            ("amount", "300"),
            ("reason", "for ada only"),
        ],
    );

    assert_eq!(
        ada_c.get(&format!("/scholarships/applications/{a}")).status,
        200
    );
    let other = ada_c.get(&format!("/scholarships/applications/{b}"));
    assert_eq!(other.status, 404);
    assert!(!other.body.contains("bob"));
    // Bob's list shows his application only, and not Ada's award.
    let page = bob_c.get("/scholarships");
    assert_eq!(page.body.matches("/scholarships/applications/").count(), 1);
    assert!(page
        .body
        .contains(&format!("/scholarships/applications/{b}")));
    assert!(!page.body.contains("for ada only"));
    // Bob cannot answer Ada's award, nor review, nor reach staff pages.
    let res = bob_c.post(
        &format!("/scholarships/applications/{a}/award"),
        &[("response", "accept")],
    );
    assert_eq!(res.status, 404);
    assert_eq!(
        bob_c
            .get(&format!("/scholarships/applications/{a}/review"))
            .status,
        403
    );
    assert_eq!(
        bob_c.get(&format!("/scholarships/funds/{fund}")).status,
        403
    );
    assert_eq!(
        bob_c
            .get(&format!("/scholarships/funds/{fund}/report"))
            .status,
        403
    );
    assert_eq!(
        bob_c
            .get(&format!("/scholarships/funds/{fund}/report?format=csv"))
            .status,
        403
    );
    assert_eq!(bob_c.get("/scholarships/reviews").status, 403);
    // An unknown or malformed id is the same 404.
    assert_eq!(
        bob_c.get("/scholarships/applications/not-a-uuid").status,
        404
    );
    assert_eq!(
        bob_c
            .get(&format!(
                "/scholarships/applications/{}",
                uuid::Uuid::new_v4()
            ))
            .status,
        404
    );
}

#[test]
fn reviewers_see_only_what_is_assigned_and_never_their_own_application() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let rita = create_user(&app, "rita", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let bob = create_user(&app, "bob", "student", PASSWORD);
    // Sam applied as a student and later joined the staff.
    let sam = create_user(&app, "sam", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Review fund", "1000");
    for s in [ada, bob, sam] {
        apply_directly(&app, fund, s);
    }
    let (a, b, own) = (
        application_id(&app, fund, ada),
        application_id(&app, fund, bob),
        application_id(&app, fund, sam),
    );
    promote_to_staff(&app, sam);
    staff.get(&format!("/scholarships/funds/{fund}"));
    let assign = |c: &mut Client, app_id: uuid::Uuid, reviewer: uuid::Uuid| {
        c.post(
            &format!("/scholarships/applications/{app_id}/reviewers"),
            &[("reviewer_id", &reviewer.to_string())],
        )
    };
    assert_eq!(assign(&mut staff, a, rita).status, 303);
    assert_eq!(assign(&mut staff, a, sam).status, 303);
    assert_eq!(assign(&mut staff, b, sam).status, 303);
    // Nobody may be assigned their own application.
    let res = assign(&mut staff, own, sam);
    assert_eq!(res.status, 422);
    res.assert_contains("cannot review their own application");
    // Only staff may review.
    let res = assign(&mut staff, b, ada);
    assert_eq!(res.status, 422);
    res.assert_contains("Choose an active staff member");

    let mut rita_c = Client::new(&app);
    rita_c.login("rita", PASSWORD);
    let queue = rita_c.get("/scholarships/reviews");
    queue.assert_contains("To do (1)");
    assert!(queue
        .body
        .contains(&format!("/scholarships/applications/{a}/review")));
    assert!(!queue
        .body
        .contains(&format!("/scholarships/applications/{b}/review")));
    assert_eq!(
        rita_c
            .get(&format!("/scholarships/applications/{a}/review"))
            .status,
        200
    );
    assert_eq!(
        rita_c
            .get(&format!("/scholarships/applications/{b}/review"))
            .status,
        404
    );
    let res = rita_c.post(
        &format!("/scholarships/applications/{b}/review"),
        &[
            ("merit", "5"),
            ("need", "5"),
            ("statement", "5"),
            ("community", "5"),
            ("comment", ""),
        ],
    );
    assert_eq!(res.status, 404);
    assert_eq!(common::count_events(&app, "ReviewSubmitted"), 0);

    // Sam, now staff: reviews what is assigned, never sees his own application anywhere.
    let mut sam_c = Client::new(&app);
    sam_c.login("sam", PASSWORD);
    let queue = sam_c.get("/scholarships/reviews");
    queue.assert_contains("To do (2)");
    assert!(!queue.body.contains(&own.to_string()));
    let board = sam_c.get(&format!("/scholarships/funds/{fund}"));
    assert!(board.body.contains(&format!("app-{a}")));
    assert!(!board.body.contains(&format!("app-{own}")));
    assert_eq!(
        sam_c
            .get(&format!("/scholarships/applications/{own}/review"))
            .status,
        404
    );
    let res = sam_c.post(
        &format!("/scholarships/applications/{own}/decision"),
        &[("outcome", "award"), ("amount", "1000"), ("reason", "me")],
    );
    assert_eq!(res.status, 404);

    // The committee sees all of them.
    let board = staff.get(&format!("/scholarships/funds/{fund}"));
    for id in [a, b, own] {
        assert!(
            board.body.contains(&format!("app-{id}")),
            "committee sees {id}"
        );
        assert_eq!(
            staff
                .get(&format!("/scholarships/applications/{id}"))
                .status,
            200
        );
    }
}
