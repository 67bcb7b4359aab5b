-- A command's one-event append as a procedure run by CALL (es::store::append_keyed), which the
-- server does not plan: the pool plans every statement for its parameters
-- (`plan_cache_mode = force_custom_plan`), and planning `SELECT ... FROM events_append_one(...)`
-- cost some 20 µs a command. The procedure also hands back only what the writer does not know
-- (position, recorded_at, transaction_id) instead of the whole row with its payload and metadata,
-- which the writer then parsed from JSON again. pgbench, 8 clients, synchronous_commit off, a new
-- stream per call: 12,090 / 11,844 calls/s for the function, 13,244 / 13,613 for the procedure
-- (docs/BENCHMARKS.md). The claim and the insert are those of events_append_one; when the stream
-- was not at the expected version nothing is inserted and the OUT values stay NULL. The functions
-- stay for binaries from before this migration.
CREATE PROCEDURE events_append_one_proc(p_stream_type TEXT, p_stream_id TEXT, p_version BIGINT,
                                        p_event_type TEXT, p_schema_version INTEGER, p_payload JSONB,
                                        p_metadata JSONB, INOUT o_position BIGINT,
                                        INOUT o_recorded_at TIMESTAMPTZ, INOUT o_transaction_id BIGINT)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
    IF p_version = 1 THEN
        WITH claim AS (
            INSERT INTO streams (stream_type, stream_id, version, first_position)
            SELECT p_stream_type, p_stream_id, 1, last_value FROM events_position_seq
            ON CONFLICT DO NOTHING RETURNING 1
        )
        INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata)
        SELECT p_stream_type, p_stream_id, 1, p_event_type, p_schema_version, p_payload, p_metadata FROM claim
        RETURNING events.position, events.recorded_at, events.transaction_id
        INTO o_position, o_recorded_at, o_transaction_id;
    ELSE
        WITH claim AS (
            UPDATE streams SET version = p_version
            WHERE stream_type = p_stream_type AND stream_id = p_stream_id AND version = p_version - 1
            RETURNING 1
        )
        INSERT INTO events (stream_type, stream_id, stream_version, event_type, schema_version, payload, metadata)
        SELECT p_stream_type, p_stream_id, p_version, p_event_type, p_schema_version, p_payload, p_metadata FROM claim
        RETURNING events.position, events.recorded_at, events.transaction_id
        INTO o_position, o_recorded_at, o_transaction_id;
    END IF;
END;
$$;

-- With an idempotency key: the key's outcome stored as events_append_one_keyed stores it.
CREATE PROCEDURE events_append_one_keyed_proc(p_stream_type TEXT, p_stream_id TEXT, p_version BIGINT,
                                              p_event_type TEXT, p_schema_version INTEGER,
                                              p_payload JSONB, p_metadata JSONB, p_key TEXT,
                                              p_fingerprint TEXT, INOUT o_position BIGINT,
                                              INOUT o_recorded_at TIMESTAMPTZ,
                                              INOUT o_transaction_id BIGINT)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off AS $$
BEGIN
    CALL events_append_one_proc(p_stream_type, p_stream_id, p_version, p_event_type,
                                p_schema_version, p_payload, p_metadata,
                                o_position, o_recorded_at, o_transaction_id);
    IF o_position IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO command_outcomes (idempotency_key, fingerprint, outcome)
    VALUES (p_key, p_fingerprint,
            jsonb_build_object('stream_type', p_stream_type, 'stream_id', p_stream_id,
                               'stream_version', p_version,
                               'positions', jsonb_build_array(o_position),
                               'event_types', jsonb_build_array(p_event_type)));
END;
$$;
