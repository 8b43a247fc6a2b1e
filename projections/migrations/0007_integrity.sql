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
    CONSTRAINT event_seals_event_id_key UNIQUE (event_id)
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
