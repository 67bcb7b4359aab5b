-- The UTC days on which each IP pair had a hit of each signature (projection `threat_hits`), as
-- `threat_report_signature_hours` keeps the hours of the few-key reports. An IP-pair report over a
-- bounded range found the signatures of its rows whose first and last seen span the range by one
-- probe of the hits per (pair, signature): 1,000 probes for ten heavy pairs over a custom week at
-- 900,000 hits, 10-14 ms of a 16-18 ms page. The range's whole days are now one index range per
-- pair, and only a signature not found there probes the hits of the range's partial days. About
-- one row per three hits there (a pair's hits repeat their signatures from day to day); the
-- hashes keep none: theirs would be nearly one a hit, for 2 ms of their page.
-- Only whether a hit exists: a hit is never removed and its start never changes, so a row is only
-- ever inserted. It does not depend on clearances (the readers keep the visible signatures).
CREATE TABLE threat_pair_signature_days (
    source_ip       TEXT        NOT NULL,
    destination_ip  TEXT        NOT NULL,
    day             TIMESTAMPTZ NOT NULL,
    signature       TEXT        NOT NULL,
    PRIMARY KEY (source_ip, destination_ip, day, signature)
);
INSERT INTO threat_pair_signature_days (source_ip, destination_ip, day, signature)
SELECT DISTINCT source_ip, destination_ip,
       date_trunc('day', start_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', signature
FROM threat_hits;
