-- Per-signature rows only for the reports with few keys (file types, protocols). The hash and
-- IP-pair reports have about one key per few hits, so their per-signature rows were nearly one per
-- hit: a second copy of threat_hits that every scoring event upserted. Their views' maxima and
-- their keys' signatures are read from threat_hits' (key, signature, score) indexes instead.
DELETE FROM threat_report_rows WHERE report IN ('hash', 'ip-pair');
ALTER TABLE threat_report_rows DROP CONSTRAINT threat_report_rows_report_check;
ALTER TABLE threat_report_rows ADD CONSTRAINT threat_report_rows_report_check
    CHECK (report IN ('file-type', 'protocol'));
