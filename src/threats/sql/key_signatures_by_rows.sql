-- The visible signatures of some keys of a report, from its per-signature rows.
SELECT r.key, string_agg(r.signature, ';' ORDER BY r.signature) AS signatures
FROM threat_report_rows r JOIN threat_signatures s ON s.name = r.signature AND :visible
WHERE r.report = :report AND r.key = ANY(:keys) AND r.hits > 0
GROUP BY r.key
