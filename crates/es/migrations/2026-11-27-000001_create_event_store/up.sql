-- The one event store of the application. Every context appends here; nothing else is a source of truth.
CREATE TABLE events (
    -- Gap-tolerant global order: an identity may skip values when a transaction rolls back.
    position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_type     TEXT        NOT NULL,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version > 0),
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL DEFAULT 1,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The writing transaction, so that tailing readers can wait for slow committers (gap safety).
    transaction_id  BIGINT      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT events_stream_version_key UNIQUE (stream_type, stream_id, stream_version)
);

CREATE INDEX events_event_type_position_idx ON events (event_type, position);
CREATE INDEX events_transaction_id_position_idx ON events (transaction_id, position);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);

-- Append-only, enforced by the database rather than by good intentions.
CREATE FUNCTION events_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Idempotency: the first outcome of a command key, so a retried form or API call is applied once.
CREATE TABLE command_outcomes (
    idempotency_key TEXT        PRIMARY KEY,
    outcome         JSONB,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
