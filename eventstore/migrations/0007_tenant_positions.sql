-- Each tenant's own dense order (issue 19). A cross-shard snapshot does not exist (Citus
-- transaction ids are per node and change when a shard moves), so catch-up readers follow
-- ``tenant_position`` instead of (transaction_id, position): 1, 2, 3... per tenant, assigned
-- by the append from the tenant's head row. The head row is locked until the append commits,
-- so one tenant's appends commit in tenant_position order and a rolled-back append gives its
-- numbers back: a reader that sees n + 1 has already been able to see n.
CREATE TABLE tenant_heads (
    tenant_id uuid   PRIMARY KEY,
    position  bigint NOT NULL CHECK (position >= 0)
);

ALTER TABLE events ADD COLUMN tenant_position bigint;

-- Number the existing log in the order the global catch-up reader read it, so a projection's
-- old global checkpoint maps to a prefix of each tenant's order (projections 0012).
-- The append-only trigger is lifted for this one backfill of a new column, inside the
-- migration's transaction.
ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete;
UPDATE events AS e SET tenant_position = n.tenant_position
FROM (SELECT tenant_id, position,
             row_number() OVER (PARTITION BY tenant_id ORDER BY transaction_id, position) AS tenant_position
      FROM events) AS n
WHERE e.tenant_id = n.tenant_id AND e.position = n.position;
ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete;

ALTER TABLE events ALTER COLUMN tenant_position SET NOT NULL;
ALTER TABLE events ADD CONSTRAINT events_tenant_position_key UNIQUE (tenant_id, tenant_position);

INSERT INTO tenant_heads (tenant_id, position)
SELECT tenant_id, max(tenant_position) FROM events GROUP BY tenant_id;
