"""Make the event log append-only in PostgreSQL itself, not just in the ORM."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION warroom_event_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'deployments_event is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER deployments_event_append_only
    BEFORE UPDATE OR DELETE ON deployments_event
    FOR EACH ROW EXECUTE FUNCTION warroom_event_append_only();
"""

REVERSE = """
DROP TRIGGER IF EXISTS deployments_event_append_only ON deployments_event;
DROP FUNCTION IF EXISTS warroom_event_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("deployments", "0001_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE)]
