"""Where the field-encryption keys come from: a keyring, the current key first, then older keys still readable.

A *provider* is any object with a ``keyring()`` method returning the raw key secrets (``str`` or ``bytes``),
newest first. The setting ``FIELD_ENCRYPTION_KEY_PROVIDER`` names its class (dotted path); the class is built
without arguments and reads its own settings. Three are provided:

- ``EnvironmentKeyProvider``: ``FIELD_ENCRYPTION_KEYS="new,old"`` or the single ``FIELD_ENCRYPTION_KEY``
  (production's default).
- ``KeyFileKeyProvider``: one key per line, newest first, in ``FIELD_ENCRYPTION_KEY_FILE`` (development's default,
  ``var/field_encryption_key``, generated on first use).
- ``EnvelopeKeyProvider``: envelope encryption with a KMS. The data keys are stored *wrapped* (encrypted by a
  KMS master key that never leaves the KMS) in ``FIELD_ENCRYPTION_WRAPPED_KEYS`` (base64, comma-separated,
  newest first) and unwrapped once at start-up by the callable named in ``FIELD_ENCRYPTION_KEY_UNWRAP``
  (``bytes -> bytes``). docs/security.md shows an AWS KMS unwrap function; no KMS library is a dependency.

Every secret is stretched once (PBKDF2, as django-cryptography does) into an AES key; the HMAC signing key and
the reference lookup key are derived from that AES key by HMAC-SHA256 with distinct labels, so neither is ever
equal to the AES key, and each key of the ring has its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.encoding import force_bytes
from django.utils.module_loading import import_string

SIGNING_LABEL = b"riskoffice field signing v1"
LOOKUP_LABEL = b"riskoffice reference lookup v1"


@dataclass(frozen=True)
class FieldKey:
    """One key of the ring, with the keys derived from it."""

    secret: bytes = field(repr=False)

    @cached_property
    def aes_key(self) -> bytes:
        # Exactly django-cryptography's derivation (CryptographyConf): values written before the keyring still read.
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"django-cryptography", iterations=30000)
        return kdf.derive(self.secret)

    @cached_property
    def signing_key(self) -> bytes:
        return hmac.new(self.aes_key, SIGNING_LABEL, hashlib.sha256).digest()

    @cached_property
    def lookup_key(self) -> bytes:
        return hmac.new(self.aes_key, LOOKUP_LABEL, hashlib.sha256).digest()

    @cached_property
    def fingerprint(self) -> str:
        """A short, non-secret name for the key (logs, ``rotate_keys --check``)."""
        return hashlib.sha256(b"fingerprint" + self.signing_key).hexdigest()[:12]


@dataclass(frozen=True)
class Keyring:
    keys: tuple[FieldKey, ...]

    @property
    def current(self) -> FieldKey:
        return self.keys[0]

    @classmethod
    def from_secrets(cls, secrets: Sequence[str | bytes]) -> Keyring:
        keys = tuple(FieldKey(force_bytes(s).strip()) for s in secrets if force_bytes(s).strip())
        if not keys:
            raise ImproperlyConfigured(
                "The field-encryption keyring is empty: set FIELD_ENCRYPTION_KEYS or FIELD_ENCRYPTION_KEY "
                "(docs/security.md, 'Encryption keys')."
            )
        return cls(keys)


# --- providers -------------------------------------------------------------------------------------


class EnvironmentKeyProvider:
    """``FIELD_ENCRYPTION_KEYS`` (settings, from the environment): current key first."""

    def keyring(self) -> list[str]:
        return list(getattr(settings, "FIELD_ENCRYPTION_KEYS", []) or [])


class KeyFileKeyProvider:
    """A file with one key per line, newest first (blank lines and ``#`` comments ignored)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path or settings.FIELD_ENCRYPTION_KEY_FILE)

    def keyring(self) -> list[str]:
        try:
            lines = self.path.read_text().splitlines()
        except OSError as error:
            raise ImproperlyConfigured(f"cannot read the field-encryption key file {self.path}: {error}") from error
        return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


class EnvelopeKeyProvider:
    """Envelope encryption: wrapped data keys, unwrapped at start-up by a KMS callable (see the module docstring)."""

    def __init__(
        self, wrapped: Sequence[str] | None = None, unwrap: Callable[[bytes], bytes] | str | None = None
    ) -> None:
        self.wrapped = list(wrapped if wrapped is not None else getattr(settings, "FIELD_ENCRYPTION_WRAPPED_KEYS", []))
        unwrap = unwrap or getattr(settings, "FIELD_ENCRYPTION_KEY_UNWRAP", None)
        if not unwrap:
            raise ImproperlyConfigured("EnvelopeKeyProvider needs FIELD_ENCRYPTION_KEY_UNWRAP (a dotted path).")
        self.unwrap = import_string(unwrap) if isinstance(unwrap, str) else unwrap

    def keyring(self) -> list[bytes]:
        # The unwrapped data key is random bytes; base64 keeps it a printable secret like the others.
        return [base64.urlsafe_b64encode(self.unwrap(base64.b64decode(w))) for w in self.wrapped]


# --- the keyring in use ----------------------------------------------------------------------------

_lock = threading.Lock()
_keyring: Keyring | None = None


def load_keyring() -> Keyring:
    """Build the keyring from the configured provider (no caching)."""
    path = getattr(settings, "FIELD_ENCRYPTION_KEY_PROVIDER", None) or "riskoffice.keys.EnvironmentKeyProvider"
    try:
        provider = import_string(path)()
    except ImportError as error:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY_PROVIDER {path!r} cannot be imported: {error}") from error
    return Keyring.from_secrets(provider.keyring())


def keyring() -> Keyring:
    """The process's keyring, loaded once (providers such as a KMS are called at start-up, not per value)."""
    global _keyring
    if _keyring is None:
        with _lock:
            if _keyring is None:
                _keyring = load_keyring()
    return _keyring


def reload_keyring() -> Keyring:
    """Forget the loaded keyring and load it again (tests, after the settings change)."""
    global _keyring
    with _lock:
        _keyring = load_keyring()
    return _keyring


def forget_keyring() -> None:
    global _keyring
    with _lock:
        _keyring = None


def reference_digests(reference: str) -> list[str]:
    """The lookup digest of a reference under every key of the ring, current key first."""
    return [reference_digest(reference, key) for key in keyring().keys]


def reference_digest(reference: str, key: FieldKey | None = None) -> str:
    """HMAC-SHA256 of the reference, keyed by the (current) key's lookup key. Uniqueness is per partner."""
    key = key or keyring().current
    return hmac.new(key.lookup_key, reference.encode(), hashlib.sha256).hexdigest()
