-- Catch-up subscribers: where each one is in the log. The cursor is the commit-safe key
-- (transaction_id, position) of the last event handled; see subscriber.rs. (The heyboss
-- application created this table in its own migration 2026-11-27-400000 before the event store
-- was a crate of its own; there this migration finds it and does nothing.)
CREATE TABLE IF NOT EXISTS subscriber_checkpoints (
    name                 TEXT        PRIMARY KEY,
    last_transaction_id  BIGINT      NOT NULL DEFAULT 0,
    last_position        BIGINT      NOT NULL DEFAULT 0,
    events_handled       BIGINT      NOT NULL DEFAULT 0,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
