-- The day rows again, each the sum of its day's hour rows (UTC days, as the projection writes).
INSERT INTO threat_report_buckets (report, view_id, grain, bucket, key, hits, max_score, last_seen)
SELECT report, view_id, 'day', date_trunc('day', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', key,
       sum(hits)::int4, max(max_score), max(last_seen)
FROM threat_report_buckets
WHERE grain = 'hour' AND report IN ('hash', 'ip-pair')
GROUP BY 1, 2, 3, 4, 5;
