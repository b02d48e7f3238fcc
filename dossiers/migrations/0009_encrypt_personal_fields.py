"""Encrypt the individual's reference (plus a keyed digest for lookups) and the analysts' free text.

Each plain column is copied into a new encrypted column under the current key of the keyring, then dropped
and replaced by it. The non-empty checks on the texts cannot be enforced on ciphertext: the services check them.
"""

import django_cryptography.fields
from django.db import migrations, models

from riskoffice.crypto import encrypt_columns


class Migration(migrations.Migration):
    dependencies = [
        ("dossiers", "0008_erasure_markers"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="individual", name="individual_unique_reference_per_partner"),
        migrations.RemoveConstraint(model_name="override", name="override_has_reason"),
        migrations.RemoveConstraint(model_name="challenge", name="challenge_has_justification"),
        migrations.AddField(
            model_name="individual",
            name="reference_digest",
            field=models.CharField(editable=False, max_length=64, null=True),
        ),
        migrations.AddField(
            model_name="individual",
            name="reference_encrypted",
            field=django_cryptography.fields.encrypt(models.CharField(max_length=100, null=True)),
        ),
        migrations.AddField(
            model_name="override",
            name="reason_encrypted",
            field=django_cryptography.fields.encrypt(models.TextField(null=True)),
        ),
        migrations.AddField(
            model_name="override",
            name="review_note_encrypted",
            field=django_cryptography.fields.encrypt(models.TextField(null=True)),
        ),
        migrations.AddField(
            model_name="challenge",
            name="justification_encrypted",
            field=django_cryptography.fields.encrypt(models.TextField(null=True)),
        ),
        migrations.RunPython(
            encrypt_columns("dossiers", "Individual", {"reference": "reference_encrypted"}), migrations.RunPython.noop
        ),
        migrations.RunPython(
            encrypt_columns(
                "dossiers", "Override", {"reason": "reason_encrypted", "review_note": "review_note_encrypted"}
            ),
            migrations.RunPython.noop,
        ),
        migrations.RunPython(
            encrypt_columns("dossiers", "Challenge", {"justification": "justification_encrypted"}),
            migrations.RunPython.noop,
        ),
        migrations.RemoveField(model_name="individual", name="reference"),
        migrations.RemoveField(model_name="override", name="reason"),
        migrations.RemoveField(model_name="override", name="review_note"),
        migrations.RemoveField(model_name="challenge", name="justification"),
        migrations.RenameField(model_name="individual", old_name="reference_encrypted", new_name="reference"),
        migrations.RenameField(model_name="override", old_name="reason_encrypted", new_name="reason"),
        migrations.RenameField(model_name="override", old_name="review_note_encrypted", new_name="review_note"),
        migrations.RenameField(model_name="challenge", old_name="justification_encrypted", new_name="justification"),
        migrations.AlterField(
            model_name="individual",
            name="reference",
            field=django_cryptography.fields.encrypt(models.CharField(max_length=100)),
        ),
        migrations.AlterField(
            model_name="individual",
            name="reference_digest",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.AlterField(
            model_name="override", name="reason", field=django_cryptography.fields.encrypt(models.TextField())
        ),
        migrations.AlterField(
            model_name="override",
            name="review_note",
            field=django_cryptography.fields.encrypt(models.TextField(blank=True)),
        ),
        migrations.AlterField(
            model_name="challenge", name="justification", field=django_cryptography.fields.encrypt(models.TextField())
        ),
        migrations.AddConstraint(
            model_name="individual",
            constraint=models.UniqueConstraint(
                fields=("partner", "reference_digest"), name="individual_unique_reference_per_partner"
            ),
        ),
    ]
