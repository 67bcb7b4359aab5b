-- Which of these threat contributors name (in any case) a signature the viewer may not see.
SELECT DISTINCT c.contributor
FROM unnest(:contributors::text[]) AS c(contributor)
JOIN threat_signatures s ON lower(s.name) = lower(c.contributor)
WHERE NOT :visible
