//! Email notifications. The notifications subscriber writes, in the transaction that writes a
//! notification, one row of the outbox `notification_emails` when mail is on and the user has an
//! address. A worker thread ([`Mailer`]) sends what is due over SMTP (lettre): it claims one row
//! in a short transaction (a lease, so that no transaction stays open during the SMTP exchange:
//! an open transaction would hold back every catch-up subscriber), sends, and marks the row sent
//! only after the server accepted the message. A failure pushes the row back with a doubling
//! delay; a worker that stops between sending and marking sends that message again after the
//! lease: at least once, and once when nothing crashes. Requests never wait for mail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use uuid::Uuid;

use super::notifications::Notice;
use crate::db::PgPool;
use crate::schema::{notification_emails, users};

/// Mail configuration: HEYBOSS_SMTP_URL (mail is off without it), HEYBOSS_MAIL_FROM,
/// HEYBOSS_PUBLIC_URL (prefix of the links in messages).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://host:port` (plain), `smtp://host:port?tls=required` (STARTTLS) or `smtps://host`;
    /// credentials as `smtp://user:password@host`.
    pub smtp_url: String,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// The site's address as users reach it (`https://heyboss.example.edu`), so that links in a
    /// message work outside the site; empty: links are paths.
    pub public_url: String,
    /// The longest wait between two attempts at one message.
    pub retry_max: Duration,
    /// How often the worker looks for due messages when it found none.
    pub poll: Duration,
}

/// A claimed message is not claimed again for this long (it is sent or pushed back well before).
const LEASE_SECONDS: i32 = 120;
/// The longest one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

impl MailSettings {
    pub fn new(smtp_url: impl Into<String>) -> MailSettings {
        MailSettings {
            smtp_url: smtp_url.into(),
            from: "heyboss <heyboss@localhost>".into(),
            public_url: String::new(),
            retry_max: Duration::from_secs(300),
            poll: Duration::from_secs(1),
        }
    }

    pub fn from_env() -> Option<MailSettings> {
        let url = std::env::var("HEYBOSS_SMTP_URL").ok()?;
        if url.trim().is_empty() {
            return None;
        }
        let mut settings = MailSettings::new(url.trim());
        if let Ok(from) = std::env::var("HEYBOSS_MAIL_FROM") {
            if !from.trim().is_empty() {
                settings.from = from.trim().to_owned();
            }
        }
        settings.public_url = std::env::var("HEYBOSS_PUBLIC_URL")
            .unwrap_or_default()
            .trim()
            .trim_end_matches('/')
            .to_owned();
        Some(settings)
    }

