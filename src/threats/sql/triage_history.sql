-- A subject's triage marks that the viewer may read (every signature the mark is about is
-- visible to them), newest first, with who made them.
SELECT t.position, t.status, t.note, t.recorded_at, coalesce(u.display_name, '') AS actor,
       to_char(t.recorded_at AT TIME ZONE 'UTC', 'FMDD Mon YYYY HH24:MI "UTC"') AS recorded
FROM threat_triage t LEFT JOIN users u ON u.id = t.actor_id
WHERE t.subject_kind = :kind AND t.subject = :subject AND NOT EXISTS (
      SELECT 1 FROM unnest(t.signatures) AS x(name) LEFT JOIN threat_signatures s ON s.name = x.name
      WHERE NOT coalesce(:visible, false))
ORDER BY t.position DESC
LIMIT 200
