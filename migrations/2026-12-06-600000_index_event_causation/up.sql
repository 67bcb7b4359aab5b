-- The event page (`/events/{position}`) follows what caused what through the metadata: the
-- events of one command, those a command caused, and the chain of one correlation.
CREATE INDEX events_command_id_idx ON events ((metadata ->> 'command_id'));
CREATE INDEX events_causation_id_idx ON events ((metadata ->> 'causation_id'));
CREATE INDEX events_correlation_id_idx ON events ((metadata ->> 'correlation_id'), position);
