ALTER TABLE command_outcomes DROP COLUMN fingerprint;
