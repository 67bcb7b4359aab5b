//! The pool's pings: a connection in steady use is handed out without a `SELECT 1` round trip, and
//! a connection the server dropped is still found and replaced before it fails a second request.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use heyboss_es::db::{self, PoolOptions};

fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://localhost:5432/postgres".into())
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Query {
    #[diesel(sql_type = Text)]
    query: String,
}

fn backend(conn: &mut PgConnection) -> QueryResult<i32> {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .map(|p| p.pid)
}

/// The statement a backend ran last, as the server's activity view shows it.
fn last_statement(observer: &mut PgConnection, pid: i32) -> String {
    diesel::sql_query("SELECT query FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Query>(observer)
        .unwrap()
        .query
}

fn terminate(observer: &mut PgConnection, pid: i32) {
    diesel::sql_query("SELECT pg_terminate_backend($1, 5000)")
        .bind::<Integer, _>(pid)
        .execute(observer)
        .unwrap();
}

fn one_connection_pool(ping_interval: Duration) -> db::PgPool {
    let mut options = PoolOptions::new(1);
    options.ping_interval = ping_interval;
    db::pool_with(&server_url(), options).unwrap()
}

#[test]
fn a_connection_in_steady_use_is_not_pinged() {
    let pool = one_connection_pool(Duration::from_secs(60));
    let mut observer = db::connect(&server_url()).unwrap();
    let pid = backend(&mut pool.get().unwrap()).unwrap();
    for _ in 0..3 {
        let mut conn = pool.get().unwrap();
        assert_eq!(
            backend(&mut conn).unwrap(),
            pid,
            "the same connection again"
        );
        drop(conn);
        // Checked out again right after its last statement: that statement is still its last.
        let _conn = pool.get().unwrap();
        assert_eq!(
            last_statement(&mut observer, pid),
            "SELECT pg_backend_pid() AS pid"
        );
    }
}

#[test]
fn an_idle_connection_is_pinged_and_replaced_when_the_server_dropped_it() {
    let pool = one_connection_pool(Duration::from_millis(200));
    let mut observer = db::connect(&server_url()).unwrap();
    let dropped = backend(&mut pool.get().unwrap()).unwrap();
    terminate(&mut observer, dropped);
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = pool.get().unwrap();
    let now = backend(&mut conn).expect("a working connection");
    assert_ne!(now, dropped, "a new connection replaced the dropped one");
}

#[test]
fn a_connection_whose_statement_failed_is_pinged_before_it_is_used_again() {
    let pool = one_connection_pool(Duration::from_secs(60));
    let mut observer = db::connect(&server_url()).unwrap();
    let dropped = backend(&mut pool.get().unwrap()).unwrap();
    terminate(&mut observer, dropped);
    // Within the interval the pool trusts the connection: the first request after the server
    // dropped it fails (a 503 in the application) ...
    assert!(backend(&mut pool.get().unwrap()).is_err());
    // ... and that failure makes the pool ping it at the next check-out and replace it.
    let now = backend(&mut pool.get().unwrap()).expect("a working connection");
    assert_ne!(now, dropped);

    // A statement that fails on a good connection costs one ping, not the connection.
    let mut conn = pool.get().unwrap();
    assert!(diesel::sql_query("SELECT no_such_column")
        .execute(&mut conn)
        .is_err());
    drop(conn);
    let _conn = pool.get().unwrap();
    assert_eq!(last_statement(&mut observer, now), "SELECT 1");
}

#[test]
fn pooled_connections_plan_for_their_parameters_without_jit() {
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let pool = one_connection_pool(Duration::from_secs(1));
    let mut conn = pool.get().unwrap();
    let mut show = |name: &str| {
        diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
            .get_result::<Setting>(&mut conn)
            .unwrap()
            .value
    };
    assert_eq!(show("jit"), "off");
    assert_eq!(show("plan_cache_mode"), "force_custom_plan");
}
