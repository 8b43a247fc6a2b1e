-- Tamper evidence (docs/integrity.md). One leaf per event, numbered densely per tenant in
-- the order the sealer read the log: seq is the leaf's index in the tenant's RFC 9162 tree.
CREATE TABLE event_seals (
    tenant_id      uuid        NOT NULL,
    seq            bigint      NOT NULL CHECK (seq >= 0),
    position       bigint      NOT NULL,
    transaction_id bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    leaf_hash      bytea       NOT NULL CHECK (length(leaf_hash) = 32),
    sealed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    CONSTRAINT event_seals_event_id_key UNIQUE (tenant_id, event_id)
);

-- The sealer's running state per tenant: the tree's size, the roots of the perfect
-- subtrees it is made of (32 bytes each, largest first), and the last signed checkpoint.
CREATE TABLE integrity_heads (
    tenant_id       uuid        PRIMARY KEY,
    tree_size       bigint      NOT NULL,
    frontier        bytea       NOT NULL,
    checkpoint_size bigint      NOT NULL DEFAULT 0,
    checkpoint_at   timestamptz NOT NULL DEFAULT now()
);

-- Signed checkpoints (C2SP signed notes), the copies SIEMs are meant to keep elsewhere.
CREATE TABLE integrity_checkpoints (
    tenant_id uuid        NOT NULL,
    tree_size bigint      NOT NULL CHECK (tree_size > 0),
    root_hash bytea       NOT NULL CHECK (length(root_hash) = 32),
    note      text        NOT NULL,
    signed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tree_size)
);

-- Seals and checkpoints are append-only like the events they vouch for: the application
-- role cannot rewrite them; only a superuser who bypasses triggers can, and verify sees it.
CREATE FUNCTION integrity_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER event_seals_append_only BEFORE UPDATE OR DELETE ON event_seals
    FOR EACH ROW EXECUTE FUNCTION integrity_reject_change();
CREATE TRIGGER event_seals_no_truncate BEFORE TRUNCATE ON event_seals
    FOR EACH STATEMENT EXECUTE FUNCTION integrity_reject_change();
CREATE TRIGGER integrity_checkpoints_append_only BEFORE UPDATE OR DELETE ON integrity_checkpoints
    FOR EACH ROW EXECUTE FUNCTION integrity_reject_change();
CREATE TRIGGER integrity_checkpoints_no_truncate BEFORE TRUNCATE ON integrity_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION integrity_reject_change();
