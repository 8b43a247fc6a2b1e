CREATE TABLE tenants (
    tenant_id  uuid        PRIMARY KEY,
    name       text        NOT NULL,
    profile    text        NOT NULL,
    settings   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL,
    position   bigint      NOT NULL,
    CONSTRAINT tenants_name_key UNIQUE (name)
);

CREATE TABLE tokens (
    token_id      uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (tenant_id),
    owner         text        NOT NULL,
    description   text        NOT NULL,
    scopes        text[]      NOT NULL,
    secret_sha256 bytea       NOT NULL,
    issued_at     timestamptz NOT NULL,
    revoked_at    timestamptz,
    position      bigint      NOT NULL,
    CONSTRAINT tokens_secret_sha256_key UNIQUE (secret_sha256)
);
CREATE INDEX tokens_tenant_idx ON tokens (tenant_id);
