-- The current user view: the fold of each user stream, kept inline with the append.
CREATE TABLE users_view (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    user_name          text        NOT NULL,
    user_name_lower    text        NOT NULL,
    external_id        text,
    emails             text[]      NOT NULL DEFAULT '{}',  -- lower-cased values, for eq lookups
    given_name         text,
    family_name        text,
    display_name       text,
    active             boolean     NOT NULL,
    active_assigned    boolean     NOT NULL DEFAULT true,
    deleted            boolean     NOT NULL DEFAULT false,
    permission_profile text,
    login_method       text        NOT NULL,
    version            integer     NOT NULL,
    created            timestamptz NOT NULL,
    last_modified      timestamptz NOT NULL,
    deactivated_at     timestamptz,
    attributes         jsonb       NOT NULL,  -- the SCIM attributes but id, meta and active
    position           bigint      NOT NULL
);

-- Case-insensitive uniqueness of userName per tenant, enforced here: a concurrent duplicate
-- create fails its append. A deleted (tombstoned) account frees its userName.
CREATE UNIQUE INDEX users_view_user_name_key ON users_view (tenant_id, user_name_lower) WHERE NOT deleted;
CREATE INDEX users_view_external_id_idx ON users_view (tenant_id, external_id);
CREATE INDEX users_view_emails_idx ON users_view USING gin (emails);
CREATE INDEX users_view_created_idx ON users_view (tenant_id, created, id);
CREATE INDEX users_view_last_modified_idx ON users_view (tenant_id, last_modified);
