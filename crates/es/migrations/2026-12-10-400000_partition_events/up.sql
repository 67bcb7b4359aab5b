-- The log partitioned by range of position (declarative partitioning), so that appends touch the
-- newest partition, readers of recent events prune to recent partitions, and old partitions can be
-- detached to archive. Converts an existing store: every event keeps its position, transaction id
-- and recorded_at; the identity continues where it was; every index on events (the application's
-- too) is made again on the partitioned table under its own name.

-- Per-stream optimistic concurrency. A partitioned table cannot hold a unique key that leaves out
-- the partition key, so the unique (stream_type, stream_id, stream_version) moves here: an append
-- claims the stream's next version in the same statement as its insert (es::store). The version is
-- in no index and pages keep room, so the claim's update is a HOT update.
-- first_position is at or below the stream's first event (the identity's head when the stream was
-- claimed): a load reads only the partitions from there to the head (es::store::load_stream).
CREATE TABLE streams (
    stream_type    TEXT   NOT NULL,
    stream_id      TEXT   NOT NULL,
    version        BIGINT NOT NULL CHECK (version > 0),
    first_position BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (stream_type, stream_id)
) WITH (fillfactor = 70);

-- How big new partitions are, and the partitions made so far (detached ones too, so that an
-- archived partition can be attached again with its bounds).
CREATE TABLE events_partitioning (
    only_row       BOOLEAN PRIMARY KEY DEFAULT true CHECK (only_row),
    partition_size BIGINT  NOT NULL CHECK (partition_size > 0)
);
INSERT INTO events_partitioning (partition_size) VALUES (1000000);

CREATE TABLE events_partitions (
    number        INTEGER     PRIMARY KEY,
    from_position BIGINT      NOT NULL,
    to_position   BIGINT      NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    detached_at   TIMESTAMPTZ
);

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER SEQUENCE events_position_seq RENAME TO events_unpartitioned_position_seq;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_stream_version_key TO events_unpartitioned_stream_version_key;
DROP TRIGGER events_no_update_or_delete ON events_unpartitioned;
DROP TRIGGER events_no_truncate ON events_unpartitioned;

CREATE TABLE events (
    position        BIGINT GENERATED ALWAYS AS IDENTITY,
    stream_type     TEXT        NOT NULL,
    stream_id       TEXT        NOT NULL,
    stream_version  BIGINT      NOT NULL CONSTRAINT events_stream_version_check CHECK (stream_version > 0),
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL DEFAULT 1,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    transaction_id  BIGINT      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT events_pkey PRIMARY KEY (position)
) PARTITION BY RANGE (position);

-- Rows beyond the newest partition land here rather than fail; events_add_partition moves them.
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- A partition truncated on its own fires no trigger of the partitioned table.
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events_default
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- The next partition after the newest one, of events_partitioning.partition_size events. Rows of
-- its range already in the DEFAULT partition are moved into it.
CREATE FUNCTION events_add_partition() RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    n      INTEGER;
    lo     BIGINT;
    hi     BIGINT;
    name   TEXT;
    moving BOOLEAN;
BEGIN
    SELECT coalesce(max(number), 0) + 1, coalesce(max(to_position), 1)
      INTO n, lo FROM events_partitions;
    SELECT lo + partition_size INTO hi FROM events_partitioning;
    name := 'events_p' || n;
    SELECT EXISTS (SELECT 1 FROM events_default WHERE position >= lo AND position < hi) INTO moving;
    IF moving THEN
        ALTER TABLE events DETACH PARTITION events_default;
        ALTER TABLE events_default RENAME TO events_default_moving;
        CREATE TABLE events_default PARTITION OF events DEFAULT;
        CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events_default
            FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
    EXECUTE format('CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change()', name);
    INSERT INTO events_partitions (number, from_position, to_position) VALUES (n, lo, hi);
    IF moving THEN
        INSERT INTO events (position, stream_type, stream_id, stream_version, event_type,
                            schema_version, payload, metadata, recorded_at, transaction_id)
        OVERRIDING SYSTEM VALUE
        SELECT position, stream_type, stream_id, stream_version, event_type,
               schema_version, payload, metadata, recorded_at, transaction_id
        FROM events_default_moving ORDER BY position;
        DROP TABLE events_default_moving;
    END IF;
    RETURN name;
END;
$$;

-- Partitions up to a whole partition beyond the newest position the identity gave out: what
-- `heyboss serve` runs at start and every few minutes, and `heyboss events partitions`.
CREATE FUNCTION events_ensure_partitions() RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
    head  BIGINT;
    added INTEGER := 0;
BEGIN
    -- Two instances at once would both make the same partition.
    PERFORM pg_advisory_xact_lock(7242015);
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END INTO head
      FROM events_position_seq;
    head := greatest(head, (SELECT coalesce(max(position), 0) FROM events_default));
    WHILE coalesce((SELECT max(to_position) FROM events_partitions), 1)
          <= head + (SELECT partition_size FROM events_partitioning) LOOP
        PERFORM events_add_partition();
        added := added + 1;
    END LOOP;
    RETURN added;
END;
$$;

-- `streams` brought up to the log, after events were written around es::store (a bulk load by
-- hand, a test that writes history): each stream's newest version.
CREATE FUNCTION events_sync_streams() RETURNS VOID LANGUAGE sql AS $$
    INSERT INTO streams (stream_type, stream_id, version, first_position)
    SELECT stream_type, stream_id, max(stream_version), min(position)
    FROM events GROUP BY stream_type, stream_id
    ON CONFLICT (stream_type, stream_id) DO UPDATE
    SET version = EXCLUDED.version, first_position = EXCLUDED.first_position
    WHERE (streams.version, streams.first_position) <> (EXCLUDED.version, EXCLUDED.first_position);
