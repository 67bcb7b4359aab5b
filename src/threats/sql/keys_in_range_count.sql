-- How many keys of a report have a visible hit in [from, to) for one clearance set (:view), less
-- the :hidden ones, one row a key of `threat_report_key_hours` with nothing to gather or sort: a
-- key has a bit of its hour string in the range's whole hours; or it is a wide key (an empty
-- string) with a day or hour bucket in the range (`threat_report_buckets_key_ranges`); or it has
-- a visible hit in the unaligned edges (every key with a visible hit has a row). The row count of
-- `top_from_buckets.sql` without summing anything (a hash `custom` range at 10,000,000 hits, in
-- psql: 26 ms against 102 ms for the distinct keys of the range's day and hour buckets).
SELECT count(*)::int8 AS n
FROM threat_report_key_hours k
WHERE k.report = :report AND k.view_id = :view AND k.key <> ALL(:hidden::text[])
  AND (threat_hours_meet(k.first_hour, k.hours, :hours_from::int4, :hours_to::int4)
       OR (length(k.hours) = 0
           AND EXISTS (SELECT FROM threat_report_buckets b
                       WHERE b.report = k.report AND b.view_id = k.view_id AND b.key = k.key
                         AND ((b.grain = 'day' AND b.bucket >= :d_from AND b.bucket < :d_to)
                           OR (b.grain = 'hour' AND ((b.bucket >= :h1_from AND b.bucket < :h1_to)
                                                 OR (b.bucket >= :h2_from AND b.bucket < :h2_to))))))
       OR k.key IN (SELECT :key_column
                    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
                    WHERE (h.start_time >= :e1_from AND h.start_time < :e1_to)
                       OR (h.start_time >= :e2_from AND h.start_time < :e2_to)))
