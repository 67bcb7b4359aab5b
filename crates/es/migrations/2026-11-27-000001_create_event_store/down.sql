DROP TABLE command_outcomes;
DROP TABLE events;
DROP FUNCTION events_reject_change();
