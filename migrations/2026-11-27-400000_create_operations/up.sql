-- Catch-up subscribers: where each one is in the log. The cursor is the commit-safe key
-- (transaction_id, position) of the last event handled; see src/es/subscriber.rs.
CREATE TABLE subscriber_checkpoints (
    name                 TEXT        PRIMARY KEY,
    last_transaction_id  BIGINT      NOT NULL DEFAULT 0,
    last_position        BIGINT      NOT NULL DEFAULT 0,
    events_handled       BIGINT      NOT NULL DEFAULT 0,
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rebuilds and verifications of projections, so that any instance can show their progress.
CREATE TABLE projection_runs (
    name          TEXT        PRIMARY KEY,
    kind          TEXT        NOT NULL CHECK (kind IN ('rebuild', 'verify')),
    state         TEXT        NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    events_total  BIGINT      NOT NULL DEFAULT 0,
    events_done   BIGINT      NOT NULL DEFAULT 0,
    differences   BIGINT,
    message       TEXT        NOT NULL DEFAULT '',
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);

-- Per-user notifications written by the `notifications` catch-up subscriber.
CREATE TABLE notifications (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID        NOT NULL,
    position    BIGINT      NOT NULL,
    message     TEXT        NOT NULL,
    link        TEXT        NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    read_at     TIMESTAMPTZ,
    CONSTRAINT notifications_user_position_key UNIQUE (user_id, position)
);
CREATE INDEX notifications_unread_idx ON notifications (user_id, id) WHERE read_at IS NULL;

-- The notifications feed starts at the log's head when this is deployed: nobody is notified
-- about history.
INSERT INTO subscriber_checkpoints (name, last_transaction_id, last_position)
SELECT 'notifications', COALESCE(MAX(transaction_id), 0), COALESCE(MAX(position), 0) FROM events;

-- Audit filters by actor.
CREATE INDEX events_actor_idx ON events ((metadata -> 'actor' ->> 'id'), position);
