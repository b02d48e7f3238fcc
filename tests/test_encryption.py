"""Encryption at rest: bank tokens and webhook secrets survive a SECRET_KEY rotation, not a stolen database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRITE = """
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from dossiers.models import Company, Dossier
company = Company.objects.create(siren="552100554")
Dossier.objects.create(company=company, requested_amount=10, bank_tokens_json='["tok_rotation_check"]')
"""
READ = """
import django; django.setup()
from dossiers.models import Dossier
print(Dossier.objects.get().bank_tokens)
"""


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=dict(
            base,
            DJANGO_SETTINGS_MODULE="riskoffice.settings",
            RISKOFFICE_VAR_DIR=str(tmp_path / "var"),
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **env,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_rotating_secret_key_keeps_encrypted_fields_readable(tmp_path):
    written = _run(WRITE, tmp_path, SECRET_KEY="old-secret-" + "a" * 40, FIELD_ENCRYPTION_KEY="field-key-" + "b" * 40)
    assert written.returncode == 0, written.stderr
    read = _run(READ, tmp_path, SECRET_KEY="new-secret-" + "c" * 40, FIELD_ENCRYPTION_KEY="field-key-" + "b" * 40)
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == "['tok_rotation_check']"


def test_without_the_field_encryption_key_the_tokens_cannot_be_read(tmp_path):
    written = _run(WRITE, tmp_path, SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY="field-key-" + "b" * 40)
    assert written.returncode == 0, written.stderr
    read = _run(READ, tmp_path, SECRET_KEY="s" * 50, FIELD_ENCRYPTION_KEY="another-key-" + "d" * 40)
    assert read.returncode != 0
    assert "tok_rotation_check" not in read.stdout
    assert "BadSignature" in read.stderr or "InvalidToken" in read.stderr
