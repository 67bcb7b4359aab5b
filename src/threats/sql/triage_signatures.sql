-- The signatures of a subject's hits that the viewer may see: what a triage by them is about.
SELECT DISTINCT h.signature AS name
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE :hits_of
ORDER BY 1
