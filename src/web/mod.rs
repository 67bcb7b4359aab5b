//! Web plumbing shared by every context: state, the request frame (ids, sessions, CSRF, errors,
//! security headers), rendering of pages and fragments, and small form helpers.

pub mod confirm;
pub mod csv;
pub mod edge;
pub mod error;
pub mod form;
pub mod format;
pub mod frame;
pub mod paging;
pub mod render;

use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use diesel::PgConnection;
use tera::Tera;

pub use error::AppError;
pub use render::{flash_redirect, is_htmx, render, Flash};

use crate::accounts::Viewer;
use crate::db::{NoConnection, PgPool};
use crate::es::{Actor, CommandContext, EventStore, Metadata};
use crate::replicas::{self, Lsn, Replicas, Served};

/// What the application needs to know at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    pub pool_size: u32,
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    pub templates_dir: PathBuf,
    pub static_dir: PathBuf,
    /// Projections run by catch-up subscribers instead of inline (HEYBOSS_CATCHUP_PROJECTIONS,
    /// comma-separated names).
    pub catch_up_projections: Vec<String>,
    /// Run the catch-up subscribers in this process (HEYBOSS_SUBSCRIBERS=0 turns them off; only
    /// one instance at a time runs each, by an advisory lock).
    pub run_subscribers: bool,
    /// Email notifications (`ops::mail`): on when HEYBOSS_SMTP_URL is set.
    pub mail: Option<crate::ops::mail::MailSettings>,
    /// Streaming replicas for the read-only pages (HEYBOSS_REPLICA_URL, comma-separated).
    pub replica_urls: Vec<String>,
    /// The campus time zone, for viewers who chose none (HEYBOSS_TIMEZONE, an IANA name).
    pub time_zone: chrono_tz::Tz,
}

impl Settings {
    /// From the environment: HEYBOSS_BIND, HEYBOSS_POOL_SIZE, HEYBOSS_SECURE_COOKIES, HEYBOSS_HOME,
    /// HEYBOSS_TIMEZONE (an unknown zone name is refused at start by `Settings::check`).
    pub fn from_env(database_url: String) -> Settings {
        let home = std::env::var("HEYBOSS_HOME")
            .map(PathBuf::from)
            .ok()
            .or_else(|| {
                let cwd = std::env::current_dir().ok()?;
                cwd.join("templates").is_dir().then_some(cwd)
            })
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        Settings {
            bind: std::env::var("HEYBOSS_BIND").unwrap_or_else(|_| "127.0.0.1:8080".into()),
            database_url,
            pool_size: std::env::var("HEYBOSS_POOL_SIZE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(16),
            secure_cookies: std::env::var("HEYBOSS_SECURE_COOKIES")
                .is_ok_and(|v| v == "1" || v == "true"),
            templates_dir: home.join("templates"),
            static_dir: home.join("static"),
            catch_up_projections: std::env::var("HEYBOSS_CATCHUP_PROJECTIONS")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            run_subscribers: !std::env::var("HEYBOSS_SUBSCRIBERS").is_ok_and(|v| v == "0"),
            mail: crate::ops::mail::MailSettings::from_env(),
            replica_urls: std::env::var("HEYBOSS_REPLICA_URL")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            time_zone: campus_zone().ok().flatten().unwrap_or(format::DEFAULT_ZONE),
        }
    }

    /// What start-up refuses in the environment: a campus time zone that is not an IANA name.
    pub fn check() -> Result<(), String> {
        campus_zone().map(|_| ())
    }
}

/// HEYBOSS_TIMEZONE (HEYBOSS_TIME_ZONE is read too), if set.
fn campus_zone() -> Result<Option<chrono_tz::Tz>, String> {
    let Some(name) = ["HEYBOSS_TIMEZONE", "HEYBOSS_TIME_ZONE"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    else {
        return Ok(None);
    };
    format::parse_zone(&name)
        .map(Some)
        .map_err(|e| format!("HEYBOSS_TIMEZONE: {e}"))
}

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// Read replicas (none unless configured); see [`AppState::read`].
    pub replicas: Arc<Replicas>,
    pub store: EventStore,
    pub templates: Arc<Tera>,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Run blocking database work on the thread pool with a pooled connection.
    pub async fn db<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(work).await
    }

