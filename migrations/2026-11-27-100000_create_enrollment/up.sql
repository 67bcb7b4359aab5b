-- Read models of the enrollment streams, owned by the `enrollment` projection.

-- One row per student: the folded state of their enrollment stream.
CREATE TABLE enrollment_students (
    student_id      UUID        PRIMARY KEY,
    term            TEXT        NOT NULL,
    -- The furthest step reached, as its rank (0 = inquiry ... 8 = enrolled).
    step            SMALLINT    NOT NULL,
    -- Where the student stands in the pipeline: the step refined by the decision, or withdrawn.
    stage           TEXT        NOT NULL,
    decision        TEXT,
    transcript      BOOLEAN     NOT NULL DEFAULT FALSE,
    identification  BOOLEAN     NOT NULL DEFAULT FALSE,
    deposit_cents   BIGINT,
    courses         TEXT[]      NOT NULL DEFAULT '{}',
    withdrawn       BOOLEAN     NOT NULL DEFAULT FALSE,
    -- The stream version this row reflects.
    version         BIGINT      NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    last_event_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX enrollment_students_term_stage_idx ON enrollment_students (term, stage, last_event_at DESC);
CREATE INDEX enrollment_students_stage_idx ON enrollment_students (stage, last_event_at DESC);
CREATE INDEX enrollment_students_last_event_idx ON enrollment_students (last_event_at DESC);

-- Students per term and stage, kept by the same projection so the pipeline's counts are one small read.
CREATE TABLE enrollment_stage_counts (
    term      TEXT   NOT NULL,
    stage     TEXT   NOT NULL,
    students  BIGINT NOT NULL,
    PRIMARY KEY (term, stage)
);
