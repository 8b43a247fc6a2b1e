-- Every key of tenant data starts with tenant_id (issue 12 item 1: audit_identities was keyed
-- by user id alone, and a PUT of tenant A naming B's user id put B's userName in A's log).
-- Each block runs only where its tables exist in the current schema: a projection rebuild
-- replays this file into a scratch schema that holds one projection's tables.
DO $$
BEGIN
    IF to_regclass(format('%I.users_view', current_schema())) IS NOT NULL THEN
        ALTER TABLE users_view DROP CONSTRAINT users_view_pkey;
        ALTER TABLE users_view ADD CONSTRAINT users_view_pkey PRIMARY KEY (tenant_id, id);
    END IF;

    IF to_regclass(format('%I.groups_view', current_schema())) IS NOT NULL THEN
        ALTER TABLE groups_view DROP CONSTRAINT groups_view_pkey;
        ALTER TABLE groups_view ADD CONSTRAINT groups_view_pkey PRIMARY KEY (tenant_id, id);
        ALTER TABLE group_members DROP CONSTRAINT group_members_pkey;
        ALTER TABLE group_members ADD CONSTRAINT group_members_pkey PRIMARY KEY (tenant_id, group_id, user_id);
        DROP INDEX group_members_user_idx;
        CREATE INDEX group_members_user_idx ON group_members (tenant_id, user_id);
    END IF;

    IF to_regclass(format('%I.audit_identities', current_schema())) IS NOT NULL THEN
        -- User ids are unique across tenants (the gateway draws them), so each existing row
        -- belongs to the tenant whose user has that id.
        ALTER TABLE audit_identities ADD COLUMN tenant_id uuid;
        UPDATE audit_identities AS a SET tenant_id = v.tenant_id FROM users_view AS v WHERE v.id = a.user_id;
        DELETE FROM audit_identities WHERE tenant_id IS NULL;
        ALTER TABLE audit_identities ALTER COLUMN tenant_id SET NOT NULL;
        ALTER TABLE audit_identities DROP CONSTRAINT audit_identities_pkey;
        ALTER TABLE audit_identities ADD CONSTRAINT audit_identities_pkey PRIMARY KEY (tenant_id, user_id);
        ALTER TABLE audit_trail DROP CONSTRAINT audit_trail_event_id_key;
        ALTER TABLE audit_trail ADD CONSTRAINT audit_trail_event_id_key UNIQUE (tenant_id, event_id);
        ALTER TABLE provisioning_log DROP CONSTRAINT provisioning_log_id_key;
        ALTER TABLE provisioning_log ADD CONSTRAINT provisioning_log_id_key UNIQUE (tenant_id, id);
    END IF;
END
$$;
