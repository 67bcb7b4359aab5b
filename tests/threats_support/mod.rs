//! The two ways the threat reports can run, for tests that must hold in both: inline (in the
//! sensor batch's transaction, the default) and delayed (`HEYBOSS_CATCHUP_PROJECTIONS=threat_hits`,
//! the talk's "delay the writes to the report"). A test body is a function of the mode; the
//! `in_both_modes!` macro makes an inline and a delayed test of it.
#![allow(dead_code)]

use std::time::Duration;

use crate::common::TestApp;

/// The projection that may be delayed.
pub const REPORTS: &str = "threat_hits";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reports {
    Inline,
    Delayed,
}

impl Reports {
    /// The application with the reports run this way (and its catch-up subscribers running).
    pub fn spawn(self) -> TestApp {
        TestApp::spawn_with(|s| self.configure(s))
    }

    pub fn configure(self, settings: &mut heyboss::web::Settings) {
        if self == Reports::Delayed {
            settings.catch_up_projections = vec![REPORTS.to_owned()];
        }
    }

    /// Wait until the reports have applied every event committed so far (nothing to wait for
    /// inline): what a user sees once the lag is zero.
    #[track_caller]
    pub fn settle(self, app: &TestApp) {
        if self == Reports::Inline {
            return;
        }
        let mut conn = app.state.pool.get().unwrap();
        let head = heyboss::es::store::head_position(&mut conn).unwrap();
        let reached =
            heyboss::es::subscriber::wait_for(&mut conn, REPORTS, head, Duration::from_secs(60))
                .unwrap();
        assert!(reached, "the delayed reports caught up within a minute");
    }
}

/// `in_both_modes!(body)` for `fn body(reports: Reports)`: a module `body` with the tests
/// `inline` and `delayed`.
#[macro_export]
macro_rules! in_both_modes {
    ($($body:ident),+ $(,)?) => {$(
        mod $body {
            #[test]
            fn inline() {
                super::$body($crate::threats_support::Reports::Inline)
            }
            #[test]
            fn delayed() {
                super::$body($crate::threats_support::Reports::Delayed)
            }
        }
    )+};
}
