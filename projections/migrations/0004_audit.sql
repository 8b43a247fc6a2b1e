-- One row per event that changed a user, a token or a tenant. ``seq`` is gapless and
-- written by one projector in log order: the export cursor, stable across dump/restore.
CREATE TABLE audit_trail (
    seq               bigint      PRIMARY KEY,
    event_id          uuid        NOT NULL UNIQUE,
    position          bigint      NOT NULL,
    recorded_at       timestamptz NOT NULL,
    tenant_id         uuid        NOT NULL,
    user_id           uuid,
    user_name         text,
    action            text        NOT NULL,
    attribute         text,
    old_value         jsonb,
    new_value         jsonb,
    actor_token_id    text,
    actor_description text,
    actor_owner       text,
    request_id        text,
    source_ip         text,
    user_agent        text
);
CREATE INDEX audit_trail_tenant_seq_idx ON audit_trail (tenant_id, seq);
CREATE INDEX audit_trail_tenant_user_idx ON audit_trail (tenant_id, user_id, seq);
CREATE INDEX audit_trail_tenant_time_idx ON audit_trail (tenant_id, recorded_at);

-- One row per SCIM write request, successes and failures alike.
CREATE TABLE provisioning_log (
    seq                bigint      PRIMARY KEY,
    id                 uuid        NOT NULL UNIQUE,  -- the first event's id
    position           bigint      NOT NULL,
    recorded_at        timestamptz NOT NULL,
    tenant_id          uuid        NOT NULL,
    request_id         text,
    method             text,
    path               text,
    action             text        NOT NULL,
    target_id          uuid,
    target_user_name   text,
    target_external_id text,
    result             text        NOT NULL,
    status             integer     NOT NULL,
    scim_type          text,
    detail             text,
    changed_attributes text[]      NOT NULL DEFAULT '{}',
    ignored_attributes text[]      NOT NULL DEFAULT '{}',
    duration_ms        double precision,
    actor_token_id     text,
    actor_description  text,
    actor_owner        text,
    source_ip          text,
    user_agent         text
);
CREATE INDEX provisioning_log_tenant_seq_idx ON provisioning_log (tenant_id, seq);
CREATE INDEX provisioning_log_tenant_target_idx ON provisioning_log (tenant_id, target_id, seq);
CREATE INDEX provisioning_log_tenant_time_idx ON provisioning_log (tenant_id, recorded_at);

-- The projector's memory of who a user was at each point: userName and externalId.
CREATE TABLE audit_identities (
    user_id     uuid PRIMARY KEY,
    user_name   text,
    external_id text
);
