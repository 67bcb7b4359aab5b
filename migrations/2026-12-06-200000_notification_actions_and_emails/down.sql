DROP TABLE IF EXISTS notification_emails;
DROP INDEX IF EXISTS notifications_open_action_idx;
ALTER TABLE notifications DROP COLUMN IF EXISTS action;
