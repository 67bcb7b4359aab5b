DROP INDEX events_causation_id_idx;
CREATE INDEX events_causation_id_idx ON events ((metadata ->> 'causation_id'));
