-- A report over a time range from one clearance set's (:view) time buckets: the whole days, the
-- whole hours around them, and the visible hits of the unaligned edges. Empty parts are empty
-- spans ([x, x)). The :hidden keys (triaged ones the viewer hides) are left out before the total,
-- which is the count of the summed keys when a page asks for it (a window over every key: a
-- third of a hash `24h` read), else 0.
SELECT p.key, sum(p.hits)::int8 AS hits, max(p.max_score) AS max_score, max(p.last_seen) AS last_seen,
       '' AS signatures, '' AS filename, '' AS file_type, :total AS total
FROM (
    SELECT b.key, b.hits, b.max_score, b.last_seen FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'day'
      AND b.bucket >= :d_from AND b.bucket < :d_to
    UNION ALL
    SELECT b.key, b.hits, b.max_score, b.last_seen FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'hour'
      AND b.bucket >= :h1_from AND b.bucket < :h1_to
    UNION ALL
    SELECT b.key, b.hits, b.max_score, b.last_seen FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'hour'
      AND b.bucket >= :h2_from AND b.bucket < :h2_to
    UNION ALL
    SELECT :key_column, 1, h.score, h.start_time
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE h.start_time >= :e1_from AND h.start_time < :e1_to
    UNION ALL
    SELECT :key_column, 1, h.score, h.start_time
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE h.start_time >= :e2_from AND h.start_time < :e2_to
) p
GROUP BY p.key
HAVING p.key <> ALL(:hidden::text[])
ORDER BY :order
LIMIT :limit OFFSET :offset
