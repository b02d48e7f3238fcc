"""Settings come from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


SHOW_DEBUG = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"


def _django_setup(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(
        [sys.executable, "-c", SHOW_DEBUG],
        env=dict(clean, DJANGO_SETTINGS_MODULE="riskoffice.settings", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_refuses_to_start_without_its_secrets():
    result = _django_setup(RISKOFFICE_ENV="production")
    assert result.returncode != 0
    assert "SECRET_KEY, FIELD_ENCRYPTION_KEY, ALLOWED_HOSTS" in result.stderr


def test_production_starts_with_its_secrets_and_debug_off():
    result = _django_setup(
        RISKOFFICE_ENV="production",
        SECRET_KEY="x" * 50,
        FIELD_ENCRYPTION_KEY="y" * 50,
        ALLOWED_HOSTS="risk.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_a_malformed_boolean_is_refused_loudly():
    result = _django_setup(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_an_unknown_environment_is_refused():
    result = _django_setup(RISKOFFICE_ENV="staging")
    assert result.returncode != 0
    assert "RISKOFFICE_ENV" in result.stderr


def test_the_deploy_check_raises_no_oauth_warning_in_production():
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "ALLOWED_HOSTS"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        env=dict(
            clean,
            DJANGO_SETTINGS_MODULE="riskoffice.settings",
            RISKOFFICE_ENV="production",
            SECRET_KEY="k" * 60,
            FIELD_ENCRYPTION_KEY="f" * 60,
            ALLOWED_HOSTS="risk.example.com",
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "oauth2_provider" not in output, output


def test_a_token_lifetime_outside_reason_is_refused():
    result = _django_setup(ACCESS_TOKEN_EXPIRE_SECONDS="604800")
    assert result.returncode != 0
    assert "ACCESS_TOKEN_EXPIRE_SECONDS" in result.stderr
