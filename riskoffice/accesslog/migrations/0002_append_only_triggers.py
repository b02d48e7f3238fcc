"""On PostgreSQL, the access log and its checkpoints refuse UPDATE and DELETE (rows triggers; TRUNCATE unaffected).

The retention purge's own transaction may DELETE entries: it sets ``riskoffice.accesslog_purge`` to 'on' with
SET LOCAL (riskoffice.accesslog.services.accesslog_purge_before). SQLite gets no trigger: there the hash chain
and ``manage.py verify_access_log`` are the protection (docs/security.md).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION accesslog_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'accesslog_accesslogentry'
       AND current_setting('riskoffice.accesslog_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'riskoffice: % on % is refused: the access log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER accesslog_entry_append_only BEFORE UPDATE OR DELETE ON accesslog_accesslogentry
    FOR EACH ROW EXECUTE FUNCTION accesslog_refuse_change();
CREATE TRIGGER accesslog_checkpoint_append_only BEFORE UPDATE OR DELETE ON accesslog_accesslogcheckpoint
    FOR EACH ROW EXECUTE FUNCTION accesslog_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS accesslog_entry_append_only ON accesslog_accesslogentry;
DROP TRIGGER IF EXISTS accesslog_checkpoint_append_only ON accesslog_accesslogcheckpoint;
DROP FUNCTION IF EXISTS accesslog_refuse_change();
"""


def create_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("accesslog", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
