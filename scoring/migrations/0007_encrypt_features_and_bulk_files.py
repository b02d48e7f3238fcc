"""Encrypt the scoring inputs (bank-derived aggregates), the reasons that quote them, and the bulk files.

Each plain column is copied into a new encrypted column under the current key of the keyring, then dropped
and replaced by it. Bulk files may now be emptied when they expire (``files_expired_at``).
"""

import django_cryptography.fields
from django.db import migrations, models

from riskoffice.crypto import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0006_score_versions_refer_policy_note"),
    ]

    operations = [
        migrations.AddField(
            model_name="featuresnapshot",
            name="features_encrypted",
            field=django_cryptography.fields.encrypt(models.JSONField(null=True)),
        ),
        migrations.AddField(
            model_name="score",
            name="factors_encrypted",
            field=django_cryptography.fields.encrypt(models.JSONField(null=True)),
        ),
        migrations.AddField(
            model_name="bulkscoringjob",
            name="input_encrypted",
            field=django_cryptography.fields.encrypt(models.BinaryField(blank=True, null=True)),
        ),
        migrations.AddField(
            model_name="bulkscoringjob",
            name="output_encrypted",
            field=django_cryptography.fields.encrypt(models.BinaryField(blank=True, null=True)),
        ),
        migrations.AddField(
            model_name="bulkscoringjob",
            name="files_expired_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(
            encrypt_columns("scoring", "FeatureSnapshot", {"features": "features_encrypted"}),
            migrations.RunPython.noop,
        ),
        migrations.RunPython(
            encrypt_columns("scoring", "Score", {"factors": "factors_encrypted"}), migrations.RunPython.noop
        ),
        migrations.RunPython(
            encrypt_columns(
                "scoring", "BulkScoringJob", {"input_csv": "input_encrypted", "output_csv": "output_encrypted"}
            ),
            migrations.RunPython.noop,
        ),
        migrations.RemoveField(model_name="featuresnapshot", name="features"),
        migrations.RemoveField(model_name="score", name="factors"),
        migrations.RemoveField(model_name="bulkscoringjob", name="input_csv"),
        migrations.RemoveField(model_name="bulkscoringjob", name="output_csv"),
        migrations.RenameField(model_name="featuresnapshot", old_name="features_encrypted", new_name="features"),
        migrations.RenameField(model_name="score", old_name="factors_encrypted", new_name="factors"),
        migrations.RenameField(model_name="bulkscoringjob", old_name="input_encrypted", new_name="input_csv"),
        migrations.RenameField(model_name="bulkscoringjob", old_name="output_encrypted", new_name="output_csv"),
        migrations.AlterField(
            model_name="featuresnapshot",
            name="features",
            field=django_cryptography.fields.encrypt(models.JSONField()),
        ),
        migrations.AlterField(
            model_name="score",
            name="factors",
            field=django_cryptography.fields.encrypt(
                models.JSONField(help_text="Top reasons, ordered by absolute contribution.")
            ),
        ),
    ]
