-- An idempotency key is bound to the command it was first used for: a digest of the request
-- (route and form fields). The same key with another command is refused, never answered with the
-- first command's outcome. Keys stored before this migration have no fingerprint and keep
-- answering as before.
ALTER TABLE command_outcomes ADD COLUMN fingerprint TEXT;
