from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("riskoffice", "0007_audit_append_only")]

    operations = [
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["object_id", "-at"], name="audit_object_id_idx"),
        ),
    ]