$$;

-- A command's one event, after the claim of its stream's next version in `streams` (es::store::append):
-- a new stream's row unless someone made it first, or the stream's row moved on from the version
-- before, unless it moved already (a concurrent writer's update is waited for, then the version no
-- longer matches); no row back is a conflict. In a function so that its plans are made once per
-- connection: the pool plans every statement for its parameters (plan_cache_mode), and planning this
-- one each time cost about as much as the rest of a one-event command (docs/BENCHMARKS.md). The
-- claim is a probe of the primary key whatever the statistics say, hence no sequential scan.
CREATE FUNCTION events_append_one(p_stream_type TEXT, p_stream_id TEXT, p_version BIGINT,
                                  p_event_type TEXT, p_schema_version INTEGER, p_payload JSONB,
                                  p_metadata JSONB)
RETURNS SETOF events LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
    IF p_version = 1 THEN
        RETURN QUERY
        WITH claim AS (
            INSERT INTO streams (stream_type, stream_id, version, first_position)
            SELECT p_stream_type, p_stream_id, 1, last_value FROM events_position_seq
            ON CONFLICT DO NOTHING RETURNING 1
        )
        INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata)
        SELECT p_stream_type, p_stream_id, 1, p_event_type, p_schema_version, p_payload, p_metadata FROM claim
        RETURNING *;
    ELSE
        RETURN QUERY
        WITH claim AS (
            UPDATE streams SET version = p_version
            WHERE stream_type = p_stream_type AND stream_id = p_stream_id AND version = p_version - 1
            RETURNING 1
        )
        INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata)
        SELECT p_stream_type, p_stream_id, p_version, p_event_type, p_schema_version, p_payload, p_metadata FROM claim
        RETURNING *;
    END IF;
END;
$$;

-- A stream's events in version order (es::store::load_stream), read from the partitions between
-- the stream's first position (kept in `streams`; a stream with no row there, written around
-- es::store, is read from the first partition) and the identity's head. In a function so that its
-- plans are made once per connection and kept generic (`force_generic_plan`): the pool plans every
-- statement for its parameters, and planning a load of the partitioned table with bounds to prune
-- by cost 95-150 us a load, more than the unpartitioned table's whole load. The generic plan prunes
-- at executor start-up instead (`Subplans Removed` in EXPLAIN ANALYZE), where the bounds are the
-- function's variables. The load is a probe of the (stream, version) index of each partition left
-- whatever the statistics say, hence no sequential scan (a plan kept from an empty table's
-- statistics would otherwise scan the whole partition as it grows).
CREATE FUNCTION events_load_stream(p_stream_type TEXT, p_stream_id TEXT)
RETURNS SETOF events LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
    v_first BIGINT;
    v_head  BIGINT;
BEGIN
    SELECT first_position INTO v_first FROM streams
    WHERE stream_type = p_stream_type AND stream_id = p_stream_id;
    -- Positions start at 1; a bound below would take in the DEFAULT partition's range. Every
    -- event this statement's snapshot sees took its position before the head read here.
    v_first := greatest(coalesce(v_first, 1), 1);
    v_head := coalesce(pg_sequence_last_value('events_position_seq'::regclass), 0);
    RETURN QUERY
    SELECT * FROM events
    WHERE stream_type = p_stream_type AND stream_id = p_stream_id
      AND position >= v_first AND position <= v_head
    ORDER BY stream_version;
END;
$$;

-- The existing store: its identity's next value, then its rows in position order.
DO $$
DECLARE
    last BIGINT;
    called BOOLEAN;
BEGIN
    SELECT last_value, is_called INTO last, called FROM events_unpartitioned_position_seq;
    PERFORM setval(pg_get_serial_sequence('events', 'position'), last, called);
END;
$$;
SELECT events_ensure_partitions();

INSERT INTO events (position, stream_type, stream_id, stream_version, event_type, schema_version,
                    payload, metadata, recorded_at, transaction_id)
OVERRIDING SYSTEM VALUE
SELECT position, stream_type, stream_id, stream_version, event_type, schema_version,
       payload, metadata, recorded_at, transaction_id
FROM events_unpartitioned ORDER BY position;

INSERT INTO streams (stream_type, stream_id, version, first_position)
SELECT stream_type, stream_id, max(stream_version), min(position)
FROM events_unpartitioned GROUP BY stream_type, stream_id;

-- Every other index of the old table, under its own name, now on each partition.
DO $$
DECLARE
    ix RECORD;
BEGIN
    FOR ix IN
        SELECT c.relname AS name, pg_get_indexdef(c.oid) AS def
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'events_unpartitioned'::regclass
          AND NOT i.indisprimary
          AND c.relname <> 'events_unpartitioned_stream_version_key'
    LOOP
        EXECUTE format('DROP INDEX %I', ix.name);
        EXECUTE regexp_replace(ix.def, ' ON (ONLY )?(\S+\.)?events_unpartitioned ', ' ON \2events ');
    END LOOP;
END;
$$;

-- Loads of a stream, in version order. Not unique: `streams` keeps the versions unique, and
-- an insert skips the uniqueness probe.
CREATE INDEX events_stream_version_idx ON events (stream_type, stream_id, stream_version);

DROP TABLE events_unpartitioned;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Catch-up subscribers read only above a floor position, so that their reads prune to recent
-- partitions (es::subscriber): every event a subscriber has still to read is above its floor.
ALTER TABLE subscriber_checkpoints
    ADD COLUMN floor_position   BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN pending_xid      BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN pending_position BIGINT NOT NULL DEFAULT 0;

ANALYZE events;
ANALYZE streams;
