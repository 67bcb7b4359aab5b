-- A report over a time range from one clearance set's (:view) time buckets: the whole days, the
-- whole hours around them, and the visible hits of the unaligned edges. Empty parts are empty
-- spans ([x, x)). The :hidden keys (triaged ones the viewer hides) are left out before the total,
-- which is the count of the summed keys when a page asks for it (a window over every key: a
-- third of a hash `24h` read), else 0. The edges' hits are summed per key and :edge_signature
-- (their signature, or NULL), and :signatures is '' or the signatures so found: a few-key report
-- over a bounded range takes its edges' signatures from this read instead of reading the edges
-- again (summed per key and signature first, 600 rows for file types at 10,000,000 hits, the
-- signatures cost nothing the timing shows; listed with DISTINCT from each hit, 3 ms).
SELECT p.key, sum(p.hits)::int8 AS hits, max(p.max_score) AS max_score, max(p.last_seen) AS last_seen,
       :signatures AS signatures, '' AS filename, '' AS file_type, :total AS total
FROM (
    SELECT b.key, b.hits, b.max_score, b.last_seen, NULL::text AS signature FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'day'
      AND b.bucket >= :d_from AND b.bucket < :d_to
    UNION ALL
    SELECT b.key, b.hits, b.max_score, b.last_seen, NULL::text AS signature FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'hour'
      AND b.bucket >= :h1_from AND b.bucket < :h1_to
    UNION ALL
    SELECT b.key, b.hits, b.max_score, b.last_seen, NULL::text AS signature FROM threat_report_buckets b
    WHERE b.report = :report AND b.view_id = :view AND b.grain = 'hour'
      AND b.bucket >= :h2_from AND b.bucket < :h2_to
    UNION ALL
    SELECT :key_column, count(*), max(h.score), max(h.start_time), :edge_signature
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE (h.start_time >= :e1_from AND h.start_time < :e1_to)
       OR (h.start_time >= :e2_from AND h.start_time < :e2_to)
    GROUP BY 1, 5
) p
GROUP BY p.key
HAVING p.key <> ALL(:hidden::text[])
ORDER BY :order
LIMIT :limit OFFSET :offset
