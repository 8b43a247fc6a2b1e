-- The export's ``user=`` and ``actor=`` filters compare folded keys, like every other lookup
-- (domain.identifiers.fold; SQL never calls lower(): see 0009). Each name they filter by gets
-- a folded twin, written by the audit projector beside it. Rows written before this migration
-- are folded right after it, in Python (gateway.database -> projections.audit.refold).
ALTER TABLE audit_trail ADD COLUMN user_name_folded text, ADD COLUMN actor_owner_folded text;
ALTER TABLE provisioning_log ADD COLUMN target_user_name_folded text, ADD COLUMN actor_owner_folded text;
