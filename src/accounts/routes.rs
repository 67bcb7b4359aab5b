//! Sign-in, sign-out, the user's own password, and the admins' accounts pages.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use tera::Context;
use uuid::Uuid;

use super::decider::{AccountCommand, Role};
use super::passwords::Password;
use super::service::{self, NewAccount};
use super::AccountError;
use super::{queries, sessions, Viewer};
use crate::es::store;
use crate::web::form::{Fields, FormErrors};
use crate::web::paging::{PageParams, Paging};
use crate::web::render::{render_status, state};
use crate::web::{command_context, flash_redirect, render, AppError, AppState};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(home)
        .service(web::scope("/login").service(login_form).service(login))
        .service(logout)
        .service(
            web::scope("/account")
                .service(account_page)
                .service(change_own_password)
                .service(choose_time_zone)
                .service(change_own_email),
        )
        .service(
            web::scope("/admin/accounts")
                .service(accounts_page)
                .service(create_account)
                .service(account_detail)
                .service(change_role)
                .service(reset_password)
                .service(set_active),
        );
}

/// The address a request came from, for the throttles (the peer: heyboss trusts no forwarding
/// header, since any client can send one).
pub fn client_ip(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// `/`: where the viewer starts (the sign-in page for a visitor).
#[get("/")]
async fn home(req: HttpRequest) -> HttpResponse {
    let to = match req.extensions().get::<Viewer>() {
        Some(v) => home_for(v.role),
        None => "/login",
    };
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// Where each role starts.
pub fn home_for(role: Role) -> &'static str {
    match role {
        Role::Student => "/enrollment",
        Role::Staff => "/enrollment/pipeline",
        Role::Analyst => "/threats/top/hash",
        Role::Admin => "/admin/accounts",
    }
}

#[get("")]
async fn login_form(req: HttpRequest) -> Result<HttpResponse, AppError> {
    render(
        &req,
        "accounts/login.html",
        "accounts/login.html",
        Context::new(),
    )
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

#[tracing::instrument(skip_all, fields(username = %form.username))]
#[post("")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let LoginForm { username, password } = form.into_inner();
    let client_ip = client_ip(&req);
    let old_token = req.cookie(sessions::COOKIE).map(|c| c.value().to_owned());
    let attempt_username = username.clone();
    let result = state
        .run(move |conn| -> Result<_, AccountError> {
            let user = service::authenticate(conn, &attempt_username, &password, &client_ip)?;
            // A new session id at every sign-in: a planted cookie is worthless.
            if let Some(old) = old_token {
                sessions::end(conn, &old)?;
            }
            Ok((user.role(), sessions::create(conn, user.id)?))
        })
        .await;
    match result {
        Ok((role, token)) => {
            tracing::info!("signed in");
            let secure = state.settings.secure_cookies;
            Ok(HttpResponse::SeeOther()
                .insert_header(("Location", home_for(role)))
                .insert_header(("HX-Redirect", home_for(role)))
                .cookie(
                    Cookie::build(sessions::COOKIE, token)
                        .path("/")
                        .http_only(true)
                        .secure(secure)
                        .same_site(SameSite::Lax)
                        .max_age(actix_web::cookie::time::Duration::hours(
                            sessions::LIFETIME_HOURS,
                        ))
                        .finish(),
                )
                .finish())
        }
        Err(e) => {
            let Some((status, message)) = e.refusal() else {
                return Err(e.into());
            };
            tracing::info!(reason = %message, "sign-in refused");
            let mut ctx = Context::new();
            ctx.insert("error", &message);
            ctx.insert("username", &username.chars().take(64).collect::<String>());
            render_status(
                &req,
                status,
                "accounts/login.html",
                "accounts/login.html",
                ctx,
            )
        }
    }
}

#[post("/logout")]
async fn logout(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if let Some(token) = req.cookie(sessions::COOKIE).map(|c| c.value().to_owned()) {
        state
            .db(move |conn| Ok(sessions::end(conn, &token)?))
            .await?;
    }
    let mut res = flash_redirect("/login", "success", "You are signed out.");
    res.add_removal_cookie(&Cookie::build(sessions::COOKIE, "").path("/").finish())
        .map_err(AppError::internal)?;
    Ok(res)
}

/// What a refused form of the account page had in it, shown again instead of what is stored.
#[derive(Default)]
struct Typed<'a> {
    email: Option<&'a str>,
    zone: Option<&'a str>,
}

