"""Field encryption keyed by FIELD_ENCRYPTION_KEY alone.

django-cryptography encrypts with a key derived from ``CRYPTOGRAPHY_KEY`` but signs
(HMAC) with ``SECRET_KEY`` itself, so rotating ``SECRET_KEY`` would make every
stored value unreadable. At start-up we give every encrypted field a signer keyed by
a separate HMAC key derived from the field-encryption key, so the two secrets are
independent: ``SECRET_KEY`` rotates freely; ``FIELD_ENCRYPTION_KEY`` is the one to
guard (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac

from django.apps import apps
from django.conf import settings
from django_cryptography.core.signing import FernetSigner
from django_cryptography.fields import EncryptedMixin
from django_cryptography.utils.crypto import FernetBytes


def field_signing_key() -> bytes:
    # settings.CRYPTOGRAPHY_KEY is the PBKDF2-derived AES key; the HMAC key is derived from it, not equal to it.
    return hmac.new(bytes(settings.CRYPTOGRAPHY_KEY), b"riskoffice field signing v1", hashlib.sha256).digest()


def install_field_signers() -> int:
    """Re-key the signer of every encrypted model field. Returns how many fields were re-keyed."""
    signer_key = field_signing_key()
    count = 0
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, EncryptedMixin):
                field._fernet = FernetBytes(field.key, signer=FernetSigner(key=signer_key))
                count += 1
    return count
