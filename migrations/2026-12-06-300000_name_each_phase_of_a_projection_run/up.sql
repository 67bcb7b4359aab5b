-- The step a running rebuild or verify is at (preparing, replaying, indexing, analyzing,
-- swapping, comparing), so the projections page names it instead of "0 / 0" or "running" at 100%.
ALTER TABLE projection_runs ADD COLUMN phase TEXT NOT NULL DEFAULT '';
