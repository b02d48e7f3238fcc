"""Settings come from the environment; production refuses to start without its secrets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

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
        DATABASE_URL="postgres://riskoffice@db.internal:5432/riskoffice",
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
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
            DATABASE_URL="postgres://riskoffice@db.internal:5432/riskoffice",
            CELERY_BROKER_URL="redis://redis.internal:6379/0",
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


# --- production: HTTPS only, PostgreSQL and Redis, no demo ----------------------------------------------------------

PRODUCTION_ENV = {
    "RISKOFFICE_ENV": "production",
    "SECRET_KEY": "v7Qm-2Lx9_pR4tZ8kW1nB6yH3jF0sD5gA-eC7uI2oP9lK4mN8bV1xZ6",
    "FIELD_ENCRYPTION_KEY": "f" * 60,
    "ALLOWED_HOSTS": "risk.example.com",
    "DATABASE_URL": "postgres://riskoffice@db.internal:5432/riskoffice",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
}
EMBEDDED = ("DATABASE_URL", "CELERY_BROKER_URL", "RISKOFFICE_ALLOW_EMBEDDED")


def _run(code: str, env: dict[str, str], *, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", *EMBEDDED, *drop}}
    return subprocess.run(
        [sys.executable, "-c", code],
        env=dict(base, DJANGO_SETTINGS_MODULE="riskoffice.settings", **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


SHOW_SECURITY = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SECURE_PROXY_SSL_HEADER, s.DATABASES['default']['ENGINE'])"
)


def test_production_is_https_only_behind_its_proxy():
    result = _run(SHOW_SECURITY, PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:4] == ["31536000", "True", "True", "True"]
    assert "('HTTP_X_FORWARDED_PROTO', 'https')" in result.stdout


def test_the_hsts_max_age_is_a_setting():
    result = _run(SHOW_SECURITY, dict(PRODUCTION_ENV, SECURE_HSTS_SECONDS="600"))

    assert result.stdout.split()[0] == "600", result.stderr


def test_dev_sends_no_hsts_and_does_not_redirect():
    result = _run(SHOW_SECURITY, {"RISKOFFICE_ENV": "dev"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["0", "False"]


@pytest.mark.parametrize("missing", ["DATABASE_URL", "CELERY_BROKER_URL"])
def test_production_refuses_to_start_on_sqlite_or_the_filesystem_broker(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}

    result = _run(SHOW_DEBUG, env)

    assert result.returncode != 0
    assert missing in result.stderr and "RISKOFFICE_ALLOW_EMBEDDED=1" in result.stderr
    assert "Traceback" in result.stderr  # ImproperlyConfigured at start-up: the process does not serve


def test_production_on_the_embedded_services_only_when_explicitly_allowed(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}

    result = _run(SHOW_SECURITY, dict(env, RISKOFFICE_ALLOW_EMBEDDED="1", RISKOFFICE_VAR_DIR=str(tmp_path / "var")))

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "django.db.backends.sqlite3"


def test_the_dev_database_secrets_and_var_are_owner_only(tmp_path):
    var = tmp_path / "var"

    result = _run(SHOW_DEBUG, {"RISKOFFICE_ENV": "dev", "RISKOFFICE_VAR_DIR": str(var)}, drop=("RISKOFFICE_VAR_DIR",))

    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    for name in ("riskoffice.sqlite3", "secret_key", "field_encryption_key"):
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600, name


def test_the_deploy_check_is_clean_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=dict(
            {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", *EMBEDDED}},
            DJANGO_SETTINGS_MODULE="riskoffice.settings",
            **PRODUCTION_ENV,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_the_demo_commands_refuse_to_run_in_production():
    for command in ("setup_demo", "seed_demo", "totp_code admin"):
        result = subprocess.run(
            [sys.executable, "manage.py", *command.split()],
            env=dict(
                {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", *EMBEDDED}},
                DJANGO_SETTINGS_MODULE="riskoffice.settings",
                **PRODUCTION_ENV,
            ),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0, command
        assert "refuses to run with RISKOFFICE_ENV=production" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
