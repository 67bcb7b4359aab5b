-- The append functions run with enable_seqscan = off, and the first append of a stream reads
-- events_position_seq, which only a sequential scan can read: its plan costs over 10^10, far above
-- jit_above_cost, so on a connection where JIT is on (the pool turns it off; a plain psql, pgbench,
-- a tool's own connection do not) every new stream's append compiled its plan: 55-90 ms instead of
-- under 1 ms (auto_explain: "JIT: Functions: 6 ... Total 91.5 ms"). Off for these functions
-- whatever the connection's setting.
ALTER FUNCTION events_append_one(TEXT, TEXT, BIGINT, TEXT, INTEGER, JSONB, JSONB) SET jit = off;
ALTER FUNCTION events_append_one_keyed(TEXT, TEXT, BIGINT, TEXT, INTEGER, JSONB, JSONB, TEXT, TEXT)
    SET jit = off;
