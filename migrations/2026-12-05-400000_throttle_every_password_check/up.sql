-- What a failure was: a sign-in, or the current password asked for by a password change. Both
-- count against the username; only sign-ins count against the client address (a password
-- change is one signed-in user guessing at one account, which the username limit covers).
ALTER TABLE login_failures ADD COLUMN attempt TEXT NOT NULL DEFAULT 'sign-in';

-- Sign-up attempts per client address, so that one address cannot create accounts or probe
-- taken usernames without limit.
CREATE TABLE signup_attempts (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_ip    TEXT        NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX signup_attempts_client_ip_idx ON signup_attempts (client_ip, attempted_at);
