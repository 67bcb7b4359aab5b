DROP INDEX IF EXISTS events_actor_idx;
DROP TABLE IF EXISTS notifications;
DROP TABLE IF EXISTS projection_runs;
DROP TABLE IF EXISTS subscriber_checkpoints;
