ALTER TABLE threat_hash_names DROP COLUMN first_seen, DROP COLUMN last_seen;
