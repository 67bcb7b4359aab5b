-- The visible signatures of some keys of a few-key report (file types, protocols) among the hits
-- of sessions started in a range: one probe per key and visible signature of the hours in which
-- that key had a hit of that signature, for the range's whole hours [h_from, h_to), and the
-- visible hits of its unaligned edges (less than an hour each), or instead the pairs of key and
-- visible signature the caller found in them (:known_keys, :known_signatures). (`LATERAL ...
-- LIMIT 1` keeps the planner from a semi-join that hashes every hour of the report.)
SELECT p.key, string_agg(p.signature, ';' ORDER BY p.signature) AS signatures
FROM (
    SELECT k.key, s.name AS signature
    FROM unnest(:keys::text[]) AS k(key)
    JOIN threat_signatures s ON :visible
    CROSS JOIN LATERAL (SELECT 1 FROM threat_report_signature_hours b
                        WHERE b.report = :report AND b.key = k.key AND b.signature = s.name
                          AND b.bucket >= :h_from AND b.bucket < :h_to
                        LIMIT 1) AS hour
    UNION
    SELECT :key_column, h.signature
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE h.start_time >= :e1_from AND h.start_time < :e1_to AND :key_column = ANY(:keys)
    UNION
    SELECT :key_column, h.signature
    FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND :visible
    WHERE h.start_time >= :e2_from AND h.start_time < :e2_to AND :key_column = ANY(:keys)
    UNION
    SELECT known.key, known.signature
    FROM unnest(:known_keys::text[], :known_signatures::text[]) AS known(key, signature)
) p
GROUP BY p.key
