-- Token expiry and rotation (TokenIssued.expires_at, TokenRotated): the previous secret of
-- a rotated token is accepted until previous_valid_until.
ALTER TABLE tokens
    ADD COLUMN expires_at             timestamptz,
    ADD COLUMN previous_secret_sha256 bytea,
    ADD COLUMN previous_valid_until   timestamptz;
CREATE INDEX tokens_previous_secret_idx ON tokens (previous_secret_sha256)
    WHERE previous_secret_sha256 IS NOT NULL;

-- When each token last authenticated, written at most once a minute per token and
-- process. Operational state, not a fact of the log: it is no projection, survives a
-- rebuild of tenancy, and has no foreign key so a rebuild can empty tokens.
CREATE TABLE IF NOT EXISTS token_usage (
    token_id     uuid        PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);
