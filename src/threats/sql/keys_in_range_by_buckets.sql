-- Some keys' hits, max score and last seen in a range from a clearance set's time buckets: the
-- whole days and the whole hours inside the range as a few bucket ranges (:grains, :los, :his),
-- each read per key by the key-first index (`threat_report_buckets_key_ranges`: one index range
-- a key and bucket range, not a probe a key and bucket; `OFFSET 0` keeps the ranges in the
-- index's condition, without which the planner reads every bucket of the key), and the visible
-- hits of the range's unaligned edges (for keys with many hits, which a probe of their hits
-- would read all of). The edges are read once for all the keys, by the start-time index (the key
-- appended to '' keeps the planner off the key's own index: probed per key, it read every hit of
-- a heavy key to find the few in the edges).
SELECT p.key, sum(p.hits)::int8 AS hits, max(p.max_score) AS max_score, max(p.last_seen) AS last_seen,
       '' AS signatures, '' AS filename, '' AS file_type, 0::int8 AS total
FROM (
    SELECT b.key, b.hits, b.max_score, b.last_seen
    FROM unnest(:keys::text[]) AS k(key)
    CROSS JOIN unnest(:grains::text[], :los::timestamptz[], :his::timestamptz[]) AS t(grain, lo, hi)
    CROSS JOIN LATERAL (
        SELECT b.key, b.hits, b.max_score, b.last_seen FROM threat_report_buckets b
        WHERE b.report = :report AND b.view_id = :view AND b.key = k.key
          AND b.grain = t.grain AND b.bucket >= t.lo AND b.bucket < t.hi
        OFFSET 0
    ) AS b
    UNION ALL
    SELECT :key_column, 1, h.score, h.start_time
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE ((h.start_time >= :e1_from AND h.start_time < :e1_to)
        OR (h.start_time >= :e2_from AND h.start_time < :e2_to))
      AND (:key_column || '') = ANY(:keys::text[])
) AS p
GROUP BY p.key
HAVING sum(p.hits) > 0
