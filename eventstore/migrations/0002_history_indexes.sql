-- Reading history: one tenant's streams in order, and everything one actor (token) did.
CREATE INDEX events_tenant_stream_idx ON events (tenant_id, stream_id, stream_version);
CREATE INDEX events_actor_token_idx ON events ((metadata -> 'actor' ->> 'token_id'), position);
