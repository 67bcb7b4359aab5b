-- Read model of the user streams, owned by the `users` projection.
CREATE TABLE users (
    id            UUID        PRIMARY KEY,
    username      TEXT        NOT NULL,
    display_name  TEXT        NOT NULL,
    email         TEXT        NOT NULL,
    role          TEXT        NOT NULL CHECK (role IN ('student', 'staff', 'analyst', 'admin')),
    active        BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- Secrets are kept out of the event log (which admins can read): only argon2id hashes, here.
CREATE TABLE credentials (
    user_id       UUID        PRIMARY KEY,
    password_hash TEXT        NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Server-side sessions: revocable, in the database so that any instance can serve any request.
CREATE TABLE sessions (
    id_hash       TEXT        PRIMARY KEY,
    user_id       UUID        NOT NULL,
    csrf_token    TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- Failed logins, for throttling by username and by client address.
CREATE TABLE login_failures (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username     TEXT        NOT NULL,
    client_ip    TEXT        NOT NULL,
    failed_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_username_idx ON login_failures (lower(username), failed_at);
CREATE INDEX login_failures_client_ip_idx ON login_failures (client_ip, failed_at);
