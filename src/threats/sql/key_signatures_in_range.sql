-- The visible signatures of some keys of a report among the hits of sessions started in
-- [from, to): one probe of the report's hits index per key and visible signature.
SELECT k.key, string_agg(s.name, ';' ORDER BY s.name) AS signatures
FROM unnest(:keys::text[]) AS k(key)
JOIN threat_signatures s ON :visible
CROSS JOIN LATERAL (SELECT 1 FROM threat_hits h
                    WHERE :key_match AND h.signature = s.name AND h.start_time >= :from AND h.start_time < :to
                    LIMIT 1) AS hit
GROUP BY k.key
