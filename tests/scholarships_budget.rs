//! The budget invariant under concurrency: many award commands at once at one fund whose budget
//! fits only some of them. The awarded total never exceeds the budget, equals the sum of the
//! awards that succeeded, and every loser is told why.

mod common;
mod scholarships_support;

use std::sync::{Arc, Barrier};

use common::{create_user, Client, TestApp, PASSWORD};
use heyboss::es::{Actor, CommandContext, Metadata};
use heyboss::scholarships::commands::{Amount, Decision, FundCommand};
use scholarships_support::*;

const COMMANDS: usize = 60;

#[test]
fn concurrent_awards_never_overspend_the_budget_and_losers_are_told_why() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    // $25,500 fits at most 25 awards of $1,000 (and some of the smaller ones below).
    let fund = create_open_fund(&mut staff, "Concurrency fund", "25,500.00");

    let applications: Vec<(uuid::Uuid, i64)> = (0..COMMANDS)
        .map(|i| {
            let student = register_without_password(&app, &format!("student{i:02}"), "student");
            let amount_cents = 100_000 - (i as i64 % 4) * 12_500; // $1,000, $875, $750, $625
            (apply_directly(&app, fund, student), amount_cents)
        })
        .collect();

    let session = staff.cookie("heyboss_session").unwrap();
    let csrf = staff.csrf.clone();
    let barrier = Arc::new(Barrier::new(COMMANDS));
    let handles: Vec<_> = applications
        .iter()
        .map(|&(application, cents)| {
            let (base, session, csrf, barrier) = (
                app.address.clone(),
                session.clone(),
                csrf.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let amount = format!("{}.{:02}", cents / 100, cents % 100);
                barrier.wait();
                let agent = ureq::AgentBuilder::new().redirects(0).build();
                let res = agent
                    .post(&format!(
                        "{base}/scholarships/applications/{application}/decision"
                    ))
                    .set("Cookie", &format!("heyboss_session={session}"))
                    .send_form(&[
                        ("csrf_token", csrf.as_str()),
                        ("outcome", "award"),
                        ("amount", amount.as_str()),
                        ("reason", "strong application"),
                    ]);
                let res = match res {
                    Ok(r) => r,
                    Err(ureq::Error::Status(_, r)) => r,
                    Err(e) => panic!("request failed: {e}"),
                };
                let status = res.status();
                (cents, status, res.into_string().unwrap())
            })
        })
        .collect();
    let results: Vec<(i64, u16, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    let winners: Vec<&(i64, u16, String)> = results.iter().filter(|r| r.1 == 303).collect();
    let losers: Vec<&(i64, u16, String)> = results.iter().filter(|r| r.1 != 303).collect();
    assert_eq!(winners.len() + losers.len(), COMMANDS);
    assert!(!winners.is_empty(), "some awards fit the budget");
    assert!(!losers.is_empty(), "the budget cannot fit every award");
    for (cents, status, body) in &losers {
        assert_eq!(*status, 422, "a loser gets 422, not {status}: {body}");
        let award = Amount::from_cents(*cents).to_string();
        assert!(
            body.contains(&format!(
                "the award of {award} exceeds the remaining budget $"
            )),
            "a loser is told why: {body}"
        );
    }

    let won: i64 = winners.iter().map(|r| r.0).sum();
    let granted: Vec<i64> = events_of(&app, "AwardGranted")
        .iter()
        .map(|(p, _)| p["amount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(granted.len(), winners.len(), "one AwardGranted per success");
    assert_eq!(granted.iter().sum::<i64>(), won);
    assert_eq!(awarded_cents(&app, fund), won);
    assert!(won <= 2_550_000, "awarded {won} cents exceeds the budget");
    // Every loser failed because the rest did not fit: less than the smallest award was left.
    assert!(
        2_550_000 - won < 62_500 + 1,
        "left {} cents unused",
        2_550_000 - won
    );

    // The report shows the same figures.
    let report = staff.get(&format!("/scholarships/funds/{fund}/report"));
    report.assert_contains(&format!(
        "<dd id=\"awarded\">{}</dd>",
        Amount::from_cents(won)
    ));
}

#[test]
fn concurrent_awards_through_the_store_also_respect_the_budget() {
    let app = TestApp::spawn();
    create_user(&app, "committee", "staff", PASSWORD);
    let mut staff = Client::new(&app);
    staff.login("committee", PASSWORD);
    let fund = create_open_fund(&mut staff, "Store fund", "10,000");
    let apps: Vec<uuid::Uuid> = (0..50)
        .map(|i| {
            let s = register_without_password(&app, &format!("s{i:02}"), "student");
            apply_directly(&app, fund, s)
        })
        .collect();
    let barrier = Arc::new(Barrier::new(apps.len()));
    let handles: Vec<_> = apps
        .iter()
        .map(|&application| {
            let (pool, store, barrier) = (
                app.state.pool.clone(),
                app.state.store.clone(),
                barrier.clone(),
            );
            let student = heyboss::scholarships::service::application_owner(
                &mut app.state.pool.get().unwrap(),
                application,
            )
            .unwrap()
            .1;
            std::thread::spawn(move || {
                // Fifty threads, fewer connections: each takes one after the start signal.
                barrier.wait();
                let mut conn = pool.get().unwrap();
                let ctx = CommandContext::new(Metadata::new(Actor::Cli));
                heyboss::scholarships::service::execute_fund(&mut conn, &store, fund, &ctx, |_| {
                    Ok(FundCommand::Decide {
                        application_id: application,
                        student_id: student,
                        decision: Decision::Award(Amount::from_cents(100_000)),
                        reason: "ok".into(),
                    })
                })
                .map_err(|e| e.to_string())
            })
        })
        .collect();
    let results: Vec<Result<_, String>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 10, "exactly ten $1,000 awards fit $10,000");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            e,
            "the award of $1,000.00 exceeds the remaining budget $0.00"
        );
    }
    assert_eq!(awarded_cents(&app, fund), 1_000_000);
}
