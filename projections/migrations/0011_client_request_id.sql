-- The gateway's own request id (request_id) is server-generated and unique; the caller's
-- X-Request-Id is kept beside it for correlation only, never as a key.
ALTER TABLE audit_trail ADD COLUMN client_request_id text;
ALTER TABLE provisioning_log ADD COLUMN client_request_id text;
CREATE INDEX audit_trail_tenant_request_idx ON audit_trail (tenant_id, request_id);
CREATE INDEX audit_trail_tenant_client_request_idx ON audit_trail (tenant_id, client_request_id)
    WHERE client_request_id IS NOT NULL;
CREATE INDEX provisioning_log_tenant_request_idx ON provisioning_log (tenant_id, request_id);
CREATE INDEX provisioning_log_tenant_client_request_idx ON provisioning_log (tenant_id, client_request_id)
    WHERE client_request_id IS NOT NULL;
