-- The export cursor ``seq`` counts per tenant (issue 19): each tenant's rows are written by
-- whichever projector holds that tenant's checkpoint, one at a time, in tenant order, so the
-- count is gapless per tenant; a global count would need one projector for every tenant.
-- Existing rows keep their numbers (cursors already handed out stay valid): they rise within
-- each tenant, and new rows continue from the tenant's highest.
ALTER TABLE audit_trail DROP CONSTRAINT audit_trail_pkey;
ALTER TABLE audit_trail ADD CONSTRAINT audit_trail_pkey PRIMARY KEY (tenant_id, seq);
DROP INDEX audit_trail_tenant_seq_idx;

ALTER TABLE provisioning_log DROP CONSTRAINT provisioning_log_pkey;
ALTER TABLE provisioning_log ADD CONSTRAINT provisioning_log_pkey PRIMARY KEY (tenant_id, seq);
DROP INDEX provisioning_log_tenant_seq_idx;