    /// Read through a context's queries (`QueryResult`: not found is a 404, a lost database a 503).
    pub async fn query<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.db(move |conn| Ok(work(conn)?)).await
    }

    /// Read-only work for a page that may be served by a read replica: the report pages, the
    /// audit log, histories and CSV exports. It goes to a replica that has replayed this browser's
    /// last write (the `heyboss_wrote` cookie), else to the primary. Work that fails on a replica
    /// (a query cancelled by recovery, a replica stopped mid-query) runs again on the primary:
    /// it only reads, so running it twice changes nothing, and a stopped replica is never an
    /// error page.
    pub async fn read<T, E, F>(&self, req: &HttpRequest, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Clone + Send + 'static,
        T: Send + 'static,
        E: From<NoConnection> + Send + 'static,
    {
        if self.replicas.is_empty() {
            replicas::count(Served::PrimaryOnly);
            return self.run(work).await;
        }
        let wrote = req
            .cookie(replicas::WROTE_COOKIE)
            .and_then(|c| c.value().parse::<Lsn>().ok());
        let replicas = self.replicas.clone();
        let on_replica = work.clone();
        let answered = web::block(move || match replicas.checkout(wrote) {
            Ok(mut conn) => on_replica(&mut conn).map_err(|_| Served::PrimaryReplicaDown),
            Err(why) => Err(why),
        })
        .await
        .map_err(|_| NoConnection::Cancelled)?;
        match answered {
            Ok(v) => {
                replicas::count(Served::Replica);
                Ok(v)
            }
            Err(why) => {
                replicas::count(why);
                self.run(work).await
            }
        }
    }

    /// [`AppState::read`] for a context's queries (`QueryResult`).
    pub async fn read_query<T, F>(&self, req: &HttpRequest, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Clone + Send + 'static,
        T: Send + 'static,
    {
        self.read(req, move |conn| Ok::<T, AppError>(work(conn)?))
            .await
    }

    /// [`AppState::db`] for work that answers with its context's own error, so that a handler
    /// matches on what the service said (a refusal to show on the form) instead of nesting
    /// results.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut PgConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<NoConnection> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(NoConnection::from)?;
            work(&mut conn)
        })
        .await
        .map_err(|_| NoConnection::Cancelled)?
    }
}

/// A digest of a form post's path and fields (`edge::form_fingerprint`), set by the frame.
#[derive(Debug, Clone)]
pub struct FormFingerprint(pub String);

/// The id of the request, in every log line and in event metadata.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl FromRequest for Viewer {
    type Error = AppError;
    type Future = std::future::Ready<Result<Viewer, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<Viewer>()
                .cloned()
                .ok_or(AppError::Unauthenticated),
        )
    }
}

/// Metadata for a command issued by the viewer in this request.
pub fn metadata(req: &HttpRequest, viewer: &Viewer) -> Metadata {
    let meta = Metadata::new(Actor::User(viewer.user_id));
    match req.extensions().get::<RequestId>() {
        Some(id) => meta.with_request_id(id.0.clone()),
        None => meta,
    }
}

/// A command context with the form's idempotency key (the hidden `command_id` field, one per
/// rendered form), bound to what the form asks for: a double-submitted form is applied once, and
/// the same key posted with other fields (a stale tab, the back button) is refused.
pub fn command_context(
    req: &HttpRequest,
    viewer: &Viewer,
    command_id: Option<&str>,
) -> CommandContext {
    let ctx = CommandContext::new(metadata(req, viewer));
    let ctx = match req.extensions().get::<FormFingerprint>() {
        Some(f) => ctx.fingerprint(f.0.clone()),
        None => ctx,
    };
    match command_id
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 64)
    {
        // Scoped to the user, so one user's key can never answer for another's command.
        Some(key) => ctx.idempotency_key(format!("{}:{key}", viewer.user_id)),
        None => ctx,
    }
}

/// A free-text form field (lines allowed) by the one rule of `crate::text`.
pub fn text_field(name: &str, value: &str, max_chars: usize) -> Result<String, AppError> {
    crate::text::check(name, value, max_chars, crate::text::Lines::Many)
        .map_err(AppError::Unprocessable)
}
