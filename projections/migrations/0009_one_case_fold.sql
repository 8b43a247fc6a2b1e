-- One case-folding rule (gateway.domain.identifiers.fold), computed in Python only (issue 12
-- item 5). users_view.user_name_lower, emails, given_name, family_name and display_name now
-- hold the folded key, and attributes_folded is the attribute document with every
-- case-insensitive string folded: filters compare those with a folded parameter and SQL never
-- calls lower(). Existing rows are re-folded by Python right after this migration
-- (gateway.database -> projections.refold). Each block runs only where its table exists in
-- the current schema: a projection rebuild replays this file into a scratch schema.
DO $$
BEGIN
    IF to_regclass(format('%I.users_view', current_schema())) IS NOT NULL THEN
        ALTER TABLE users_view ADD COLUMN attributes_folded jsonb NOT NULL DEFAULT '{}'::jsonb;
    END IF;

    IF to_regclass(format('%I.groups_view', current_schema())) IS NOT NULL THEN
        ALTER TABLE groups_view ADD COLUMN display_name_folded text NOT NULL DEFAULT '';
        DROP INDEX groups_view_display_name_idx;
        CREATE INDEX groups_view_display_name_folded_idx ON groups_view (tenant_id, display_name_folded);
    END IF;
END
$$;
