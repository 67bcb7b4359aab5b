DROP INDEX events_correlation_id_idx;
DROP INDEX events_causation_id_idx;
DROP INDEX events_command_id_idx;
