"""On PostgreSQL, the audit trail refuses UPDATE and DELETE (row triggers; TRUNCATE, used by test flushes, works).

One exception, for the GDPR erasure only: a transaction that first ran ``SET LOCAL riskoffice.audit_redact = 'on'``
(riskoffice.audit.audit_redaction_allow) may rewrite ``before`` and ``after``, and nothing else, of a row.
SQLite gets no trigger (docs/security.md).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('riskoffice.audit_redact', true) = 'on'
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.action = OLD.action
       AND NEW.object_type = OLD.object_type AND NEW.object_id = OLD.object_id
       AND NEW.actor_system = OLD.actor_system
       AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id
       AND NEW.actor_client_id IS NOT DISTINCT FROM OLD.actor_client_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'riskoffice: % on % is refused: the audit trail is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON riskoffice_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_append_only ON riskoffice_auditevent;
DROP FUNCTION IF EXISTS audit_refuse_change();
"""


def create_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("riskoffice", "0006_audit_without_individual_reference")]

    operations = [migrations.RunPython(create_trigger, drop_trigger, elidable=False)]
