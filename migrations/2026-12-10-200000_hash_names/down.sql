DROP TABLE threat_hash_names;
