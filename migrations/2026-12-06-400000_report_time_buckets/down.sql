DROP TABLE threat_report_buckets;
