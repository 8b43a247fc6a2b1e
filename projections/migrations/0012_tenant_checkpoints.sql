-- Catch-up projections keep one checkpoint per (projection, tenant): a tenant_position
-- (eventstore 0007). A projector claims a tenant's row with FOR UPDATE SKIP LOCKED, so several
-- projector processes share the tenants and never project one tenant's events twice.
CREATE TABLE projection_tenant_checkpoints (
    tenant_id       uuid        NOT NULL,
    name            text        NOT NULL,
    tenant_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

-- Carry over the global checkpoints: everything at or below one was projected, and 0007
-- numbered each tenant in that same order, so it is a prefix of each tenant's events.
INSERT INTO projection_tenant_checkpoints (tenant_id, name, tenant_position)
SELECT e.tenant_id, c.name, max(e.tenant_position)
FROM projection_checkpoints AS c
JOIN events AS e ON (e.transaction_id, e.position) <= (c.transaction_id, c.position)
GROUP BY e.tenant_id, c.name;
