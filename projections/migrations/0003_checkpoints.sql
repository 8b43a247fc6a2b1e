-- Where each catch-up projection has got to in the log.
CREATE TABLE projection_checkpoints (
    name           text        PRIMARY KEY,
    transaction_id bigint      NOT NULL,
    position       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