    fn transport(&self) -> Result<(SmtpTransport, Mailbox), MailError> {
        let transport = SmtpTransport::from_url(&self.smtp_url)
            .map_err(|e| MailError(format!("HEYBOSS_SMTP_URL {:?}: {e}", self.smtp_url)))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = self
            .from
            .parse()
            .map_err(|e| MailError(format!("HEYBOSS_MAIL_FROM {:?}: {e}", self.from)))?;
        Ok((transport, from))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(String);

/// Put a notification's email in the outbox, when its user has an address (an active account).
pub fn enqueue(
    conn: &mut PgConnection,
    notification_id: i64,
    notice: &Notice,
    settings: &MailSettings,
) -> QueryResult<()> {
    let email: Option<String> = users::table
        .find(notice.user_id)
        .filter(users::active.eq(true))
        .select(users::email)
        .first(conn)
        .optional()?;
    let Some(recipient) = email.filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    diesel::insert_into(notification_emails::table)
        .values((
            notification_emails::notification_id.eq(notification_id),
            notification_emails::recipient.eq(recipient),
            notification_emails::subject.eq(subject(&notice.message)),
            notification_emails::body.eq(body(notice, &settings.public_url)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Emails in the outbox the server has not accepted yet (`/metrics`).
pub fn unsent(conn: &mut PgConnection) -> QueryResult<i64> {
    notification_emails::table
        .filter(notification_emails::sent_at.is_null())
        .count()
        .get_result(conn)
}

/// "heyboss: " and the message's first words.
fn subject(message: &str) -> String {
    const MAX: usize = 70;
    let text = message.trim_end_matches('.');
    if text.chars().count() <= MAX {
        return format!("heyboss: {text}");
    }
    let cut: String = text.chars().take(MAX).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("heyboss: {cut}…")
}

fn body(notice: &Notice, public_url: &str) -> String {
    let mut body = format!("{}\n", notice.message);
    if !notice.link.is_empty() {
        body.push_str(&format!("\n{public_url}{}\n", notice.link));
    }
    body.push_str(&format!(
        "\nYou receive this because something happened on your heyboss account; \
         all your notifications are at {public_url}/notifications.\n"
    ));
    body
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    notification_id: i64,
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// Take the next due message for a lease (its own short transaction: autocommit).
fn claim(conn: &mut PgConnection) -> QueryResult<Option<Claimed>> {
    diesel::sql_query(
        "UPDATE notification_emails SET next_attempt_at = now() + make_interval(secs => $1) \
         WHERE notification_id = (SELECT notification_id FROM notification_emails \
           WHERE sent_at IS NULL AND next_attempt_at <= now() \
           ORDER BY next_attempt_at, notification_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING notification_id, recipient, subject, body, attempts",
    )
    .bind::<Integer, _>(LEASE_SECONDS)
    .get_result(conn)
    .optional()
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s... up to `max`.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    Duration::from_secs(1u64 << exp).min(max)
}

/// Send one due message, if any. Ok(false): nothing was due.
fn send_next(
    pool: &PgPool,
    transport: &SmtpTransport,
    from: &Mailbox,
    settings: &MailSettings,
) -> Result<bool, MailError> {
    let db = |e: &dyn std::fmt::Display| MailError(format!("outbox: {e}"));
    let mut conn = pool.get().map_err(|e| db(&e))?;
    let Some(mail) = claim(&mut conn).map_err(|e| db(&e))? else {
        return Ok(false);
    };
    let row = notification_emails::table.find(mail.notification_id);
    let attempts = mail.attempts + 1;
    let outcome = build(&mail, from).and_then(|message| {
        transport
            .send(&message)
            .map_err(|e| (e.is_permanent(), e.to_string()))
    });
    match outcome {
        Ok(_) => {
            diesel::update(row)
                .set((
                    notification_emails::sent_at.eq(diesel::dsl::now),
                    notification_emails::attempts.eq(attempts),
                    notification_emails::last_error.eq(""),
                ))
                .execute(&mut conn)
                .map_err(|e| db(&e))?;
            tracing::info!(notification = mail.notification_id, "notification emailed");
        }
        Err((permanent, error)) => {
            // A refusal that retrying cannot change (a bad address) is kept, not retried.
            let wait = if permanent {
                Duration::from_secs(100 * 365 * 24 * 3600)
            } else {
                backoff(attempts, settings.retry_max)
            };
            let next = chrono::Utc::now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(36_500));
            diesel::update(row)
                .set((
                    notification_emails::attempts.eq(attempts),
                    notification_emails::next_attempt_at.eq(next),
                    notification_emails::last_error.eq(&error),
                ))
                .execute(&mut conn)
                .map_err(|e| db(&e))?;
            tracing::warn!(notification = mail.notification_id, attempts, permanent, %error, "notification email not sent");
        }
    }
    Ok(true)
}

fn build(mail: &Claimed, from: &Mailbox) -> Result<Message, (bool, String)> {
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| (true, format!("recipient {:?}: {e}", mail.recipient)))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .message_id(Some(format!(
            "<notification-{}.{}@heyboss>",
            mail.notification_id,
            Uuid::new_v4().simple()
        )))
        .body(mail.body.clone())
        .map_err(|e| (true, e.to_string()))
}

/// The worker thread sending the outbox. Stopped on [`Mailer::stop`] or drop.
pub struct Mailer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mailer {
    /// Start sending; fails at once on a malformed HEYBOSS_SMTP_URL or HEYBOSS_MAIL_FROM.
    pub fn start(pool: PgPool, settings: MailSettings) -> Result<Mailer, MailError> {
        let (transport, from) = settings.transport()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mailer".into())
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match send_next(&pool, &transport, &from, &settings) {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "mailer"),
                    }
                    pause(settings.poll, &stopping);
                }
            })
            .map_err(|e| MailError(format!("starting the mailer: {e}")))?;
        Ok(Mailer {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sleep `total`, waking early when stopped.
fn pause(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_maximum() {
        let max = Duration::from_secs(300);
        let waits: Vec<u64> = (1..=10).map(|a| backoff(a, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
    }

    #[test]
    fn a_malformed_setting_is_named_at_start() {
        let mut bad_url = MailSettings::new("smtq://127.0.0.1:2525");
        let e = bad_url.transport().expect_err("refused").to_string();
        assert!(
            e.starts_with("HEYBOSS_SMTP_URL \"smtq://127.0.0.1:2525\""),
            "{e}"
        );
        bad_url.smtp_url = "smtp://127.0.0.1:2525".into();
        bad_url.from = "nobody at all".into();
        let e = bad_url.transport().expect_err("refused").to_string();
        assert!(e.starts_with("HEYBOSS_MAIL_FROM \"nobody at all\""), "{e}");
        bad_url.from = "Admissions <admissions@uni.example>".into();
        assert!(bad_url.transport().is_ok());
    }

    #[test]
    fn a_long_message_makes_a_short_subject() {
        assert_eq!(
            subject("Your award was disbursed."),
            "heyboss: Your award was disbursed"
        );
        let long = subject(&"word ".repeat(40));
        assert!(long.ends_with('…') && long.chars().count() < 82, "{long}");
    }
}
