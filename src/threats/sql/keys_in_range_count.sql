-- How many keys of a report have a visible hit in [from, to) for one clearance set (:view), less
-- the :hidden ones: the keys whose hour string (`threat_report_key_hours`) has a bit in the
-- range's whole hours (`IN_WHOLE_HOURS` in `threshold.rs`), one row a key and nothing to gather or sort; then the
-- keys of the visible hits of the unaligned edges that have none. The row count of
-- `top_from_buckets.sql` without summing anything (a hash `custom` range at 10,000,000 hits:
-- 85-99 ms as the distinct keys of the range's day and hour buckets).
SELECT (SELECT count(*) FROM threat_report_key_hours k
        WHERE k.report = :report AND k.view_id = :view AND k.key <> ALL(:hidden::text[])
          AND :in_whole_hours)
     + (SELECT count(DISTINCT e.key)
        FROM (SELECT :key_column AS key
              FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
              WHERE (h.start_time >= :e1_from AND h.start_time < :e1_to)
                 OR (h.start_time >= :e2_from AND h.start_time < :e2_to)) e
        WHERE e.key <> ALL(:hidden::text[])
          AND NOT EXISTS (SELECT FROM threat_report_key_hours k
                          WHERE k.report = :report AND k.view_id = :view AND k.key = e.key
                            AND :in_whole_hours))
       AS n
