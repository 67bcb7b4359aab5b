CREATE TABLE threat_report_groups (
    report      TEXT        NOT NULL,
    group_name  TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    hits        INTEGER     NOT NULL,
    max_score   INTEGER     NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, key, group_name)
);
CREATE INDEX threat_report_groups_rank_idx ON threat_report_groups (report, group_name, hits DESC, key);
-- Filled again by `heyboss projections rebuild threat_hits` on the code that reads it.
