"""The field-encryption key rotates while the application runs: reads never fail, the old key can then go."""

from __future__ import annotations

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django_cryptography.core.signing import BadSignature

from dossiers.models import Company, Dossier, Individual
from riskoffice.keys import keyring

OLD, NEW = "old-field-key-" + "o" * 40, "new-field-key-" + "n" * 40
ENV = "riskoffice.keys.EnvironmentKeyProvider"


def use_keys(settings, *keys: str) -> None:
    settings.FIELD_ENCRYPTION_KEY_PROVIDER = ENV
    settings.FIELD_ENCRYPTION_KEYS = list(keys)
    assert len(keyring().keys) == len(keys)


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


def read_everything() -> list:
    return [
        *(d.bank_tokens for d in Dossier.objects.order_by("pk")),
        *(i.reference for i in Individual.objects.order_by("pk")),
    ]


@pytest.mark.django_db(transaction=True)
def test_rotation_while_reading_then_the_old_key_can_go(settings):
    use_keys(settings, OLD)
    company = Company.objects.create(siren="552100554")
    for n in range(60):
        Dossier.objects.create(company=company, requested_amount=10, bank_tokens_json=f'["tok_{n}"]')
        Individual.objects.get_or_create_for_reference(None, f"cust-{n}")
    expected = read_everything()

    # Before rotation a keyring without the old key cannot read.
    use_keys(settings, NEW)
    with pytest.raises(BadSignature):
        read_everything()

    # The operator puts the new key first (every process restarted), then rotates while the application reads.
    use_keys(settings, NEW, OLD)
    assert "180 value(s) still under an old key" in rotate("--check")  # tokens, references, digests
    failures, reads, done = [], [0], threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                assert read_everything() == expected
                assert Individual.objects.for_reference(None, "cust-7") is not None
                reads[0] += 1
        except Exception as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        output = rotate("--batch-size", "7")
        output += rotate()  # idempotent: a second run has nothing left to do
    finally:
        done.set()
        thread.join()
    assert failures == [] and reads[0] > 0
    assert "Rotated 180 value(s)" in output  # tokens, references and their digests
    assert "Rotated 0 value(s)" in output
    assert "0 value(s) still under an old key" in rotate("--check")

    # The old key is dropped: everything still reads, and lookups by reference still find the individual.
    use_keys(settings, NEW)
    assert read_everything() == expected
    assert Individual.objects.for_reference(None, "cust-42").reference == "cust-42"
    assert Individual.objects.get_or_create_for_reference(None, "cust-42")[1] is False


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_write_is_not_overwritten(settings):
    use_keys(settings, OLD)
    company = Company.objects.create(siren="552100554")
    dossier = Dossier.objects.create(company=company, requested_amount=10, bank_tokens_json='["before"]')
    use_keys(settings, NEW, OLD)
    # The application writes the value (under the new key) while the command runs: modelled by writing first.
    Dossier.objects.filter(pk=dossier.pk).update(bank_tokens_json='["after"]')
    rotate()
    assert Dossier.objects.get(pk=dossier.pk).bank_tokens == ["after"]
