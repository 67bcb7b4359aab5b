//! `cargo bench --bench web`: one form command through the real HTTP stack, beside a GET of the
//! same page, at 1 and 8 clients, so that the cost of the frame (session lookup, CSRF check,
//! idempotency key, rendering, the pool) is known per request.
//!
//! Each client is a browser signed in once as an admin: it posts the role form of an account of
//! its own (`POST /admin/accounts/{id}/role`, CSRF token and a fresh `command_id`, answered 303:
//! one `RoleChanged` event, its projection and the key's outcome in one transaction), or loads
//! that account's page (`GET /admin/accounts/{id}`: the session, the account, its history
//! rendered). The floor beside them, measured in the same run: a static file through the same
//! server and middleware (`GET /static/app.css`), the least a request can cost here.
//!
//! Clients and server share this machine's cores. `HEYBOSS_BENCH_REQUESTS` (default 4000) per
//! row. `HEYBOSS_BENCH_CLIENTS` (default `1,8`) the client counts; `HEYBOSS_BENCH_SKIP_PAGE=1` leaves
//! out the page's row (to profile the command's alone); `HEYBOSS_BENCH_POOL` the server's pool size
//! (default 8). Each row also gives the CPU time per request of this process (server and clients)
//! and of the test database's PostgreSQL backends: on a shared machine the rate moves with what
//! else runs, what a request costs in CPU much less. Goal: p99 under 10 ms at 8 clients.

/// The binary's allocator, as `heyboss serve` runs on (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Read;
use std::time::{Duration, Instant};

use heyboss::testing::TestApp;

const PASSWORD: &str = "correct horse battery";
/// Accounts each client changes in turn.
const ACCOUNTS_PER_CLIENT: usize = 50;

fn csrf(body: &str) -> String {
    heyboss::testing::csrf_token(body).expect("a CSRF token")
}

/// A signed-in admin's browser, with the CSRF token of the account page it works on.
struct Browser {
    agent: ureq::Agent,
    base: String,
    /// The pages of the accounts this browser works on, taken in turn (so that each account's
    /// stream stays as short as a real one: a few events).
    pages: Vec<String>,
    token: String,
    turn: usize,
    /// Role changes made to each account so far.
    changes: Vec<usize>,
}

impl Browser {
    fn sign_in(base: &str, username: &str, accounts: &[uuid::Uuid]) -> Browser {
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let login = agent
            .get(&format!("{base}/login"))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let res = agent
            .post(&format!("{base}/login"))
            .send_form(&[
                ("csrf_token", &csrf(&login)),
                ("username", username),
                ("password", PASSWORD),
            ])
            .unwrap();
        assert_eq!(res.status(), 303, "{username} signs in");
        let pages: Vec<String> = accounts
            .iter()
            .map(|a| format!("{base}/admin/accounts/{a}"))
            .collect();
        // The CSRF token is the session's, the same on every page.
        let body = agent.get(&pages[0]).call().unwrap().into_string().unwrap();
        Browser {
            token: csrf(&body),
            agent,
            base: base.to_owned(),
            changes: vec![0; pages.len()],
            pages,
            turn: 0,
        }
    }

    fn get(&self, url: &str) {
        let res = self.agent.get(url).call().unwrap();
        assert_eq!(res.status(), 200);
        let mut sink = Vec::new();
        res.into_reader().read_to_end(&mut sink).unwrap();
    }

