ALTER TABLE threat_pair_signature_times DROP CONSTRAINT threat_pair_signature_times_pkey,
    ADD CONSTRAINT threat_pair_signature_times_pkey PRIMARY KEY (source_ip, destination_ip, signature);
