-- The first rows of the ranking of one clearance set ($2) in one report ($1), if maintained,
-- without the hidden keys ($5: triaged ones the viewer hides).
SELECT v.key, v.hits::int8 AS hits, v.max_score, v.last_seen,
       '' AS signatures, '' AS filename, '' AS file_type, 0::int8 AS total
FROM threat_report_views v
WHERE v.report = $1 AND v.view_id = $2 AND v.hits > 0
  AND v.key <> ALL($5)
  AND EXISTS (SELECT 1 FROM threat_views w WHERE w.view_id = $2)
ORDER BY {order}
LIMIT $3 OFFSET $4
