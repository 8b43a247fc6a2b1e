-- One case-folding rule (gateway.domain.identifiers.fold), computed in Python only.
-- users_view.user_name_lower, emails, given_name, family_name and display_name now hold the
-- folded key, and attributes_folded is the attribute document with every case-insensitive
-- string folded: filters compare those with a folded parameter and SQL never calls lower().
-- Existing rows are re-folded by Python right after this migration (gateway.database).
-- Statements are idempotent: a rebuild replays this file into a scratch schema for either
-- table, and the other table's statements then find the live, already migrated one.
ALTER TABLE users_view ADD COLUMN IF NOT EXISTS attributes_folded jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE groups_view ADD COLUMN IF NOT EXISTS display_name_folded text NOT NULL DEFAULT '';
DROP INDEX IF EXISTS groups_view_display_name_idx;
CREATE INDEX IF NOT EXISTS groups_view_display_name_folded_idx ON groups_view (tenant_id, display_name_folded);
