-- Per-subject data keys for crypto-shredding (eventstore/crypto.py). Each key is wrapped by a
-- key-encryption key that never enters the database; ``kek_id`` names which one. Erasure
-- deletes the row: the ciphertext in ``events.data`` stays, byte for byte, and is noise.
CREATE TABLE subject_keys (
    tenant_id uuid        NOT NULL,
    subject   text        NOT NULL,  -- "user:<id>", "refused:<day>" (rolling), "index" (lookups)
    kek_id    text        NOT NULL,
    wrapped   bytea       NOT NULL,
    created   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject)
);
