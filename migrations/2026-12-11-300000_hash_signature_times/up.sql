-- The first and last session start of each (hash, signature)'s hits, beside its least name
-- (projection `threat_hits`): a hash report's signatures over a range are those of the viewer's
-- visible signatures whose rows overlap it; a row with first seen or last seen inside the range
-- has a hit in it without reading the hits (every preset: a range open at its end). A hit is
-- never removed and its start never changes, so first seen only falls and last seen only rises.
-- One row per (hash, signature) as before: a batch writes a row only when its name falls or its
-- times widen, with no lock when neither.
ALTER TABLE threat_hash_names ADD COLUMN first_seen TIMESTAMPTZ, ADD COLUMN last_seen TIMESTAMPTZ;
UPDATE threat_hash_names n SET first_seen = t.first_seen, last_seen = t.last_seen
  FROM (SELECT md5, signature, min(start_time) AS first_seen, max(start_time) AS last_seen
          FROM threat_hits GROUP BY md5, signature) t
 WHERE t.md5 = n.md5 AND t.signature = n.signature;
ALTER TABLE threat_hash_names ALTER COLUMN first_seen SET NOT NULL, ALTER COLUMN last_seen SET NOT NULL;
