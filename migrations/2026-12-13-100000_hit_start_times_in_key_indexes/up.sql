-- A hit's session start in the hash and IP-pair indexes of `threat_hits` (as an included
-- column: the keys and their order are unchanged, so every plan that used them still can). A
-- hash or IP-pair report over a bounded range asks, per (key, signature) whose hits span the
-- range, whether one hit is inside it (`sql/hash_signatures_in_range.sql`,
-- `sql/pair_signatures_in_range.sql`), and the threshold walk counts a light key's hits in the
-- range (`sql/keys_in_range.sql`): both read each hit's start from the table before, one heap
-- page a hit (9,200 buffers for the signatures of ten heavy hashes over a week), and from the
-- index now (3,500).
DROP INDEX threat_hits_md5_idx;
CREATE INDEX threat_hits_md5_idx ON threat_hits (md5, signature, score) INCLUDE (start_time);
DROP INDEX threat_hits_pair_idx;
CREATE INDEX threat_hits_pair_idx ON threat_hits (source_ip, destination_ip, signature, score) INCLUDE (start_time);
