//! "Your application was decided": the student is told on their next page, through the
//! notifications feed (a catch-up subscriber).

mod common;
mod scholarships_support;

use std::time::Duration;

use common::{create_user, Client, TestApp, PASSWORD};
use scholarships_support::*;

#[test]
fn a_student_is_told_that_their_application_was_decided() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let ada = create_user(&app, "ada", "student", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Notice fund", "5000");
    let mut student = Client::new(&app);
    student.login("ada", PASSWORD);
    apply_and_award(&app, &mut staff, &mut student, fund, ada, "1,200");

    let mut page = String::new();
    for _ in 0..200 {
        page = student.get("/notifications").body;
        if page.contains("was decided") {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        page.contains(
            "Your scholarship application was decided: you are offered an award of $1,200.00."
        ),
        "{page}"
    );
    // The committee member is not told about the student's application.
    assert!(!staff.get("/notifications").body.contains("was decided"));
}
