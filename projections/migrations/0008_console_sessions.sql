-- Admin console sign-ins. Only a hash of the cookie's secret is stored; a row is revoked,
-- never deleted, at sign-out, so a stolen cookie stops working at once and sessions can be
-- listed and ended from the database. The token behind a session is checked on every
-- request: revoking it ends its sessions too. No foreign keys: a projection rebuild
-- empties and refills tenants and tokens, and must not be blocked by a sign-in.
CREATE TABLE console_sessions (
    session_sha256 bytea       PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    token_id       uuid        NOT NULL,
    csrf_token     text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,  -- absolute expiry, fixed at sign-in
    revoked_at     timestamptz,
    source_ip      text,
    user_agent     text
);
CREATE INDEX console_sessions_token_idx ON console_sessions (token_id);
