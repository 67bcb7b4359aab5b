ALTER TABLE threat_report_rows DROP CONSTRAINT threat_report_rows_report_check;
ALTER TABLE threat_report_rows ADD CONSTRAINT threat_report_rows_report_check
    CHECK (report IN ('hash', 'file-type', 'ip-pair', 'protocol'));
-- The hash and IP-pair rows come back with `heyboss projections rebuild threat_hits` on the code
-- that keeps them.
