"""The audit trail stops holding a person's reference in clear: ``individual_reference`` leaves before/after.

Runs before 0007 makes the audit trail refuse UPDATE on PostgreSQL.
"""

from django.db import migrations

KEY = "individual_reference"


def _without(value):
    if isinstance(value, dict):
        return {key: _without(item) for key, item in value.items() if key != KEY}
    if isinstance(value, list):
        return [_without(item) for item in value]
    return value


def drop_individual_reference(apps, schema_editor) -> None:
    AuditEvent = apps.get_model("riskoffice", "AuditEvent")
    for event in AuditEvent.objects.only("pk", "before", "after").iterator(chunk_size=2000):
        before, after = _without(event.before), _without(event.after)
        if (before, after) != (event.before, event.after):
            AuditEvent.objects.filter(pk=event.pk).update(before=before, after=after)


class Migration(migrations.Migration):
    dependencies = [("riskoffice", "0005_api_client_sandbox_unlimited")]

    operations = [migrations.RunPython(drop_individual_reference, migrations.RunPython.noop, elidable=False)]
