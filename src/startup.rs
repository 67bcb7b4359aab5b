//! Composing the application: state, middleware and every context's routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use tera::Tera;

use crate::accounts;
use crate::context::{BoundedContext, NavEntry};
use crate::db::{self, PgPool};
use crate::es::subscriber::{ProjectionSubscriber, Runner, RunnerOptions, Subscriber};
use crate::es::{EventStore, Projections};
use crate::ops;
use crate::scholarships;
use crate::web::{frame::frame, AppError, AppState, Settings};

/// The bounded contexts of the application, each registered once; the order is the order of
/// their projections after an append and of their entries in the navigation bar.
pub fn contexts() -> Vec<Arc<dyn BoundedContext>> {
    vec![
        Arc::new(accounts::AccountsContext),
        Arc::new(crate::enrollment::EnrollmentContext),
        Arc::new(scholarships::ScholarshipsContext),
        Arc::new(crate::threats::ThreatsContext),
        Arc::new(ops::Operations),
    ]
}

/// Every projection of the application, in the order they run after an append.
pub fn projections() -> Projections {
    contexts()
        .iter()
        .flat_map(|c| c.projections())
        .fold(Projections::new(), Projections::with_arc)
}

/// The event store with every projection of the application. Projections named in
/// HEYBOSS_CATCHUP_PROJECTIONS run as catch-up subscribers.
pub fn event_store() -> EventStore {
    EventStore::new(projections())
        .with_catch_up(&Settings::from_env(String::new()).catch_up_projections)
}

/// What contexts register with operations: audit visibility rules and notification rules.
pub fn operations() -> ops::Registry {
    let mut registry = ops::Registry::new();
    for c in contexts() {
        registry.audit_scopes.extend(c.audit_scopes());
        registry.notification_rules.extend(c.notification_rules());
    }
    registry
}

/// The catch-up subscribers: every projection configured as catch-up, the notifications feed,
/// and the contexts' reactions to each other (process managers).
pub fn subscribers(
    store: &EventStore,
    registry: &ops::Registry,
    settings: &Settings,
) -> Vec<Arc<dyn Subscriber>> {
    let mut list: Vec<Arc<dyn Subscriber>> = store
        .projections()
        .catch_up()
        .map(|p| Arc::new(ProjectionSubscriber(p.clone())) as Arc<dyn Subscriber>)
        .collect();
    list.push(Arc::new(
        ops::notifications::NotificationsSubscriber::new(registry.notification_rules.clone())
            .with_mail(settings.mail.clone()),
    ));
    for c in contexts() {
        list.extend(c.subscribers(store));
    }
    list
}

/// The navigation bar's entries of every context, in the contexts' order.
pub fn navigation() -> &'static [NavEntry] {
    static NAV: std::sync::OnceLock<Vec<NavEntry>> = std::sync::OnceLock::new();
    NAV.get_or_init(|| {
        contexts()
            .iter()
            .flat_map(|c| c.navigation().iter().copied())
            .collect()
    })
}

/// Every context's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for c in contexts() {
        c.routes(cfg);
    }
}

pub fn load_templates(settings: &Settings) -> Result<Tera, tera::Error> {
    let glob = format!("{}/**/*.html", settings.templates_dir.display());
    let mut tera = Tera::new(&glob)?;
    tera.autoescape_on(vec![".html"]);
    // `{{ command_id() }}`: a fresh idempotency key for each form a page renders, so that two
    // forms of one page (or one form rendered twice) never share one (see `web::command_context`).
    tera.register_function(
        "command_id",
        |_: &std::collections::HashMap<String, tera::Value>| {
            Ok(tera::Value::String(uuid::Uuid::new_v4().to_string()))
        },
    );
    crate::threats::register_filters(&mut tera);
    crate::web::format::register(&mut tera);
    Ok(tera)
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The catch-up subscribers, stopped when the server stops.
    subscribers: Option<Runner>,
    /// The email outbox's sender (with the subscribers, when HEYBOSS_SMTP_URL is set).
    mailer: Option<ops::mail::Mailer>,
    /// Makes the event log's partitions ahead of the appends (the DEFAULT partition catches
    /// what arrives before them).
    partitions: heyboss_es::partitions::Keeper,
    /// Vacuums and analyzes the store's tables where autovacuum will not (`heyboss_es::upkeep`).
    upkeep: heyboss_es::upkeep::Periodic,
}

