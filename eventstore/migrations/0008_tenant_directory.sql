-- Which database holds each tenant (issue 19's shard seam). Kept on the home database, next
-- to the reference tables (tenants, tokens); a tenant not listed lives on the home database.
-- With Citus this table is not needed: Citus routes by tenant_id itself.
CREATE TABLE tenant_directory (
    tenant_id uuid        PRIMARY KEY,
    shard     text        NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now()
);

-- A tenant moved to another database (eventstore/moves.py): its head row here names the
-- target, and the append refuses the tenant from then on. Its events stay (append-only).
ALTER TABLE tenant_heads ADD COLUMN moved_to text;
