-- How far the reports ($1, a catch-up subscriber) are behind: the committed events of the types
-- they read ($2) after their checkpoint, at most $3 of them, the age of the oldest, and whether a
-- signature move is among them.
WITH c AS (SELECT coalesce(max(last_transaction_id), 0) AS t, coalesce(max(last_position), 0) AS p
           FROM subscriber_checkpoints WHERE name = $1),
     behind AS (SELECT e.recorded_at FROM events e, c
                WHERE (e.transaction_id, e.position) > (c.t, c.p) AND (e.event_type || '') = ANY($2)
                ORDER BY e.transaction_id, e.position LIMIT $3)
SELECT (SELECT count(*) FROM behind) AS events,
       coalesce((SELECT extract(epoch FROM now() - min(recorded_at)) FROM behind), 0)::int8 AS seconds,
       EXISTS (SELECT 1 FROM events e, c WHERE e.event_type = 'SignatureRevised'
               AND (e.transaction_id, e.position) > (c.t, c.p)) AS signature_moves_pending
