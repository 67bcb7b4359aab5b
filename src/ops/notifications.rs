//! The notifications feed: a catch-up subscriber turns events into per-user notifications
//! (`notifications` table), which the user sees on their next page (a banner loaded with the
//! page) and on `/notifications`, with their unread count in the navigation. Contexts register
//! [`NotificationRule`]s in `startup::operations()`. A notice that asks something of its reader
//! (accept an award) names that action; the event doing it marks the notice read, so a banner
//! never asks for what is done. With mail on, each notice also goes to the outbox (`ops::mail`).

use std::sync::Arc;

use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use tera::Context;
use uuid::Uuid;

use crate::accounts::{AccountEvent, Viewer};
use crate::es::subscriber::{HandlerError, Subscriber};
use crate::es::RecordedEvent;
use crate::ops::mail::MailSettings;
use crate::schema::notifications;
use crate::web::paging::{Column, ListSpec, PageParams, Paging};
use crate::web::render::state;
use crate::web::{flash_redirect, is_htmx, render, AppError};

/// Something a user should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub user_id: Uuid,
    pub message: String,
    /// Where to look (a path of this site), or empty.
    pub link: String,
    /// What it asks the user to do (`award:<application id>`), or empty: marked read when a rule's
    /// [`NotificationRule::done`] reports it done.
    pub action: String,
}

impl Notice {
    pub fn new(user_id: Uuid, message: String, link: &str) -> Notice {
        Notice {
            user_id,
            message,
            link: link.to_owned(),
            action: String::new(),
        }
    }

    /// The notice asks for `action`, until it is done.
    pub fn asking(mut self, action: String) -> Notice {
        self.action = action;
        self
    }
}

/// Which events notify whom.
pub trait NotificationRule: Send + Sync + 'static {
    /// The event types it looks at.
    fn handles(&self) -> &'static [&'static str];
    /// The notices for one event (the connection is for lookups, in the subscriber's transaction).
    fn notify(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<Notice>, HandlerError>;
    /// The (user, action) pairs an event does: that user's unread notices asking it are marked
    /// read. Its event types must be among [`NotificationRule::handles`].
    fn done(&self, _event: &RecordedEvent) -> Result<Vec<(Uuid, String)>, HandlerError> {
        Ok(vec![])
    }
}

/// Account changes that someone else made to your account.
pub struct AccountNotices;

impl NotificationRule for AccountNotices {
    fn handles(&self) -> &'static [&'static str] {
        &["RoleChanged", "PasswordChanged", "UserReactivated"]
    }

    fn notify(
        &self,
        _: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<Vec<Notice>, HandlerError> {
        let Ok(user_id) = Uuid::parse_str(&event.stream_id) else {
            return Ok(vec![]);
        };
        // Nobody needs telling what they did themselves.
        if event.actor().and_then(|a| a.user_id()) == Some(user_id) || event.stream_type != "user" {
            return Ok(vec![]);
        }
        let message = match event.decode::<AccountEvent>()? {
            AccountEvent::RoleChanged { from, to } => {
                format!("An administrator changed your role from {from} to {to}.")
            }
            AccountEvent::PasswordChanged {
                reset_by_admin: true,
            } => "An administrator reset your password.".to_owned(),
            AccountEvent::UserReactivated {} => "Your account was reactivated.".to_owned(),
            _ => return Ok(vec![]),
        };
        Ok(vec![Notice::new(user_id, message, "/account")])
    }
}

/// The catch-up subscriber writing notifications.
pub struct NotificationsSubscriber {
    rules: Vec<Arc<dyn NotificationRule>>,
    /// Every type some rule looks at: the only events read (a sensor ingest appends thousands a
    /// second that no rule wants).
    handled: Vec<&'static str>,
    /// Mail on: every notice also goes to the outbox.
    mail: Option<MailSettings>,
}

impl NotificationsSubscriber {
    pub fn new(rules: Vec<Arc<dyn NotificationRule>>) -> NotificationsSubscriber {
        let mut handled: Vec<&'static str> = rules
            .iter()
            .flat_map(|r| r.handles().iter().copied())
            .collect();
        handled.sort_unstable();
        handled.dedup();
        NotificationsSubscriber {
            rules,
            handled,
            mail: None,
        }
    }

    pub fn with_mail(mut self, mail: Option<MailSettings>) -> NotificationsSubscriber {
        self.mail = mail;
        self
    }

    fn write(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
        notice: &Notice,
    ) -> Result<(), HandlerError> {
        let id: Option<i64> = diesel::insert_into(notifications::table)
            .values((
                notifications::user_id.eq(notice.user_id),
                notifications::position.eq(event.position),
                notifications::message.eq(&notice.message),
                notifications::link.eq(&notice.link),
                notifications::action.eq(&notice.action),
                notifications::created_at.eq(event.recorded_at),
            ))
            .on_conflict_do_nothing()
            .returning(notifications::id)
            .get_result(conn)
            .optional()?;
        if let (Some(id), Some(mail)) = (id, &self.mail) {
            super::mail::enqueue(conn, id, notice, mail)?;
        }
        Ok(())
    }
}

