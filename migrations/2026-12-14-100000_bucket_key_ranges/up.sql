-- The time buckets of the many-key reports (hashes, IP pairs) by key, then grain and bucket.
-- The threshold walk counts a few keys over a range from their buckets
-- (`src/threats/sql/keys_in_range_by_buckets.sql`): by the primary key (bucket before key) that
-- was one probe per key and whole day or hour, about 1,000 probes for 20 IP pairs over 30 days
-- (5 buffers each); by this index it is one range per key and grain (3 a key). The figures are
-- not included: a bucket's update by the ingest (its hits, max score, last seen) then changes no
-- indexed column and stays a HOT update where its page has room (39% of them in the ingest
-- bench). The few-key reports (file types, protocols) are left out: they are never walked.
CREATE INDEX threat_report_buckets_key_ranges ON threat_report_buckets (report, view_id, key, grain, bucket)
    WHERE report IN ('hash', 'ip-pair');
