-- Some keys' hits, max score and last seen in a range from a clearance set's time buckets: a
-- point probe per key of each whole day and hour inside the range (:grains, :buckets), and the
-- visible hits of the range's unaligned edges (for keys with many hits, which a probe of their
-- hits would read all of). The edges are read once for all the keys, by the start-time index
-- (the key appended to '' keeps the planner off the key's own index: probed per key, it read
-- every hit of a heavy key to find the few in the edges).
SELECT p.key, sum(p.hits)::int8 AS hits, max(p.max_score) AS max_score, max(p.last_seen) AS last_seen,
       '' AS signatures, '' AS filename, '' AS file_type, 0::int8 AS total
FROM (
    SELECT b.key, b.hits, b.max_score, b.last_seen
    FROM unnest(:keys::text[]) AS k(key)
    CROSS JOIN unnest(:grains::text[], :buckets::timestamptz[]) AS t(grain, bucket)
    JOIN threat_report_buckets b ON b.report = :report AND b.view_id = :view AND b.grain = t.grain
                                AND b.bucket = t.bucket AND b.key = k.key
    UNION ALL
    SELECT :key_column, 1, h.score, h.start_time
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE ((h.start_time >= :e1_from AND h.start_time < :e1_to)
        OR (h.start_time >= :e2_from AND h.start_time < :e2_to))
      AND (:key_column || '') = ANY(:keys::text[])
) AS p
GROUP BY p.key
HAVING sum(p.hits) > 0
