-- The visible signatures of some keys of a few-key report (file types, protocols) among the hits
-- of sessions started at or after :from (a range open at its end, as the presets are): those of
-- the keys' per-signature rows last seen since then (a hit is never removed, so a row's last
-- seen is its latest hit's start).
SELECT r.key, string_agg(r.signature, ';' ORDER BY r.signature) AS signatures
FROM threat_report_rows r JOIN threat_signatures s ON s.name = r.signature AND :visible
WHERE r.report = :report AND r.key = ANY(:keys) AND r.hits > 0 AND r.last_seen >= :from
GROUP BY r.key
