"""Field encryption with a keyring (riskoffice/keys.py): encrypt under the current key, read under any key.

django-cryptography gives each encrypted field a ``FernetBytes`` with one AES key derived from
``CRYPTOGRAPHY_KEY`` and an HMAC signer keyed by ``SECRET_KEY`` itself. At start-up we replace every field's
``_fernet`` with a ``KeyringFernet``: it encrypts with the keyring's current key and decrypts with whichever
key of the ring signed the value. Each key's HMAC key is derived from its AES key (never equal to it), so
``SECRET_KEY`` rotates freely and the field keys rotate with ``manage.py rotate_keys`` (docs/security.md).

The stored format is unchanged (version byte, timestamp, IV, AES-256-CBC ciphertext, HMAC-SHA256), so values
written before the keyring existed read with the same key.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from django.apps import apps
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_cryptography.core.signing import BadSignature, FernetSigner
from django_cryptography.fields import EncryptedMixin
from django_cryptography.utils.crypto import FernetBytes, InvalidToken

from . import keys as keys_module
from .keys import FieldKey


def _fernet(key: FieldKey) -> FernetBytes:
    return FernetBytes(key.aes_key, signer=FernetSigner(key=key.signing_key))


class KeyringFernet:
    """A ``FernetBytes`` look-alike over the whole keyring (the keyring is read on each call: reloads apply)."""

    def encrypt(self, data: bytes | str) -> bytes:
        return _fernet(keys_module.keyring().current).encrypt(data)

    def decrypt(self, data: bytes, ttl: int | None = None) -> bytes:
        error: Exception | None = None
        for key in keys_module.keyring().keys:
            try:
                return _fernet(key).decrypt(data, ttl)
            except (BadSignature, InvalidToken) as exc:
                error = exc
        raise BadSignature("no key of the field-encryption keyring signed this value") from error

    def key_index(self, data: bytes) -> int | None:
        """Which key of the ring signed ``data`` (0 is current), or None if none did."""
        for index, key in enumerate(keys_module.keyring().keys):
            try:
                FernetSigner(key=key.signing_key).unsign(bytes(data))
            except BadSignature:
                continue
            return index
        return None


FERNET = KeyringFernet()


def field_signing_key() -> bytes:
    """The current key's HMAC key (derived from the AES key, never equal to it)."""
    return keys_module.keyring().current.signing_key


def encrypted_fields(model: type) -> list[EncryptedMixin]:
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]


def use_keyring(model: type) -> int:
    """Give the encrypted fields of ``model`` (a real or a migration's historical model) the keyring."""
    fields = encrypted_fields(model)
    for f in fields:
        f._fernet = FERNET
    return len(fields)


def install_field_signers() -> int:
    """Give every encrypted model field the keyring. Returns how many fields were re-keyed."""
    keys_module.keyring()  # fail at start-up, not on the first read, if the keys are missing
    return sum(use_keyring(model) for model in apps.get_models())


def encrypt_value(value: Any) -> bytes:
    """The bytes an encrypted field would store for ``value`` (raw SQL writers: rotate_keys, migrations)."""
    return FERNET.encrypt(pickle.dumps(value))


def decrypt_value(data: bytes | memoryview) -> Any:
    """The value of an encrypted field's stored bytes, for raw SQL readers (e.g. the portfolio re-score)."""
    return pickle.loads(FERNET.decrypt(bytes(data)))  # noqa: S301 - our own ciphertext, HMAC checked first


def decrypt_json(data: Any) -> Any:
    """An encrypted JSON field read by raw SQL: decrypt bytes; a plain JSON text or dict passes through."""
    if isinstance(data, (bytes, memoryview)):
        return decrypt_value(data)
    return json.loads(data) if isinstance(data, str) else data


@receiver(setting_changed)
def _keyring_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("FIELD_ENCRYPTION_"):
        keys_module.forget_keyring()  # reloaded on next use: a test may change several settings in turn


def encrypt_columns(app_label: str, model_name: str, columns: dict[str, str], *, batch: int = 1000):
    """A migration's RunPython function: copy each plain ``old`` column into its encrypted ``new`` column.

    ``columns`` maps old field name to new field name. Rows are read and written in batches by primary key.
    An ``Individual`` also gets its ``reference_digest`` (keys.reference_digest) from the plain reference.
    """

    def run(migration_apps, schema_editor) -> None:
        from .keys import reference_digest

        model = migration_apps.get_model(app_label, model_name)
        use_keyring(model)
        with_digest = model_name.lower() == "individual"
        fields = [*columns.values(), *(["reference_digest"] if with_digest else [])]
        last = None
        while True:
            rows = model.objects.order_by("pk")
            if last is not None:
                rows = rows.filter(pk__gt=last)
            rows = list(rows[:batch])
            if not rows:
                return
            for row in rows:
                for old, new in columns.items():
                    value = getattr(row, old)
                    setattr(row, new, bytes(value) if isinstance(value, memoryview) else value)
                if with_digest:
                    row.reference_digest = reference_digest(row.reference)
            model.objects.bulk_update(rows, fields)
            last = rows[-1].pk

    return run
