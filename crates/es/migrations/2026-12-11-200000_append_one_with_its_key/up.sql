-- A one-event command with an idempotency key: the append and the key's outcome in one statement
-- (es::store::append_keyed), one round trip fewer per form post than an append followed by the
-- key's own INSERT. The key is claimed right after the event is written, before the projections
-- run, by the same INSERT without ON CONFLICT as before: a key already used fails the transaction on
-- its primary key (a concurrent one waits for the first to commit, then fails), and the executor
-- answers with the first command's outcome read after the rollback. No key row is written when the
-- stream was not at the expected version (the append wrote nothing). The outcome is the JSON of
-- es::executor::CommandOutcome. Plans kept as in events_append_one: the INSERT reads no table.
CREATE FUNCTION events_append_one_keyed(p_stream_type TEXT, p_stream_id TEXT, p_version BIGINT,
                                        p_event_type TEXT, p_schema_version INTEGER, p_payload JSONB,
                                        p_metadata JSONB, p_key TEXT, p_fingerprint TEXT)
RETURNS SETOF events LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
DECLARE
    e events;
BEGIN
    SELECT * INTO e FROM events_append_one(p_stream_type, p_stream_id, p_version, p_event_type,
                                           p_schema_version, p_payload, p_metadata);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO command_outcomes (idempotency_key, fingerprint, outcome)
    VALUES (p_key, p_fingerprint,
            jsonb_build_object('stream_type', e.stream_type, 'stream_id', e.stream_id,
                               'stream_version', e.stream_version,
                               'positions', jsonb_build_array(e.position),
                               'event_types', jsonb_build_array(e.event_type)));
    RETURN NEXT e;
END;
$$;
