CREATE INDEX threat_report_groups_key_idx ON threat_report_groups (report, key);
ALTER TABLE threat_report_groups DROP CONSTRAINT threat_report_groups_pkey;
ALTER TABLE threat_report_groups ADD CONSTRAINT threat_report_groups_pkey PRIMARY KEY (report, group_name, key);

CREATE INDEX threat_report_rows_key_idx ON threat_report_rows (report, key);
ALTER TABLE threat_report_rows DROP CONSTRAINT threat_report_rows_pkey;
ALTER TABLE threat_report_rows ADD CONSTRAINT threat_report_rows_pkey PRIMARY KEY (report, signature, key);
