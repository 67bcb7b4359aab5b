//! Composing the application: state, middleware and every context's routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{get, web, App, HttpRequest, HttpResponse, HttpServer};
use diesel::RunQueryDsl;
use tera::Tera;

use crate::accounts::{self, Viewer};
use crate::db::{self, PgPool};
use crate::es::{EventStore, Projections};
use crate::web::{frame::frame, AppError, AppState, Settings};

/// Every projection of the application, in the order they run after an append.
pub fn projections() -> Projections {
    let p = Projections::new().with(accounts::projections::UsersProjection);
    crate::threats::projections(p)
}

/// The event store with every projection and every reactor (process manager) of the application.
pub fn event_store() -> EventStore {
    EventStore::new(projections())
}

pub fn load_templates(settings: &Settings) -> Result<Tera, tera::Error> {
    let glob = format!("{}/**/*.html", settings.templates_dir.display());
    let mut tera = Tera::new(&glob)?;
    tera.autoescape_on(vec![".html"]);
    crate::threats::register_filters(&mut tera);
    Ok(tera)
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
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
        let state = AppState {
            pool,
            store: event_store(),
            templates: Arc::new(templates),
            settings: Arc::new(settings),
        };
        let server = run(listener, state.clone())?;
        Ok(Application {
            port,
            server,
            state,
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
        self.server.await
    }
}

fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let static_dir = state.settings.static_dir.clone();
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::FormConfig::default().limit(256 * 1024))
            .wrap(from_fn(frame))
            .service(actix_files::Files::new("/static", &static_dir).prefer_utf8(true))
            .service(healthz)
            .service(home)
            .configure(accounts::routes)
            .configure(crate::threats::routes)
            .default_service(web::to(not_found))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

#[get("/")]
async fn home(req: HttpRequest) -> HttpResponse {
    let to = match actix_web::HttpMessage::extensions(&req).get::<Viewer>() {
        Some(v) => accounts::routes::home_for(v.role),
        None => "/login",
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

#[get("/healthz")]
async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let ok = web::block(move || -> bool {
        pool.get()
            .ok()
            .and_then(|mut c| diesel::sql_query("SELECT 1").execute(&mut c).ok())
            .is_some()
    })
    .await
    .unwrap_or(false);
    if ok {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok", "database": "ok"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "unavailable", "database": "unreachable"}))
    }
}