/// The account page's context: the viewer, their time zone choice and email address. Every
/// form of the page is in it, so a refused one re-renders the page with the other forms as
/// they were and its own fields as typed (`typed`).
async fn account_context(
    req: &HttpRequest,
    viewer: &Viewer,
    typed: Typed<'_>,
) -> Result<Context, AppError> {
    let mut ctx = Context::new();
    ctx.insert("me", viewer);
    let zones: Vec<&str> = crate::web::format::zone_names().collect();
    let zone = match typed.zone.map(str::trim) {
        Some("") => None,
        Some(z) => Some(z.to_owned()),
        None => viewer.time_zone.map(|z| z.name().to_owned()),
    };
    // A zone sent that the list lacks (refused) is shown as sent, chosen, so the user sees it.
    if let Some(z) = zone.as_deref().filter(|z| !zones.contains(z)) {
        ctx.insert("other_zone", z);
    }
    ctx.insert("my_zone", &zone);
    ctx.insert("campus_zone", state(req).settings.time_zone.name());
    ctx.insert("zones", &zones);
    let me = viewer.clone();
    let stored = state(req)
        .query(move |conn| queries::get(conn, &me, me.user_id))
        .await?
        .email;
    ctx.insert("email", typed.email.unwrap_or(&stored));
    ctx.insert("stored_email", &stored);
    Ok(ctx)
}

#[get("")]
async fn account_page(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let ctx = account_context(&req, &viewer, Typed::default()).await?;
    render(
        &req,
        "accounts/account.html",
        "accounts/_password_form.html",
        ctx,
    )
}

#[derive(Deserialize)]
struct OwnEmailForm {
    email: String,
    command_id: Option<String>,
}

/// The own-email form's one field.
const EMAIL_FIELDS: Fields = &[("address", "Email address")];

/// `/account/email`: the address notifications are emailed to (empty: none).
#[post("/email")]
async fn change_own_email(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<OwnEmailForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let parsed = service::parse_email(&form.email);
    let result = match parsed {
        Ok(email) => {
            let ctx = command_context(&req, &viewer, form.command_id.as_deref());
            let (store, id) = (state(&req).store.clone(), viewer.user_id);
            let command = AccountCommand::ChangeEmail { email };
            state(&req)
                .run(move |conn| service::execute(conn, &store, &ctx, id, command))
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(flash_redirect(
            "/account",
            "success",
            "Your email address is changed.",
        )),
        Err(e) => match e.refusal() {
            Some((status, message)) => {
                let typed = Typed {
                    email: Some(&form.email),
                    zone: None,
                };
                let mut ctx = account_context(&req, &viewer, typed).await?;
                beside_or_above(
                    &mut ctx,
                    FormErrors::new("email", EMAIL_FIELDS, "Your email address is not changed"),
                    "address",
                    (status, message),
                    "email_error",
                );
                render_status(
                    &req,
                    status,
                    "accounts/account.html",
                    "accounts/account.html",
                    ctx,
                )
            }
            None => Err(e.into()),
        },
    }
}

/// A one-field form's refusal: a mistake in the value (422) beside the field, anything else
/// (a conflict, a reused key) at the top of the form, as `above`.
fn beside_or_above(
    ctx: &mut Context,
    mut errors: FormErrors,
    field: &'static str,
    (status, message): (StatusCode, String),
    above: &str,
) {
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        errors.add(field, message);
        errors.insert(ctx);
    } else {
        ctx.insert(above, &message);
    }
}

#[derive(Deserialize)]
struct OwnPasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// The own-password form's fields, in its order.
const PASSWORD_FIELDS: Fields = &[
    ("current", "Current password"),
    ("new", "New password"),
    ("confirm", "New password again"),
];

