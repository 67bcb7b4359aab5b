-- The many-key reports (hashes, IP pairs) keep hour buckets only: their keys have a few hits
-- each, so a day row summed about as few hour rows as there were hits, and cost the ingest a
-- row written per hit. A range sums their hour rows instead (`buckets::Plan::for_report`).
DELETE FROM threat_report_buckets WHERE grain = 'day' AND report IN ('hash', 'ip-pair');
