-- Some keys' visible hits among sessions started in [from, to): count, max score, last seen.
-- One probe of the report's hits index per key (hashes and IP pairs have few hits a key).
SELECT k.key, r.hits, r.max_score, r.last_seen,
       '' AS signatures, '' AS filename, '' AS file_type, 0::int8 AS total
FROM unnest(:keys::text[]) AS k(key)
CROSS JOIN LATERAL (
    SELECT count(*)::int8 AS hits, max(h.score) AS max_score, max(h.start_time) AS last_seen
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE :key_match AND h.start_time >= :from AND h.start_time < :to
) AS r
WHERE r.hits > 0
