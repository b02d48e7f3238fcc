"""What docs/security.md states about key providers, the API docs' policy and the requirements, as specifications.

- A KMS plugs in through ``EnvelopeKeyProvider``: the data keys are stored wrapped and unwrapped at start-up by a
  callable (here a stand-in for the KMS: the KMS is an external service; what is ours is the provider);
- the Redoc page alone relaxes the Content-Security-Policy for its bundle, and its scripts stay our own;
- production installs requirements.txt only: no test or tool package, and the product's fixed runtime choices.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from dossiers.models import Individual
from riskoffice import keys

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
KMS_MASTER = Fernet(Fernet.generate_key())  # the key that never leaves the (stand-in) KMS


def kms_unwrap(wrapped: bytes) -> bytes:
    """What an adapter's callable does: ask the KMS to decrypt a wrapped data key (boto3's kms.decrypt, say)."""
    return KMS_MASTER.decrypt(wrapped)


def wrapped_data_key() -> tuple[str, bytes]:
    data_key = Fernet.generate_key()[:32]
    return base64.b64encode(KMS_MASTER.encrypt(data_key)).decode(), data_key


def test_a_kms_provides_the_keyring_from_wrapped_data_keys(settings):
    wrapped, data_key = wrapped_data_key()
    settings.FIELD_ENCRYPTION_KEY_PROVIDER = "riskoffice.keys.EnvelopeKeyProvider"
    settings.FIELD_ENCRYPTION_WRAPPED_KEYS = [wrapped]
    settings.FIELD_ENCRYPTION_KEY_UNWRAP = f"{__name__}.kms_unwrap"
    keys.reload_keyring()

    person = Individual.objects.create(partner=None, reference="CUST-KMS-1")

    assert Individual.objects.get(pk=person.pk).reference == "CUST-KMS-1"
    provider = keys.EnvelopeKeyProvider()
    assert provider.keyring() == [base64.urlsafe_b64encode(data_key)]  # the plain key exists in memory only
    assert data_key not in wrapped.encode() and base64.urlsafe_b64encode(data_key) not in wrapped.encode()


def test_an_envelope_provider_without_its_unwrap_callable_is_a_configuration_error(settings):
    settings.FIELD_ENCRYPTION_KEY_UNWRAP = None
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY_UNWRAP"):
        keys.EnvelopeKeyProvider(wrapped=[])


def test_only_the_redoc_page_relaxes_the_content_security_policy(client):
    redoc = client.get("/api/docs/redoc/")["Content-Security-Policy"]
    swagger = client.get("/api/docs/")["Content-Security-Policy"]
    back_office = client.get("/login/")["Content-Security-Policy"]

    def directive(policy: str, name: str) -> str:
        return re.search(rf"(?:^|; ?){name} ([^;]*)", policy).group(1)

    assert "'unsafe-inline'" in directive(redoc, "style-src") and "blob:" in directive(redoc, "worker-src")
    assert "'self'" in directive(redoc, "script-src") and "'unsafe-inline'" not in directive(redoc, "script-src")
    for policy in (swagger, back_office):
        assert "'unsafe-inline'" not in directive(policy, "style-src") and "blob:" not in policy


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in lines
        if "==" in line and not line.lstrip().startswith("#")
    }


def test_production_installs_no_test_or_tool_package_and_keeps_the_fixed_runtime_choices():
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")

    for tool in ("playwright", "ruff", "schemathesis", "hypothesis", "standardwebhooks", "requests-oauthlib"):
        assert tool not in runtime and tool in dev
    fixed = ("django", "djangorestframework", "django-oauth-toolkit", "celery", "redis", "xgboost-cpu", "shap")
    for package in (*fixed, "pytest-django", "django-cryptography-django5", "django-otp", "django-csp", "django-axes"):
        assert package in runtime
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    assert not set(runtime) & set(dev), "each package pinned once"
