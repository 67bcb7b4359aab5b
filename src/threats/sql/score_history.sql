-- A file's visible score changes, oldest first.
SELECT c.position, c.integration, c.signature, c.old_score, c.new_score, c.recorded_at
FROM threat_score_changes c JOIN threat_signatures s ON s.name = c.signature AND :visible
WHERE c.file_id = :file_id
ORDER BY c.position
