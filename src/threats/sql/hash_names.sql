-- A filename and file type of a visible hit of each hash.
SELECT DISTINCT ON (h.md5) h.md5 AS key, h.filename, h.file_type
FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
WHERE h.md5 = ANY(:keys)
ORDER BY h.md5, h.filename
