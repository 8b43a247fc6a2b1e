-- Groups (rfc profile): one row per group, and one row per membership, so adding or
-- removing a member touches one row whatever the group's size.
CREATE TABLE groups_view (
    id                 uuid        PRIMARY KEY,
    tenant_id          uuid        NOT NULL,
    display_name       text        NOT NULL,
    external_id        text,
    deleted            boolean     NOT NULL DEFAULT false,
    version            integer     NOT NULL,
    created            timestamptz NOT NULL,
    last_modified      timestamptz NOT NULL,
    position           bigint      NOT NULL
);
CREATE INDEX groups_view_tenant_idx ON groups_view (tenant_id, created, id);
CREATE INDEX groups_view_display_name_idx ON groups_view (tenant_id, lower(display_name));
CREATE INDEX groups_view_external_id_idx ON groups_view (tenant_id, external_id);

CREATE TABLE group_members (
    group_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    tenant_id uuid NOT NULL,
    display   text,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_idx ON group_members (user_id);
