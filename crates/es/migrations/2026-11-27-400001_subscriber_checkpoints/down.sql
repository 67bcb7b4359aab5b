-- Nothing: in the heyboss application the table belongs to migration 2026-11-27-400000, and
-- reverting this one must not drop it.
SELECT 1;
