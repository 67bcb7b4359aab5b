-- What rescans changed in a time range, in the viewer's scope: each hit (file, integration,
-- signature) rescanned in the range whose score moved, from its score before the range's first
-- rescan to its score after the last; of the hits that pass the filters (threats::filters); with
-- the count of all such hits in `total`.
WITH moved AS (
    SELECT c.file_id, c.integration, c.signature,
           (array_agg(c.old_score ORDER BY c.position))[1] AS from_score,
           (array_agg(c.new_score ORDER BY c.position DESC))[1] AS to_score,
           count(*) AS rescans, max(c.recorded_at) AS last_rescan
    FROM threat_score_changes c JOIN threat_signatures s ON s.name = c.signature AND :visible
      JOIN threat_hits h ON h.file_id = c.file_id AND h.integration = c.integration AND h.signature = c.signature
    WHERE c.old_score IS NOT NULL AND :filters
      AND (:from::timestamptz IS NULL OR c.recorded_at >= :from)
      AND (:to::timestamptz IS NULL OR c.recorded_at < :to)
    GROUP BY c.file_id, c.integration, c.signature
)
SELECT m.file_id, m.integration, m.signature, m.from_score, m.to_score, m.rescans, m.last_rescan,
       f.md5, f.filename, f.session_id, count(*) OVER () AS total
FROM moved m JOIN threat_files f ON f.file_id = m.file_id
WHERE m.from_score <> m.to_score
ORDER BY m.last_rescan DESC, m.file_id, m.integration, m.signature
LIMIT :limit OFFSET :offset
