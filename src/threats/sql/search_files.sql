-- Files whose name holds :pattern (ILIKE, `\` escapes), by their visible hits in sessions started
-- in [since, until) (NULL: open) that pass the filters: a file with no hit the viewer may see is
-- not found.
SELECT h.file_id, min(h.filename) AS filename, min(h.md5) AS md5, min(h.file_type) AS file_type,
       count(*)::int8 AS hits, max(h.score) AS max_score, max(h.start_time) AS last_seen
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE h.filename ILIKE :pattern ESCAPE '\'
  AND (:since::timestamptz IS NULL OR h.start_time >= :since)
  AND (:until::timestamptz IS NULL OR h.start_time < :until)
  AND :filters
GROUP BY h.file_id
ORDER BY last_seen DESC, h.file_id
LIMIT :limit
