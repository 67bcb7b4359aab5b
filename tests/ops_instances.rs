//! Two instances of the application on two ports against one database, under concurrent
//! commands: sessions work on both, no update is lost, and one instance at a time runs a
//! subscriber (advisory lock), each event handled once.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Client, PASSWORD};
use diesel::prelude::*;
use heyboss::accounts::{service, NewAccount};
use heyboss::es::{shadow, Actor, Metadata};
use heyboss::startup::Application;
use heyboss::testing::TestDatabase;
use heyboss::web::Settings;

struct Instance {
    address: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn spawn(url: &str) -> Instance {
        let mut settings = Settings::from_env(url.to_owned());
        settings.bind = "127.0.0.1:0".into();
        settings.pool_size = 6;
        settings.templates_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        settings.static_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).expect("the application starts");
                tx.send((app.port(), app.server_handle())).unwrap();
                app.run_until_stopped().await.unwrap();
            });
        });
        let (port, handle) = rx.recv().unwrap();
        Instance {
            address: format!("http://127.0.0.1:{port}"),
            handle,
            thread: Some(thread),
        }
    }

    fn client(&self) -> Client {
        Client::new_at(&self.address)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        let _ =
            std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)))
                .join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn register(conn: &mut PgConnection, username: &str, role: &str) -> uuid::Uuid {
    let store = heyboss::startup::event_store();
    let account = NewAccount::parse(username, "", "", role, PASSWORD).unwrap();
    service::register(conn, &store, Metadata::new(Actor::Cli), account, |_, _| {
        Ok(())
    })
    .unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn two_instances_share_sessions_lose_no_update_and_run_each_subscriber_once() {
    let db = TestDatabase::new();
    let a = Instance::spawn(&db.url);
    let b = Instance::spawn(&db.url);
    let mut conn = db.connect();
    register(&mut conn, "boss", "admin");
    let target = register(&mut conn, "stu", "student");

    // A session made on one instance works on the other.
    let mut browser = a.client();
    browser.login("boss", PASSWORD);
    browser.base = b.address.clone();
    let page = browser.get("/account");
    assert_eq!(page.status, 200);
    page.assert_contains("boss");

    // Concurrent role changes of one account through both instances.
    let roles = ["staff", "analyst", "student", "admin"];
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let base = if t % 2 == 0 {
                a.address.clone()
            } else {
                b.address.clone()
            };
            std::thread::spawn(move || {
                let mut c = Client::new_at(&base);
                c.login("boss", PASSWORD);
                let mut statuses = Vec::new();
                for i in 0..8 {
                    let role = roles[(t + i) % roles.len()];
                    let res = c.post(&format!("/admin/accounts/{target}/role"), &[("role", role)]);
                    statuses.push(res.status);
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        statuses.iter().all(|s| [303, 409, 422].contains(s)),
        "{statuses:?}"
    );
    let acknowledged = statuses.iter().filter(|&&s| s == 303).count() as i64;
    assert!(acknowledged > 0);

    // Every acknowledged command is one event; versions have no hole; the read model agrees.
    let changes = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM events WHERE stream_id = '{target}' AND event_type = 'RoleChanged'"),
    );
    assert_eq!(changes, acknowledged);
    let max_version = count(
        &mut conn,
        &format!("SELECT max(stream_version) AS n FROM events WHERE stream_id = '{target}'"),
    );
    assert_eq!(max_version, 1 + acknowledged);
    let store = heyboss::startup::event_store();
    let users = store.projections().get("users").unwrap().clone();
    assert!(
        shadow::verify(&mut conn, None, users.as_ref(), false, 500, |_| {})
            .unwrap()
            .is_empty()
    );

    // Both instances run the notifications subscriber, but one session holds its lock...
    let holders = count(
        &mut conn,
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         AND classid = 4242 AND objid::text::bigint = (hashtext('notifications')::bigint + 4294967296) % 4294967296",
    );
    assert_eq!(holders, 1);
    // ...and every role change (none by the user) is notified exactly once.
    let mut notified = 0;
    for _ in 0..400 {
        notified = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM notifications WHERE user_id = '{target}'"),
        );
        if notified >= acknowledged {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(200));
    let notified_later = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM notifications WHERE user_id = '{target}'"),
    );
    assert_eq!(notified, acknowledged);
    assert_eq!(notified_later, acknowledged);

    // Stop one instance: the other keeps (or takes over) the subscriber.
    drop(a);
    let mut c = b.client();
    c.login("boss", PASSWORD);
    let current: String = heyboss::schema::users::table
        .find(target)
        .select(heyboss::schema::users::role)
        .first(&mut conn)
        .unwrap();
    let next = if current == "staff" {
        "analyst"
    } else {
        "staff"
    };
    assert_eq!(
        c.post(&format!("/admin/accounts/{target}/role"), &[("role", next)])
            .status,
        303
    );
    let mut after = 0;
    for _ in 0..400 {
        after = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM notifications WHERE user_id = '{target}'"),
        );
        if after > acknowledged {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(after, acknowledged + 1);
}
