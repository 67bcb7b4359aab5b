-- Threat reports: sensors, signatures, clearances, and the read models of sensor events.

-- Sensors (read model of `sensor` streams) and their token digests (secrets stay out of the log).
CREATE TABLE sensors (
    id          UUID        PRIMARY KEY,
    name        TEXT        NOT NULL,
    active      BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE TABLE sensor_tokens (
    token_digest TEXT PRIMARY KEY,
    sensor_id    UUID NOT NULL UNIQUE
);

-- Sensor event ids already accepted: a re-posted id is a duplicate, not a second event.
CREATE TABLE sensor_event_ids (
    event_id  UUID   PRIMARY KEY,
    position  BIGINT NOT NULL
);

-- Signatures (read model of `signature` streams): the small table reports join at query time.
CREATE TABLE threat_signatures (
    name          TEXT        PRIMARY KEY,
    rule_text     TEXT        NOT NULL,
    group_name    TEXT        NOT NULL,
    default_score INTEGER     NOT NULL,
    retired       BOOLEAN     NOT NULL DEFAULT FALSE,
    restricted    BOOLEAN     NOT NULL DEFAULT FALSE,
    version       BIGINT      NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX threat_signatures_group_idx ON threat_signatures (group_name);

-- Clearances (read model of `clearance` streams, one per analyst).
CREATE TABLE threat_clearances (
    user_id     UUID        NOT NULL,
    group_name  TEXT        NOT NULL,
    granted_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, group_name)
);

-- Sessions and files (projection `threat_sessions`).
CREATE TABLE threat_sessions (
    session_id         TEXT        PRIMARY KEY,
    start_time         TIMESTAMPTZ NOT NULL,
    protocol           TEXT        NOT NULL,
    source_ip          TEXT        NOT NULL,
    destination_ip     TEXT        NOT NULL,
    source_port        INTEGER     NOT NULL,
    destination_port   INTEGER     NOT NULL,
    latest_score       INTEGER,
    threat_contributor TEXT,
    file_count         INTEGER     NOT NULL DEFAULT 0
);
CREATE INDEX threat_sessions_start_idx ON threat_sessions (start_time DESC, session_id);

CREATE TABLE threat_files (
    file_id     TEXT   PRIMARY KEY,
    session_id  TEXT   NOT NULL,
    md5         TEXT   NOT NULL,
    filename    TEXT   NOT NULL,
    file_type   TEXT   NOT NULL,
    size_bytes  BIGINT NOT NULL
);
CREATE INDEX threat_files_session_idx ON threat_files (session_id);

-- Hits: the current score of each (file, integration, signature), with the report keys copied
-- from the file and its session (they never change) (projection `threat_hits`).
CREATE TABLE threat_hits (
    file_id         TEXT        NOT NULL,
    integration     TEXT        NOT NULL,
    signature       TEXT        NOT NULL,
    score           INTEGER     NOT NULL,
    session_id      TEXT        NOT NULL,
    md5             TEXT        NOT NULL,
    filename        TEXT        NOT NULL,
    file_type       TEXT        NOT NULL,
    protocol        TEXT        NOT NULL,
    source_ip       TEXT        NOT NULL,
    destination_ip  TEXT        NOT NULL,
    start_time      TIMESTAMPTZ NOT NULL,
    scored_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (file_id, integration, signature)
);
-- With the score last, the max score of a (key, signature) after a lowering rescore is one index probe.
CREATE INDEX threat_hits_md5_idx ON threat_hits (md5, signature, score);
CREATE INDEX threat_hits_type_idx ON threat_hits (file_type, signature, score);
CREATE INDEX threat_hits_pair_idx ON threat_hits (source_ip, destination_ip, signature, score);
CREATE INDEX threat_hits_protocol_idx ON threat_hits (protocol, signature, score);
CREATE INDEX threat_hits_start_idx ON threat_hits (start_time);
CREATE INDEX threat_hits_session_idx ON threat_hits (session_id);

-- Every score a hit had: the file's score history and its rescans.
CREATE TABLE threat_score_changes (
    position     BIGINT      PRIMARY KEY,
    file_id      TEXT        NOT NULL,
    integration  TEXT        NOT NULL,
    signature    TEXT        NOT NULL,
    old_score    INTEGER,
    new_score    INTEGER     NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX threat_score_changes_file_idx ON threat_score_changes (file_id, position);

-- The four top-threat reports, pre-aggregated per (report, key, signature): a report sums the rows
-- of the viewer's visible signatures, joined to threat_signatures at query time.
CREATE TABLE threat_report_rows (
    report     TEXT        NOT NULL CHECK (report IN ('hash', 'file-type', 'ip-pair', 'protocol')),
    key        TEXT        NOT NULL,
    signature  TEXT        NOT NULL,
    hits       INTEGER     NOT NULL,
    max_score  INTEGER     NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, signature, key)
);
CREATE INDEX threat_report_rows_key_idx ON threat_report_rows (report, key);

-- The same rolled up per visibility group, ranked within each group: a report for a set of
-- clearances reads the top of each held group's ranking and stops as soon as no unseen key can
-- enter the top N (threshold algorithm), so its cost follows the report's size and the number
-- of groups held, not the number of keys or hits. Rebuilt for a signature's keys when an admin
-- moves the signature to another group.
CREATE TABLE threat_report_groups (
    report      TEXT        NOT NULL,
    group_name  TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    hits        INTEGER     NOT NULL,
    max_score   INTEGER     NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, group_name, key)
);
CREATE INDEX threat_report_groups_rank_idx ON threat_report_groups (report, group_name, hits DESC, key);
CREATE INDEX threat_report_groups_key_idx ON threat_report_groups (report, key);

-- One ranking per distinct clearance set held by analysts (and `*` for admins): the rows of the
-- groups in the set, summed per key. A report is then the first N entries of one index. Views
-- are created when an analyst's clearances change to a new set and dropped when nobody holds it.
CREATE TABLE threat_views (
    view_id  TEXT   PRIMARY KEY,   -- the sorted group names joined by ',' or '*'
    groups   TEXT[] NOT NULL
);
CREATE TABLE threat_report_views (
    report     TEXT        NOT NULL,
    view_id    TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    hits       INTEGER     NOT NULL,
    max_score  INTEGER     NOT NULL,
    last_seen  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, view_id, key)
);
CREATE INDEX threat_report_views_rank_idx
    ON threat_report_views (report, view_id, hits DESC, max_score DESC, key);
