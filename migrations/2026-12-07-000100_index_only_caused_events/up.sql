-- Only events caused by another (a reaction's, an import's) carry a causation id; a command's own
-- events, the sensors' among them, do not. The index kept an entry for each of those NULLs, one
-- more index write for every append. A lookup by causation id (`= $1`) implies NOT NULL, so the
-- planner uses the partial index for the same queries.
DROP INDEX events_causation_id_idx;
CREATE INDEX events_causation_id_idx ON events ((metadata ->> 'causation_id'))
    WHERE (metadata ->> 'causation_id') IS NOT NULL;
