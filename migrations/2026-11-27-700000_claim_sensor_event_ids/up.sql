-- The ingest claims a batch's event ids first (INSERT ... ON CONFLICT DO NOTHING RETURNING): the
-- ids it gets back are new, the rest are duplicates. That is one pass over this table's index
-- per event instead of a probe and then an insert, and the events' positions are not known yet
-- at that point. Nothing read the position.
ALTER TABLE sensor_event_ids DROP COLUMN position;
