-- The sessions list as it stood before $2: each session discovered by then, its latest score and
-- contributor then, and its files then (the sessions projection's rules, as in its replay_range).
WITH e AS MATERIALIZED (
    SELECT event_type, payload AS p, transaction_id, position FROM events
    WHERE stream_type = $1 AND recorded_at < $2
      AND event_type IN ('SessionDiscovered', 'SessionScored', 'FileDiscovered')),
per_session AS (
    SELECT p->>'session_id' AS id,
           (array_agg(p) FILTER (WHERE event_type = 'SessionDiscovered'))[1] AS discovered,
           (array_agg(p ORDER BY transaction_id DESC, position DESC)
               FILTER (WHERE event_type = 'SessionScored'))[1] AS scored,
           (count(*) FILTER (WHERE event_type = 'FileDiscovered'))::int4 AS files
    FROM e GROUP BY 1)
SELECT id AS session_id,
       (discovered->>'start_time')::timestamptz AS start_time,
       discovered->>'protocol' AS protocol,
       discovered->>'source_ip' AS source_ip,
       discovered->>'destination_ip' AS destination_ip,
       (discovered->>'source_port')::int4 AS source_port,
       (discovered->>'destination_port')::int4 AS destination_port,
       (scored->>'score')::int4 AS latest_score,
       scored->>'threat_contributor' AS threat_contributor,
       files AS file_count
FROM per_session WHERE discovered IS NOT NULL
