-- The visible hits behind one row of a report, in sessions started in [since, until)
-- (NULL: open), that pass the filters (threats::filters).
SELECT h.file_id, h.session_id, h.md5, h.filename, h.signature, h.integration, h.score, h.start_time, h.scored_at,
       count(*) OVER () AS total
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE :key_match AND (:since::timestamptz IS NULL OR h.start_time >= :since)
  AND (:until::timestamptz IS NULL OR h.start_time < :until)
  AND :filters
ORDER BY :order
LIMIT :limit OFFSET :offset
