-- The first and last seen of each (IP pair, signature) in its primary key (as included columns:
-- the key and its uniqueness are unchanged, so every upsert and lookup that used it still can).
-- An IP-pair report over a range reads, for each of its rows, every (pair, signature) row's times
-- (`sql/pair_signatures_in_range.sql`): the rows of one pair lie on as many heap pages as it has
-- signatures (written hit by hit), 1,887 pages for ten IP pairs; from the index, 40. The times
-- change rarely (a batch writes a row only when its times widen: 1,518 updates to 96,414 inserts
-- in the ingest bench), so the index seldom costs an update its HOT path. `threat_hash_names`
-- keeps its key as it was: its rows are updated more (a fall of the least name too), and a
-- hash's signatures were read in 1.9 ms.
ALTER TABLE threat_pair_signature_times DROP CONSTRAINT threat_pair_signature_times_pkey,
    ADD CONSTRAINT threat_pair_signature_times_pkey PRIMARY KEY (source_ip, destination_ip, signature)
        INCLUDE (first_seen, last_seen);
