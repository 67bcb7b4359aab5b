-- The hash and IP-pair rankings by each key's last seen. A key has a hit in a range open at its
-- end (every preset: 7d, 30d) exactly when its last seen (its visible hits' latest session start,
-- kept per clearance set) is inside it, so the page's row count for a preset is one index range
-- of the keys seen since `from` instead of the distinct keys of the range's buckets (a hash `7d`
-- count at 900,000 hits: 16-20 ms, its 22,000 keys in 7 days of buckets). An updated ranking row
-- was not a HOT update before (its hits are in the ranking's index), so this adds one index entry
-- per row a batch updates.
CREATE INDEX threat_report_views_last_seen ON threat_report_views (report, view_id, last_seen) INCLUDE (hits)
    WHERE report IN ('hash', 'ip-pair');