#[post("/password")]
async fn change_own_password(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<OwnPasswordForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    // The page again with the other forms as they were (passwords are never sent back).
    let (r, v) = (&req, &viewer);
    let refuse = move |status: StatusCode, message: Option<String>, errors: Option<FormErrors>| async move {
        let mut ctx = account_context(r, v, Typed::default()).await?;
        if let Some(m) = message {
            ctx.insert("error", &m);
        }
        if let Some(e) = errors {
            e.insert(&mut ctx);
        }
        render_status(
            r,
            status,
            "accounts/account.html",
            "accounts/_password_form.html",
            ctx,
        )
    };
    let mut errors = FormErrors::new("password", PASSWORD_FIELDS, "Your password is not changed");
    if form.current_password.is_empty() {
        errors.add("current", "give your current password");
    }
    let new = errors.check(
        "new",
        Password::parse(&form.new_password)
            .map_err(|m| format!("the new password is not acceptable: {m}")),
    );
    if form.new_password != form.confirm_password {
        errors.add("confirm", "the new password and its confirmation differ");
    }
    let (store, client_ip, me) = (state(&req).store.clone(), client_ip(&req), viewer.clone());
    let Some(new) = new.filter(|_| errors.is_empty()) else {
        // The current password is checked too (throttled as ever), so that every mistake shows.
        let current = form.current_password.clone();
        if !current.is_empty() {
            let checked = state(&req)
                .run(move |conn| service::check_current_password(conn, &me, &current, &client_ip))
                .await;
            match checked {
                Ok(()) => {}
                Err(AccountError::WrongCurrentPassword) => {
                    errors.add("current", AccountError::WrongCurrentPassword)
                }
                Err(e) => match e.refusal() {
                    Some((status, message)) => return refuse(status, Some(message), None).await,
                    None => return Err(e.into()),
                },
            }
        }
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, None, Some(errors)).await;
    };
    let ctx = command_context(&req, &viewer, None);
    let changed = state(&req)
        .run(move |conn| {
            service::change_own_password(
                conn,
                &store,
                &ctx,
                &me,
                &form.current_password,
                &new,
                &client_ip,
            )
        })
        .await;
    match changed {
        Ok(()) => Ok(flash_redirect(
            "/account",
            "success",
            "Your password is changed. Your other sessions have been signed out.",
        )),
        Err(AccountError::WrongCurrentPassword) => {
            errors.add("current", AccountError::WrongCurrentPassword);
            refuse(StatusCode::UNPROCESSABLE_ENTITY, None, Some(errors)).await
        }
        Err(e) => match e.refusal() {
            Some((status, message)) => refuse(status, Some(message), None).await,
            None => Err(e.into()),
        },
    }
}

#[derive(Deserialize)]
struct TimeZoneForm {
    time_zone: String,
    command_id: Option<String>,
}

/// The time zone form's one field.
const ZONE_FIELDS: Fields = &[("zone", "Time zone")];

/// `POST /account/time-zone`: the zone the viewer reads times in (empty: the campus default).
#[post("/time-zone")]
async fn choose_time_zone(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<TimeZoneForm>,
) -> Result<HttpResponse, AppError> {
    // The page again with the zone as sent and the other forms as they were.
    let (r, v, sent) = (&req, &viewer, form.time_zone.as_str());
    let refuse = move |status: StatusCode, message: String| async move {
        let typed = Typed {
            email: None,
            zone: Some(sent),
        };
        let mut ctx = account_context(r, v, typed).await?;
        beside_or_above(
            &mut ctx,
            FormErrors::new("tz", ZONE_FIELDS, "Your time zone is not changed"),
            "zone",
            (status, message),
            "zone_error",
        );
        render_status(
            r,
            status,
            "accounts/account.html",
            "accounts/account.html",
            ctx,
        )
    };
    let zone = match form.time_zone.trim() {
        "" => None,
        name => match crate::web::format::parse_zone(name) {
            Ok(z) => Some(z),
            Err(m) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, m).await,
        },
    };
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let (store, id) = (state(&req).store.clone(), viewer.user_id);
    let command = AccountCommand::ChooseTimeZone { zone };
    match state(&req)
        .run(move |conn| service::execute(conn, &store, &ctx, id, command))
        .await
    {
        Ok(_) => Ok(flash_redirect(
            "/account",
            "success",
            &format!(
                "Times are now shown in {}.",
                zone.map_or("the campus time zone", |z| z.name())
            ),
        )),
        Err(e) => match e.refusal() {
            Some((status, message)) => refuse(status, message).await,
            None => Err(e.into()),
        },
    }
}

/// The accounts page's query: a search of usernames and names, and the list's page and sort.
#[derive(Debug, Default, Deserialize)]
struct AccountsQuery {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    page: PageParams,
}

