-- The visible hits of a session or a file.
SELECT h.file_id, h.session_id, h.md5, h.filename, h.signature, h.integration, h.score, h.start_time, h.scored_at
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE :hits_of
ORDER BY h.file_id, h.score DESC, h.integration, h.signature
