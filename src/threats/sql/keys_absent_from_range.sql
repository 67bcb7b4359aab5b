-- How many keys of a clearance set's all-time ranking (less the :hidden ones) have no visible hit
-- in [from, to): those
-- whose visible hits outside the range are all of their hits. Reads the hits outside the range.
SELECT count(*)::int8 AS n
FROM (
    SELECT :key_column AS key, count(*) AS hits
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE h.start_time < :from OR h.start_time >= :to
    GROUP BY 1
) o
JOIN threat_report_views v ON v.report = :report AND v.view_id = :view AND v.key = o.key
WHERE v.hits = o.hits AND v.key <> ALL(:hidden::text[])
