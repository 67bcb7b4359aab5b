-- The least file name (and file type) of each hash's hits of each signature (projection
-- `threat_hits`): a hash report's row shows the least name over the signatures its viewer may
-- see, read from at most one row per (hash, signature) instead of every hit of the hash (the
-- heaviest hashes have tens of thousands). A hit is never removed and its name never changes,
-- so a row only ever gets a smaller name; it does not depend on clearances or groups.
CREATE TABLE threat_hash_names (
    md5        TEXT NOT NULL,
    signature  TEXT NOT NULL,
    filename   TEXT NOT NULL,
    file_type  TEXT NOT NULL,
    PRIMARY KEY (md5, signature)
);
INSERT INTO threat_hash_names (md5, signature, filename, file_type)
SELECT DISTINCT ON (md5, signature) md5, signature, filename, file_type
FROM threat_hits
ORDER BY md5, signature, filename, file_type;
