-- The visible signatures of some hashes among the hits of sessions started in [from, to), from
-- each (hash, signature)'s first and last seen (`threat_hash_names`): a row that does not overlap
-- the range has no hit in it; one whose first or last seen is inside it has (every range open at
-- its end); only a row spanning the whole range probes its hits, once.
SELECT n.md5 AS key, string_agg(n.signature, ';' ORDER BY n.signature) AS signatures
FROM threat_hash_names n
JOIN threat_signatures s ON s.name = n.signature AND :visible
CROSS JOIN LATERAL ((SELECT 1 WHERE n.first_seen >= :from OR n.last_seen < :to)
                    UNION ALL
                    (SELECT 1 FROM threat_hits h
                      WHERE h.md5 = n.md5 AND h.signature = n.signature
                        AND h.start_time >= :from AND h.start_time < :to
                      LIMIT 1)
                    LIMIT 1) AS hit
WHERE n.md5 = ANY(:keys) AND n.last_seen >= :from AND n.first_seen < :to
GROUP BY n.md5
