DROP INDEX events_past_schema_idx;
