-- The visible signatures of some IP pairs ("source destination") among the hits of sessions
-- started in [from, to), from each (pair, signature)'s first and last seen
-- (`threat_pair_signature_times`): a row that does not overlap the range has no hit in it; one
-- whose first or last seen is inside it has (every range open at its end). A row spanning the
-- whole range has a hit in it if it had one on a whole day of the range [d_from, d_to) (one
-- index range per pair of `threat_pair_signature_days`, read once into a hashed subplan, not a
-- probe per signature), else only if a probe of its hits finds one on the range's partial days,
-- [from, d_from) or [d_to, to). (Joined to the days' distinct rows instead, the planner sorted
-- them: 10,000 rows for ten pairs over six days, 8 ms.)
SELECT c.key, string_agg(c.signature, ';' ORDER BY c.signature) AS signatures
FROM (SELECT k.key, n.source_ip, n.destination_ip, n.signature, n.first_seen, n.last_seen
      FROM unnest(:keys::text[]) AS k(key)
      JOIN threat_pair_signature_times n
        ON n.source_ip = split_part(k.key, ' ', 1) AND n.destination_ip = split_part(k.key, ' ', 2)
      JOIN threat_signatures s ON s.name = n.signature AND :visible
      WHERE n.last_seen >= :from AND n.first_seen < :to) c
WHERE c.first_seen >= :from OR c.last_seen < :to
   OR (c.source_ip, c.destination_ip, c.signature) IN
      (SELECT d.source_ip, d.destination_ip, d.signature
       FROM unnest(:keys::text[]) AS k(key)
       JOIN threat_pair_signature_days d
         ON d.source_ip = split_part(k.key, ' ', 1) AND d.destination_ip = split_part(k.key, ' ', 2)
        AND d.day >= :d_from AND d.day < :d_to)
   OR EXISTS (SELECT 1 FROM threat_hits h
              WHERE h.source_ip = c.source_ip AND h.destination_ip = c.destination_ip
                AND h.signature = c.signature AND h.start_time >= :from AND h.start_time < :d_from)
   OR EXISTS (SELECT 1 FROM threat_hits h
              WHERE h.source_ip = c.source_ip AND h.destination_ip = c.destination_ip
                AND h.signature = c.signature AND h.start_time >= :d_to AND h.start_time < :to)
GROUP BY c.key
