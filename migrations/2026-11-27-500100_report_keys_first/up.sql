-- The report tables are read by (report, key) (a report's signatures and group rows of given keys,
-- the maximum after a lowering rescore, a signature's regrouping) and written by their whole key.
-- With the key before the signature or group, the primary key serves those reads and the separate
-- (report, key) indexes go: one index fewer to update per report row of an ingest batch, and to
-- build in a rebuild. (Nothing reads these tables by (report, signature) or (report, group) with
-- the key unknown: rankings use threat_report_groups_rank_idx.)
ALTER TABLE threat_report_rows DROP CONSTRAINT threat_report_rows_pkey;
ALTER TABLE threat_report_rows ADD CONSTRAINT threat_report_rows_pkey PRIMARY KEY (report, key, signature);
DROP INDEX threat_report_rows_key_idx;

ALTER TABLE threat_report_groups DROP CONSTRAINT threat_report_groups_pkey;
ALTER TABLE threat_report_groups ADD CONSTRAINT threat_report_groups_pkey PRIMARY KEY (report, key, group_name);
DROP INDEX threat_report_groups_key_idx;
