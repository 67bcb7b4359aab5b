-- Read models of the scholarships context. The event log is the source of truth; these tables
-- are owned by the scholarships projections and can be rebuilt from it.

-- Funds, with the running total of live awards (offered, accepted or disbursed).
CREATE TABLE scholarship_funds (
    id             UUID        PRIMARY KEY,
    name           TEXT        NOT NULL,
    term           TEXT        NOT NULL,
    budget_cents   BIGINT      NOT NULL,
    awarded_cents  BIGINT      NOT NULL DEFAULT 0,
    criteria       TEXT        NOT NULL,
    opens_on       DATE        NOT NULL,
    closes_on      DATE        NOT NULL,
    is_open        BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- One row per application: its decision, its award and its review summary (for ranking).
CREATE TABLE scholarship_applications (
    id              UUID        PRIMARY KEY,
    fund_id         UUID        NOT NULL,
    student_id      UUID        NOT NULL,
    statement       TEXT        NOT NULL,
    submitted_at    TIMESTAMPTZ NOT NULL,
    -- submitted | awarded | declined | waitlisted
    outcome         TEXT        NOT NULL DEFAULT 'submitted',
    decision_reason TEXT,
    decided_at      TIMESTAMPTZ,
    award_cents     BIGINT,
    -- offered | accepted | refused | disbursed | revoked (only for awards)
    award_status    TEXT,
    review_count    INTEGER     NOT NULL DEFAULT 0,
    avg_score       DOUBLE PRECISION
);
-- One application per student per fund, whatever the race.
CREATE UNIQUE INDEX scholarship_applications_fund_student_key ON scholarship_applications (fund_id, student_id);
CREATE INDEX scholarship_applications_board_idx ON scholarship_applications (fund_id, avg_score DESC NULLS LAST, submitted_at, id);
CREATE INDEX scholarship_applications_student_idx ON scholarship_applications (student_id);

-- Reviewers assigned to applications by the committee.
CREATE TABLE scholarship_assignments (
    application_id UUID        NOT NULL,
    reviewer_id    UUID        NOT NULL,
    assigned_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (application_id, reviewer_id)
);
CREATE INDEX scholarship_assignments_reviewer_idx ON scholarship_assignments (reviewer_id);

-- The current revision of each reviewer's review of an application (older ones are in the log).
CREATE TABLE scholarship_reviews (
    application_id UUID        NOT NULL,
    reviewer_id    UUID        NOT NULL,
    scores         INTEGER[]   NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    comment        TEXT        NOT NULL,
    revision       INTEGER     NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (application_id, reviewer_id)
);

-- Every committee decision and award change, for the fund report's history.
CREATE TABLE scholarship_decisions (
    position       BIGINT      PRIMARY KEY,
    fund_id        UUID        NOT NULL,
    application_id UUID        NOT NULL,
    student_id     UUID        NOT NULL,
    kind           TEXT        NOT NULL,
    amount_cents   BIGINT,
    reason         TEXT        NOT NULL,
    actor          TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX scholarship_decisions_fund_idx ON scholarship_decisions (fund_id, position);

-- Students the enrollment context records as enrolled (from Enrolled / Withdrawn events).
CREATE TABLE scholarship_enrolled_students (
    student_id  UUID        PRIMARY KEY,
    enrolled    BOOLEAN     NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
