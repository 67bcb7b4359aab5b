-- The visible signatures of some keys of a report among the hits of sessions started in
-- [from, to), from those hits (a short range: fewer rows than probes of the keys' indexes).
SELECT :key_column AS key, string_agg(DISTINCT h.signature, ';' ORDER BY h.signature) AS signatures
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE h.start_time >= :from AND h.start_time < :to AND :key_column = ANY(:keys)
GROUP BY 1
