-- A filename and file type of a visible hit of each hash: the least (filename, file type) over
-- the hash's signatures the viewer may see (`threat_hash_names` keeps it per hash and signature).
SELECT DISTINCT ON (n.md5) n.md5 AS key, n.filename, n.file_type
FROM threat_hash_names n JOIN threat_signatures s ON s.name = n.signature AND :visible
WHERE n.md5 = ANY(:keys)
ORDER BY n.md5, n.filename, n.file_type
