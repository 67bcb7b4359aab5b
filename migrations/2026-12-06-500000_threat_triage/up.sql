-- Analysts' triage of a hash or a session (ThreatTriaged), one row per event. `signatures` are the
-- signatures of the hits the analyst could see when triaging: a viewer sees the row only when they
-- may see every one of them (a note is about those hits).
CREATE TABLE threat_triage (
    position      BIGINT      PRIMARY KEY,
    subject_kind  TEXT        NOT NULL CHECK (subject_kind IN ('hash', 'session')),
    subject       TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('triaged', 'false-positive', 'escalated')),
    note          TEXT        NOT NULL,
    signatures    TEXT[]      NOT NULL,
    actor_id      UUID,
    recorded_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX threat_triage_subject_idx ON threat_triage (subject_kind, subject, position);

-- The rescans report reads the rescans of a time range; first scores (old_score NULL) are most
-- rows and are left out of the index.
CREATE INDEX threat_score_changes_rescans_idx ON threat_score_changes (recorded_at)
    WHERE old_score IS NOT NULL;
