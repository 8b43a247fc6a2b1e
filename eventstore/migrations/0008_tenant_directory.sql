-- Which database holds each tenant (issue 19's shard seam). Kept on the home database, next
-- to the reference tables (tenants, tokens); a tenant not listed lives on the home database.
-- With Citus this table is not needed: Citus routes by tenant_id itself.
CREATE TABLE tenant_directory (
    tenant_id uuid        PRIMARY KEY,
    shard     text        NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now()
);