    fn request(&mut self, what: What) {
        self.turn += 1;
        let account = self.turn % self.pages.len();
        let page = self.pages[account].clone();
        match what {
            What::Static => self.get(&format!("{}/static/app.css", self.base)),
            What::Page => self.get(&page),
            What::Command => {
                // Each account starts as a student: staff, student, staff, ... as its turns come.
                let role = ["staff", "student"][self.changes[account] % 2];
                self.changes[account] += 1;
                let res = self
                    .agent
                    .post(&format!("{page}/role"))
                    .send_form(&[
                        ("csrf_token", &self.token),
                        ("role", role),
                        ("command_id", &uuid::Uuid::new_v4().to_string()),
                    ])
                    .unwrap();
                assert_eq!(res.status(), 303, "the command is recorded");
                // Read to the end, so that the connection goes back to the agent's pool.
                let mut sink = Vec::new();
                res.into_reader().read_to_end(&mut sink).unwrap();
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum What {
    Static,
    Page,
    Command,
}

#[derive(Clone, Copy)]
struct Row {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU time per request of this process (server and clients) and of the test database's
    /// PostgreSQL backends (the pool, the subscribers): what a request costs, less moved by
    /// other work on the machine than the rate is.
    app_cpu_ms: f64,
    pg_cpu_ms: f64,
}

/// CPU seconds (user + system) of a process, from /proc (clock ticks of 10 ms).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    (ticks(14).unwrap_or(0.0) + ticks(15).unwrap_or(0.0)) / 100.0
}

/// The backends of the test database, by pid.
fn backends(app: &TestApp) -> Vec<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = app.db.connect();
    let pids: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load(&mut conn)
    .unwrap_or_default();
    pids.into_iter().map(|p| p.pid.to_string()).collect()
}

fn cpu_now(app: &TestApp) -> (f64, f64) {
    let pg = backends(app).iter().map(|p| cpu_seconds(p)).sum();
    (cpu_seconds("self"), pg)
}

fn measure(app: &TestApp, browsers: &mut Vec<Browser>, what: What, requests: usize) -> Row {
    let clients = browsers.len();
    // Warm up: connections open, statements prepared.
    for b in browsers.iter_mut() {
        for _ in 0..20 {
            b.request(what);
        }
    }
    let (app_before, pg_before) = cpu_now(app);
    let started = Instant::now();
    let taken: Vec<Browser> = std::mem::take(browsers);
    let handles: Vec<_> = taken
        .into_iter()
        .map(|mut b| {
            std::thread::spawn(move || {
                let mut latencies = Vec::with_capacity(requests / clients);
                for _ in 0..requests / clients {
                    let t = Instant::now();
                    b.request(what);
                    latencies.push(t.elapsed());
                }
                (b, latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        let (b, latencies) = h.join().unwrap();
        browsers.push(b);
        all.extend(latencies);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (app_after, pg_after) = cpu_now(app);
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Row {
        per_second: all.len() as f64 / seconds,
        p50: at(0.50),
        p99: at(0.99),
        app_cpu_ms: (app_after - app_before) * 1000.0 / all.len() as f64,
        pg_cpu_ms: (pg_after - pg_before) * 1000.0 / all.len() as f64,
    }
}

fn main() {
    let requests: usize = std::env::var("HEYBOSS_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    // HEYBOSS_BENCH_POOL: the server's pool size (default 8, as every test app).
    let pool: Option<u32> = std::env::var("HEYBOSS_BENCH_POOL")
        .ok()
        .and_then(|s| s.parse().ok());
    let app = TestApp::spawn_with(|s| {
        if let Some(n) = pool {
            s.pool_size = n;
        }
    });
    println!(
        "cargo bench --bench web  ({requests} requests a row; pool of {}; clients and server on this machine's {} cores)",
        app.state.settings.pool_size,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:>8} {:>28} {:>10} {:>9} {:>9} {:>14} {:>12} {:>11}",
        "clients",
        "request",
        "req/s",
        "p50 ms",
        "p99 ms",
        "vs static req/s",
        "app CPU ms",
        "PG CPU ms"
    );
    let counts: Vec<usize> = std::env::var("HEYBOSS_BENCH_CLIENTS")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8]);
    let skip_page = std::env::var("HEYBOSS_BENCH_SKIP_PAGE").is_ok_and(|v| v == "1");
    for clients in counts {
        let mut browsers: Vec<Browser> = (0..clients)
            .map(|i| {
                let admin = format!("admin{clients}x{i}");
                app.create_account(&admin, "admin", PASSWORD);
                let accounts: Vec<uuid::Uuid> = (0..ACCOUNTS_PER_CLIENT)
                    .map(|a| {
                        app.create_account(&format!("member{clients}x{i}x{a}"), "student", PASSWORD)
                    })
                    .collect();
                Browser::sign_in(&app.address, &admin, &accounts)
            })
            .collect();
        let floor = measure(&app, &mut browsers, What::Static, requests);
        for (what, name) in [
            (What::Static, "GET /static/app.css (floor)"),
            (What::Page, "GET /admin/accounts/{id}"),
            (What::Command, "POST .../role (303)"),
        ] {
            if skip_page && what == What::Page {
                continue;
            }
            let row = if what == What::Static {
                floor
            } else {
                measure(&app, &mut browsers, what, requests)
            };
            println!(
                "{:>8} {:>28} {:>10.0} {:>9.2} {:>9.2} {:>14.2} {:>12.3} {:>11.3}",
                clients,
                name,
                row.per_second,
                row.p50.as_secs_f64() * 1000.0,
                row.p99.as_secs_f64() * 1000.0,
                row.per_second / floor.per_second,
                row.app_cpu_ms,
                row.pg_cpu_ms
            );
        }
    }
    println!("goal: p99 under 10 ms at 8 clients for the page and the command");
}
