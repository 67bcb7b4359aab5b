-- The visible signatures of some keys of a report without per-signature rows: one probe of its
-- hits index per key and visible signature, so the cost follows the report's size and the
-- clearances held. (`LATERAL ... LIMIT 1` keeps the planner from a semi-join that reads every hit.)
SELECT k.key, string_agg(s.name, ';' ORDER BY s.name) AS signatures
FROM unnest(:keys::text[]) AS k(key)
JOIN threat_signatures s ON :visible
CROSS JOIN LATERAL (SELECT 1 FROM threat_hits h WHERE :key_match AND h.signature = s.name LIMIT 1) AS hit
GROUP BY k.key
