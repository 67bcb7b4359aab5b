-- The first and last session start of each (IP pair, signature)'s hits (projection
-- `threat_hits`), as `threat_hash_names` keeps them per (hash, signature): an IP-pair report's
-- signatures over a range are those of the viewer's visible signatures whose rows overlap it; a
-- row with first or last seen inside the range has a hit in it without reading the hits (every
-- preset: a range open at its end), and only a row spanning a bounded range probes its hits. A
-- hit is never removed and its start never changes, so first seen only falls and last seen only
-- rises; a batch writes a row only when its times widen. It does not depend on clearances.
CREATE TABLE threat_pair_signature_times (
    source_ip       TEXT NOT NULL,
    destination_ip  TEXT NOT NULL,
    signature       TEXT NOT NULL,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_ip, destination_ip, signature)
);
INSERT INTO threat_pair_signature_times (source_ip, destination_ip, signature, first_seen, last_seen)
SELECT source_ip, destination_ip, signature, min(start_time), max(start_time)
FROM threat_hits
GROUP BY source_ip, destination_ip, signature;
