-- Each day's keys of the many-key reports (hashes, IP pairs) in order of their hits, per
-- clearance set: the day walk (`src/threats/threshold.rs`, `day_walk`) reads the leaders of the
-- few days a short range touches, whose sum bounds any other key's hits in the range, and counts
-- exactly only the keys that could still be in the top rows. Without it a `24h` page summed every
-- key's buckets of the range (about 120,000 bucket rows at 10,000,000 hits).
CREATE INDEX threat_report_buckets_day_leaders ON threat_report_buckets (report, view_id, bucket, hits DESC)
    WHERE grain = 'day' AND report IN ('hash', 'ip-pair');