#[get("")]
async fn accounts_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<AccountsQuery>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    accounts_listing(
        &req,
        viewer,
        query.into_inner(),
        Context::new(),
        StatusCode::OK,
    )
    .await
}

async fn accounts_listing(
    req: &HttpRequest,
    viewer: Viewer,
    query: AccountsQuery,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let search = crate::text::check("search", &query.q, 100, crate::text::Lines::One)
        .map_err(AppError::Unprocessable)?;
    let mut paging = Paging::parse(queries::ACCOUNT_LIST, &query.page);
    let s = search.clone();
    let (users, total, paging) = state(req)
        .query(move |conn| {
            let (users, total) = queries::search_for_admin(conn, &viewer, &s, &mut paging)?;
            Ok((users, total, paging))
        })
        .await?;
    let pager = paging.pager(
        total,
        users.len(),
        "/admin/accounts",
        &[("q", search.clone())],
        "account-list",
    );
    ctx.insert("users", &users);
    ctx.insert("pager", &pager);
    ctx.insert("search", &search);
    ctx.insert("roles", &Role::ALL.map(Role::as_str));
    render_status(
        req,
        status,
        "accounts/admin_list.html",
        "accounts/_account_table.html",
        ctx,
    )
}

#[derive(Deserialize)]
struct CreateAccountForm {
    username: String,
    display_name: String,
    email: String,
    role: String,
    password: String,
}

/// The admins' account form's fields, in its order.
const NEW_ACCOUNT_FIELDS: Fields = &[
    ("username", "Username"),
    ("name", "Name"),
    ("email", "Email"),
    ("role", "Role"),
    ("password", "Initial password"),
];

