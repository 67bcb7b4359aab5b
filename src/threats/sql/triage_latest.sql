-- The latest mark the viewer may read of each subject of a kind (of the given keys, or all).
SELECT subject, status FROM (
    SELECT DISTINCT ON (t.subject) t.subject, t.status
    FROM threat_triage t
    WHERE t.subject_kind = :kind AND :which AND NOT EXISTS (
      SELECT 1 FROM unnest(t.signatures) AS x(name) LEFT JOIN threat_signatures s ON s.name = x.name
      WHERE NOT coalesce(:visible, false))
    ORDER BY t.subject, t.position DESC
) latest
WHERE :status_filter
