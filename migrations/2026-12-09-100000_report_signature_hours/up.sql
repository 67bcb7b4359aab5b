-- The hours in which each key of the few-key reports (file types, protocols) had a hit of each
-- signature (projection `threat_hits`): a report over a time range finds the signatures of its
-- rows by one probe per key and signature of the range's whole hours (the hits of its unaligned
-- edges are read), instead of probing the hits. Only whether a hit exists: a hit is never
-- removed, so a row is only ever inserted (a batch's rows already there are left alone).
CREATE TABLE threat_report_signature_hours (
    report     TEXT        NOT NULL CHECK (report IN ('file-type', 'protocol')),
    key        TEXT        NOT NULL,
    signature  TEXT        NOT NULL,
    bucket     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (report, key, signature, bucket)
);
