-- Time-bucketed rankings: each clearance set's report rows per UTC hour and per UTC day of the
-- sessions' start time (projection `threat_hits`). A report over a time range sums the whole days
-- and hours inside it, and reads the hits of the unaligned edges only (exact at the edges).
CREATE TABLE threat_report_buckets (
    report     TEXT        NOT NULL,
    view_id    TEXT        NOT NULL,
    grain      TEXT        NOT NULL CHECK (grain IN ('hour', 'day')),
    bucket     TIMESTAMPTZ NOT NULL,
    key        TEXT        NOT NULL,
    hits       INTEGER     NOT NULL,
    max_score  INTEGER     NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, view_id, grain, bucket, key)
);