impl Application {
    /// Connect, migrate and bind (port 0 picks a free port, as tests do).
    pub fn build(
        settings: Settings,
    ) -> Result<Application, Box<dyn std::error::Error + Send + Sync>> {
        let pool = db::pool(&settings.database_url, settings.pool_size)?;
        db::migrate(&mut *pool.get()?)?;
        Self::build_with_pool(settings, pool)
    }

    pub fn build_with_pool(
        settings: Settings,
        pool: PgPool,
    ) -> Result<Application, Box<dyn std::error::Error + Send + Sync>> {
        let templates = load_templates(&settings)?;
        let listener = TcpListener::bind(&settings.bind)?;
        let port = listener.local_addr()?.port();
        let store = event_store().with_catch_up(&settings.catch_up_projections);
        store.projections().check_catch_up()?;
        let registry = operations();
        let subscribers = settings.run_subscribers.then(|| {
            Runner::start(
                &settings.database_url,
                subscribers(&store, &registry, &settings),
                RunnerOptions::default(),
            )
        });
        let mailer = match (&settings.mail, settings.run_subscribers) {
            (Some(mail), true) => Some(ops::mail::Mailer::start(pool.clone(), mail.clone())?),
            _ => None,
        };
        let replicas = Arc::new(crate::replicas::Replicas::connect(
            &settings.replica_urls,
            settings.pool_size,
        ));
        let partitions = heyboss_es::partitions::Keeper::start(
            settings.database_url.clone(),
            std::time::Duration::from_secs(60),
        );
        // Once a minute: autovacuum's own naptime.
        let upkeep = heyboss_es::upkeep::start(
            settings.database_url.clone(),
            std::time::Duration::from_secs(60),
        );
        let state = AppState {
            pool,
            replicas,
            store,
            templates: Arc::new(templates),
            settings: Arc::new(settings),
        };
        let server = run(listener, state.clone(), registry)?;
        Ok(Application {
            port,
            server,
            state,
            subscribers,
            mailer,
            partitions,
            upkeep,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(mut runner) = self.subscribers {
            runner.stop();
        }
        if let Some(mut mailer) = self.mailer {
            mailer.stop();
        }
        let mut partitions = self.partitions;
        partitions.stop();
        let mut upkeep = self.upkeep;
        upkeep.stop();
        result
    }
}

/// How long an idle connection stays open. actix-web's default of 5 s reset a connection that a
/// client reused 4.95 s after its previous request (the client cannot see the close in time).
/// Load balancers and proxies assume longer (60 s idle timeouts are common): 75 s outlasts them.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);

fn run(listener: TcpListener, state: AppState, registry: ops::Registry) -> std::io::Result<Server> {
    let static_dir = state.settings.static_dir.clone();
    let data = web::Data::new(state);
    let registry = web::Data::new(registry);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(registry.clone())
            .app_data(web::FormConfig::default().limit(256 * 1024))
            .wrap(from_fn(frame))
            .service(actix_files::Files::new("/static", &static_dir).prefer_utf8(true))
            .configure(routes)
            .default_service(web::to(not_found))
    })
    .keep_alive(KEEP_ALIVE)
    // Send each response as soon as it is written: with Nagle's algorithm on, a response written
    // in two parts (headers, then a file's body) waited for the client's delayed ACK, 40 ms a
    // request on a kept-alive connection (measured by `cargo bench --bench web`).
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .listen(listener)?
    .run();
    Ok(server)
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}
