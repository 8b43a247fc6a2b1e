-- Every key of the log starts with the tenant, so a tenant's rows can live on their own shard
-- (Citus distributes by tenant_id and requires it in every unique constraint) and no lookup
-- by stream, event id or idempotency key can reach another tenant's events.
-- The constraint names are unchanged: eventstore/store.py translates them to errors.
ALTER TABLE events DROP CONSTRAINT events_stream_version_key;
ALTER TABLE events ADD CONSTRAINT events_stream_version_key UNIQUE (tenant_id, stream_id, stream_version);
ALTER TABLE events DROP CONSTRAINT events_event_id_key;
ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (tenant_id, event_id);
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (tenant_id, position);

-- Now covered by the primary key and the stream key.
DROP INDEX events_tenant_position_idx;
DROP INDEX events_tenant_stream_idx;

DROP INDEX events_idempotency_key_idx;
CREATE INDEX events_idempotency_key_idx ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