pub const SUBSCRIBER: &str = "notifications";

impl Subscriber for NotificationsSubscriber {
    fn name(&self) -> &str {
        SUBSCRIBER
    }

    fn handles(&self) -> Option<&[&'static str]> {
        Some(&self.handled)
    }

    fn handle(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), HandlerError> {
        for event in events {
            for rule in &self.rules {
                if !rule.handles().contains(&event.event_type.as_str()) {
                    continue;
                }
                for notice in rule.notify(conn, event)? {
                    self.write(conn, event, &notice)?;
                }
                for (user_id, action) in rule.done(event)? {
                    diesel::update(
                        notifications::table
                            .filter(notifications::user_id.eq(user_id))
                            .filter(notifications::action.eq(action))
                            .filter(notifications::read_at.is_null()),
                    )
                    .set(notifications::read_at.eq(event.recorded_at))
                    .execute(conn)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = notifications, check_for_backend(diesel::pg::Pg))]
pub struct Notification {
    pub id: i64,
    pub message: String,
    pub link: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// The viewer's notifications, newest first.
pub fn for_viewer(
    conn: &mut PgConnection,
    viewer: &Viewer,
    unread_only: bool,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(viewer.user_id))
        .order(notifications::id.desc())
        .limit(limit)
        .select(Notification::as_select())
        .into_boxed();
    if unread_only {
        q = q.filter(notifications::read_at.is_null());
    }
    q.load(conn)
}

/// The viewer's unread count, read with the session for every page (`web::frame`).
#[derive(Debug, Clone, Copy)]
pub struct Unread(pub i64);

/// How many notifications the viewer has not read (the count in the navigation).
pub fn unread_count(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(viewer.user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
}

pub fn mark_all_read(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<usize> {
    diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(viewer.user_id))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(diesel::dsl::now))
    .execute(conn)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(notifications_page)
        .service(banner)
        .service(mark_read);
}

/// The notifications page: newest first, 25 a page, with the total.
pub const NOTIFICATION_LIST: ListSpec = ListSpec {
    columns: &[Column::desc("newest")],
    per_page: 25,
};

/// One page of the viewer's notifications, newest first, with their total.
pub fn page_for_viewer(
    conn: &mut PgConnection,
    viewer: &Viewer,
    paging: &mut Paging,
) -> QueryResult<(Vec<Notification>, i64)> {
    let mine = notifications::table.filter(notifications::user_id.eq(viewer.user_id));
    let total: i64 = mine.count().get_result(conn)?;
    paging.clamp(total);
    let list = mine
        .order(notifications::id.desc())
        .offset(paging.offset())
        .limit(paging.limit())
        .select(Notification::as_select())
        .load(conn)?;
    Ok((list, total))
}

#[get("/notifications")]
async fn notifications_page(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<PageParams>,
) -> Result<HttpResponse, AppError> {
    let mut paging = Paging::parse(NOTIFICATION_LIST, &query);
    // The frame read the unread count with the session, for the navigation.
    let unread = req.extensions().get::<Unread>().map_or(0, |u| u.0);
    let (list, total, paging) = state(&req)
        .db(move |conn| {
            let (list, total) = page_for_viewer(conn, &viewer, &mut paging)?;
            Ok((list, total, paging))
        })
        .await?;
    let pager = paging.pager(
        total,
        list.len(),
        "/notifications",
        &[],
        "notification-list",
    );
    let mut ctx = Context::new();
    ctx.insert("notifications", &list);
    ctx.insert("unread", &unread);
    ctx.insert("pager", &pager);
    render(
        &req,
        "ops/notifications.html",
        "ops/_notification_list.html",
        ctx,
    )
}

/// The unread notifications as a banner, loaded by every page (`hx-trigger="load"` in base.html).
#[get("/notifications/banner")]
async fn banner(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    let list = state(&req)
        .db(move |conn| Ok(for_viewer(conn, &viewer, true, 5)?))
        .await?;
    let mut ctx = Context::new();
    ctx.insert("notifications", &list);
    render(&req, "ops/_banner.html", "ops/_banner.html", ctx)
}

#[post("/notifications/read")]
async fn mark_read(req: HttpRequest, viewer: Viewer) -> Result<HttpResponse, AppError> {
    state(&req)
        .db(move |conn| Ok(mark_all_read(conn, &viewer)?))
        .await?;
    if is_htmx(&req) {
        let res = HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            // The count in the navigation goes with the banner (an out-of-band swap).
            .body(concat!(
                "<div id=\"notices\" data-keep-focus></div>",
                "<a href=\"/notifications\" id=\"notifications-link\" hx-swap-oob=\"true\">Notifications</a>"
            ));
        return Ok(crate::web::render::with_trigger(
            res,
            None,
            "NotificationsRead",
        ));
    }
    Ok(flash_redirect(
        "/notifications",
        "success",
        "Marked as read.",
    ))
}
