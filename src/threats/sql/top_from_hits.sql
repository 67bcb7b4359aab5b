-- A report computed from the visible hits of sessions started in [since, until) (NULL: open)
-- that pass the filters (threats::filters), without the :hidden keys (triaged ones the viewer hides).
SELECT :key_column AS key, count(*)::int8 AS hits, max(h.score) AS max_score, max(h.start_time) AS last_seen,
       string_agg(DISTINCT h.signature, ';' ORDER BY h.signature) AS signatures, '' AS filename, '' AS file_type, count(*) OVER () AS total
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE (:since::timestamptz IS NULL OR h.start_time >= :since)
  AND (:until::timestamptz IS NULL OR h.start_time < :until)
  AND :filters
  AND :key_column <> ALL(:hidden::text[])
GROUP BY 1
ORDER BY :order
LIMIT :limit OFFSET :offset
