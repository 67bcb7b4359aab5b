-- What a notification asks its reader to do (e.g. `award:<application id>`), so that the
-- notifications subscriber can mark it read when it sees the event that does it. Empty: nothing.
ALTER TABLE notifications ADD COLUMN action TEXT NOT NULL DEFAULT '';
CREATE INDEX notifications_open_action_idx ON notifications (user_id, action)
    WHERE read_at IS NULL AND action <> '';

-- The email outbox: one row per notification to send by email, written with the notification
-- (only while HEYBOSS_SMTP_URL is set), marked sent only after the SMTP server accepted it.
CREATE TABLE notification_emails (
    notification_id BIGINT      PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    recipient       TEXT        NOT NULL,
    subject         TEXT        NOT NULL,
    body            TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT        NOT NULL DEFAULT '',
    sent_at         TIMESTAMPTZ
);
CREATE INDEX notification_emails_due_idx ON notification_emails (next_attempt_at)
    WHERE sent_at IS NULL;
