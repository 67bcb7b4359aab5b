-- Back to one table (with every partition still attached; detached ones are left as they are).
ALTER TABLE subscriber_checkpoints
    DROP COLUMN floor_position, DROP COLUMN pending_xid, DROP COLUMN pending_position;

-- They return the partitioned table's rows.
DROP FUNCTION events_load_stream(TEXT, TEXT);
DROP FUNCTION events_append_one(TEXT, TEXT, BIGINT, TEXT, INTEGER, JSONB, JSONB);

ALTER TABLE events RENAME TO events_partitioned;
ALTER SEQUENCE events_position_seq RENAME TO events_partitioned_position_seq;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_pkey TO events_partitioned_pkey;
DROP TRIGGER events_no_update_or_delete ON events_partitioned;
DROP TRIGGER events_no_truncate ON events_partitioned;

CREATE TABLE events (
    position        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_type     TEXT        NOT NULL,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CHECK (stream_version > 0),
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL DEFAULT 1,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    transaction_id  BIGINT      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT events_stream_version_key UNIQUE (stream_type, stream_id, stream_version)
);
DO $$
DECLARE
    last BIGINT;
    called BOOLEAN;
BEGIN
    SELECT last_value, is_called INTO last, called FROM events_partitioned_position_seq;
    PERFORM setval(pg_get_serial_sequence('events', 'position'), last, called);
END;
$$;
INSERT INTO events (position, stream_type, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, recorded_at, transaction_id)
OVERRIDING SYSTEM VALUE
SELECT position, stream_type, stream_id, stream_version, event_type, schema_version,
       payload, metadata, recorded_at, transaction_id
FROM events_partitioned ORDER BY position;

DO $$
DECLARE
    ix RECORD;
BEGIN
    FOR ix IN
        SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'events_partitioned'::regclass
          AND NOT i.indisprimary
          AND c.relname <> 'events_stream_version_idx'
    LOOP
        EXECUTE format('DROP INDEX %I', ix.name);
        EXECUTE regexp_replace(ix.def, ' ON (ONLY )?(\S+\.)?events_partitioned ', ' ON \2events ');
    END LOOP;
END;
$$;
DROP TABLE events_partitioned;
DROP FUNCTION events_sync_streams();
DROP FUNCTION events_ensure_partitions();
DROP FUNCTION events_add_partition();
DROP TABLE events_partitions;
DROP TABLE events_partitioning;
DROP TABLE streams;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
