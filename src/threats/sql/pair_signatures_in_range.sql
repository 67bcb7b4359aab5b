-- The visible signatures of some IP pairs ("source destination") among the hits of sessions
-- started in [from, to), from each (pair, signature)'s first and last seen
-- (`threat_pair_signature_times`): a row that does not overlap the range has no hit in it; one
-- whose first or last seen is inside it has (every range open at its end); only a row spanning
-- the whole range probes its hits, once.
SELECT k.key, string_agg(n.signature, ';' ORDER BY n.signature) AS signatures
FROM unnest(:keys::text[]) AS k(key)
JOIN threat_pair_signature_times n
  ON n.source_ip = split_part(k.key, ' ', 1) AND n.destination_ip = split_part(k.key, ' ', 2)
JOIN threat_signatures s ON s.name = n.signature AND :visible
CROSS JOIN LATERAL ((SELECT 1 WHERE n.first_seen >= :from OR n.last_seen < :to)
                    UNION ALL
                    (SELECT 1 FROM threat_hits h
                      WHERE h.source_ip = n.source_ip AND h.destination_ip = n.destination_ip
                        AND h.signature = n.signature
                        AND h.start_time >= :from AND h.start_time < :to
                      LIMIT 1)
                    LIMIT 1) AS hit
WHERE n.last_seen >= :from AND n.first_seen < :to
GROUP BY k.key