#[post("")]
async fn create_account(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<CreateAccountForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let f = form.into_inner();
    let mut errors = FormErrors::new("new", NEW_ACCOUNT_FIELDS, "The account was not created");
    let account = NewAccount::check(
        &mut errors,
        &f.username,
        &f.display_name,
        &f.email,
        &f.role,
        &f.password,
    );
    let username = f.username.clone();
    let errors = state(&req)
        .query(move |conn| {
            NewAccount::check_free(conn, &mut errors, &username)?;
            Ok(errors)
        })
        .await?;
    let result = match errors.finish(account) {
        Ok(account) => {
            let meta = crate::web::metadata(&req, &viewer);
            let store = state(&req).store.clone();
            state(&req)
                .run(move |conn| service::register(conn, &store, meta, account, |_, _| Ok(())))
                .await
                .map_err(Err)
        }
        Err(errors) => Err(Ok(errors)),
    };
    let mut ctx = Context::new();
    match result {
        Ok(_) => {
            return Ok(flash_redirect(
                "/admin/accounts",
                "success",
                &format!("Account {} created.", f.username.trim()),
            ))
        }
        Err(Ok(errors)) => errors.insert(&mut ctx),
        Err(Err(e)) if e.refusal().is_none() => return Err(e.into()),
        Err(Err(e)) => ctx.insert("error", &e.to_string()),
    }
    ctx.insert("form", &serde_json::json!({
        "username": f.username, "display_name": f.display_name, "email": f.email, "role": f.role,
    }));
    accounts_listing(
        &req,
        viewer,
        AccountsQuery::default(),
        ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[get("/{id}")]
async fn account_detail(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let id = parse_id(&path)?;
    detail_listing(&req, viewer, id, Context::new(), StatusCode::OK).await
}

/// An account's page for the admins; `ctx` may hold a refused form's mistakes.
async fn detail_listing(
    req: &HttpRequest,
    viewer: Viewer,
    id: Uuid,
    mut ctx: Context,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    let (user, history, session_count) = state(req)
        .db(move |conn| {
            let user = queries::get(conn, &viewer, id)?;
            let history = store::load_stream(
                conn,
                <super::Account as crate::es::Decider>::STREAM_TYPE,
                &id.to_string(),
            )?;
            let history = crate::ops::describe::history(conn, &history)?;
            Ok((user, history, sessions::count_for(conn, id)?))
        })
        .await?;
    ctx.insert("user", &user);
    ctx.insert("history", &history);
    ctx.insert("session_count", &session_count);
    ctx.insert("roles", &Role::ALL.map(Role::as_str));
    render_status(
        req,
        status,
        "accounts/admin_detail.html",
        "accounts/admin_detail.html",
        ctx,
    )
}

/// The account page again with one form's refusal beside its one field.
async fn refuse_on_detail(
    req: &HttpRequest,
    viewer: Viewer,
    id: Uuid,
    (form, fields, field): (&str, Fields, &'static str),
    e: AccountError,
) -> Result<HttpResponse, AppError> {
    let Some((status, message)) = e.refusal() else {
        return Err(e.into());
    };
    let mut errors = FormErrors::new(form, fields, "Nothing was changed");
    errors.add(field, message);
    let mut ctx = Context::new();
    errors.insert(&mut ctx);
    detail_listing(req, viewer, id, ctx, status).await
}

const ROLE_FORM: (&str, Fields, &str) = ("account", &[("role", "Role")], "role");
const RESET_FORM: (&str, Fields, &str) = ("reset", &[("password", "New password")], "password");

fn parse_id(raw: &str) -> Result<Uuid, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
    command_id: Option<String>,
}

#[post("/{id}/role")]
async fn change_role(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let id = parse_id(&path)?;
    let role = match Role::parse(&form.role) {
        Ok(role) => role,
        Err(m) => {
            let refused = AccountError::Invalid(m);
            return refuse_on_detail(&req, viewer, id, ROLE_FORM, refused).await;
        }
    };
    let result = run_account_command(
        &req,
        &viewer,
        id,
        AccountCommand::ChangeRole { role },
        form.command_id.as_deref(),
        &format!("Role changed to {role}."),
    )
    .await;
    match result {
        Err(e) => refuse_on_detail(&req, viewer, id, ROLE_FORM, e).await,
        done => done.map_err(AppError::from),
    }
}

#[derive(Deserialize)]
struct ResetForm {
    new_password: String,
}

#[post("/{id}/password")]
async fn reset_password(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let id = parse_id(&path)?;
    let password = match Password::parse(&form.new_password) {
        Ok(p) => p,
        Err(m) => {
            let refused = AccountError::Invalid(format!("the new password is not acceptable: {m}"));
            return refuse_on_detail(&req, viewer, id, RESET_FORM, refused).await;
        }
    };
    let ctx = command_context(&req, &viewer, None);
    let store = state(&req).store.clone();
    let keep = (id == viewer.user_id).then(|| viewer.session_digest.clone());
    state(&req)
        .db(move |conn| {
            Ok(service::set_password(
                conn,
                &store,
                &ctx,
                id,
                &password,
                true,
                keep.as_deref(),
            )?)
        })
        .await?;
    Ok(flash_redirect(
        &format!("/admin/accounts/{id}"),
        "success",
        "Password reset. The user's sessions have been ended.",
    ))
}

#[derive(Deserialize)]
struct ActiveForm {
    active: String,
    command_id: Option<String>,
}

#[post("/{id}/active")]
async fn set_active(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
    form: web::Form<ActiveForm>,
) -> Result<HttpResponse, AppError> {
    viewer.require(Role::Admin)?;
    let id = parse_id(&path)?;
    if id == viewer.user_id {
        return Err(AppError::Unprocessable(
            "You cannot deactivate your own account.".into(),
        ));
    }
    let (command, message) = match form.active.as_str() {
        "true" => (AccountCommand::Reactivate, "Account reactivated."),
        "false" => (
            AccountCommand::Deactivate,
            "Account deactivated; its sessions have been ended.",
        ),
        _ => return Err(AppError::BadRequest("active must be true or false".into())),
    };
    run_account_command(
        &req,
        &viewer,
        id,
        command,
        form.command_id.as_deref(),
        message,
    )
    .await
    .map_err(AppError::from)
}

async fn run_account_command(
    req: &HttpRequest,
    viewer: &Viewer,
    id: Uuid,
    command: AccountCommand,
    command_id: Option<&str>,
    message: &str,
) -> Result<HttpResponse, AccountError> {
    let ctx = command_context(req, viewer, command_id);
    let store = state(req).store.clone();
    state(req)
        .run(move |conn| service::execute(conn, &store, &ctx, id, command))
        .await?;
    Ok(flash_redirect(
        &format!("/admin/accounts/{id}"),
        "success",
        message,
    ))
}
