ALTER TABLE projection_runs DROP COLUMN phase;
