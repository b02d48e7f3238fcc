"""Re-encrypt every encrypted value under the keyring's current key, while the application runs.

Operator procedure (docs/security.md, "Rotating the field-encryption key"): put the new key FIRST in the keyring
and restart every process; run ``manage.py rotate_keys``; check with ``--check`` that nothing is left under an old
key; then drop the old key from the keyring and restart again.

How it stays safe with the application running: each encrypted column is walked by primary key in small
batches, each batch in its own short transaction; a value is rewritten with a conditional UPDATE (``WHERE pk = …
AND column = <the ciphertext read>``), so a value written concurrently by the application (already under the
current key, since every process has the new keyring) is never overwritten with stale data: it is counted as
"changed meanwhile" and left alone. Values already under the current key are skipped, so the command is
idempotent and may be interrupted and run again. The individuals' reference digests (keyed by the current key's
lookup key) are recomputed the same way.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import IntegrityError, connection, transaction

from riskoffice.crypto import FERNET, encrypted_fields
from riskoffice.keys import keyring, reference_digest


def _batches(model: type, columns: list[str], batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """Rows (pk, *columns) by primary key, ``batch`` at a time, each batch read in its own short transaction."""
    qn = connection.ops.quote_name
    table, pk = qn(model._meta.db_table), qn(model._meta.pk.column)
    select = f"SELECT {pk}, {', '.join(qn(c) for c in columns)} FROM {table}"  # noqa: S608 - our own names
    last = None
    while True:
        where = f" WHERE {pk} > %s" if last is not None else ""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"{select}{where} ORDER BY {pk} LIMIT %s", [*([last] if last is not None else []), batch])
            rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _raw(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field (and the reference digests) under the current key of the keyring."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true", help="Only count the values still under an old key.")
        parser.add_argument("--batch-size", type=int, default=200, help="Rows per transaction (default 200).")

    def handle(self, *args: Any, check: bool = False, batch_size: int = 200, **options: Any) -> None:
        ring = keyring()
        self.stdout.write(
            f"Keyring: current key {ring.current.fingerprint}, {len(ring.keys) - 1} older key(s) "
            f"{', '.join(k.fingerprint for k in ring.keys[1:]) or '-'}"
        )
        totals: Counter[str] = Counter()
        for model in apps.get_models():
            for field in encrypted_fields(model):
                counts = self._field(model, field.column, check=check, batch=batch_size)
                self._report(f"{model._meta.label}.{field.name}", counts)
                totals.update(counts)
        individual = apps.get_model("dossiers", "Individual")
        counts = self._digests(individual, check=check, batch=batch_size)
        self._report("dossiers.Individual.reference_digest", counts)
        totals.update(counts)
        if check:
            self.stdout.write(f"{totals['old']} value(s) still under an old key; {totals['unreadable']} unreadable.")
        else:
            self.stdout.write(
                f"Rotated {totals['rotated']} value(s); {totals['changed']} changed meanwhile (run again to "
                f"check them); {totals['unreadable']} unreadable with this keyring."
            )

    def _report(self, name: str, counts: Counter[str]) -> None:
        parts = ", ".join(
            f"{key} {counts[key]}" for key in ("values", "current", "old", "rotated", "changed", "unreadable")
        )
        self.stdout.write(f"  {name}: {parts}")

    def _field(self, model: type, column: str, *, check: bool, batch: int) -> Counter[str]:
        qn = connection.ops.quote_name
        update = (
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s "  # noqa: S608 - our own names
            f"WHERE {qn(model._meta.pk.column)} = %s AND {qn(column)} = %s"
        )
        counts: Counter[str] = Counter(values=0, current=0, old=0, rotated=0, changed=0, unreadable=0)
        for rows in _batches(model, [column], batch):
            with transaction.atomic(), connection.cursor() as cursor:
                for pk, value in rows:
                    data = _raw(value)
                    if data is None:
                        continue
                    counts["values"] += 1
                    index = FERNET.key_index(data)
                    if index == 0:
                        counts["current"] += 1
                        continue
                    if index is None:
                        counts["unreadable"] += 1
                        continue
                    counts["old"] += 1
                    if check:
                        continue
                    cursor.execute(update, [FERNET.encrypt(FERNET.decrypt(data)), pk, data])
                    counts["rotated" if cursor.rowcount == 1 else "changed"] += 1
        return counts

    def _digests(self, model: type, *, check: bool, batch: int) -> Counter[str]:
        qn = connection.ops.quote_name
        update = (
            f"UPDATE {qn(model._meta.db_table)} SET reference_digest = %s "  # noqa: S608 - our own names
            f"WHERE {qn(model._meta.pk.column)} = %s AND reference_digest = %s AND {qn('reference')} = %s"
        )
        counts: Counter[str] = Counter(values=0, current=0, old=0, rotated=0, changed=0, unreadable=0)
        for rows in _batches(model, ["reference", "reference_digest"], batch):
            with transaction.atomic(), connection.cursor() as cursor:
                for pk, value, digest in rows:
                    counts["values"] += 1
                    data = _raw(value)
                    if FERNET.key_index(data) is None:
                        counts["unreadable"] += 1
                        continue
                    current = reference_digest(pickle.loads(FERNET.decrypt(data)))  # noqa: S301 - HMAC checked
                    if digest == current:
                        counts["current"] += 1
                        continue
                    counts["old"] += 1
                    if check:
                        continue
                    try:
                        with transaction.atomic():
                            cursor.execute(update, [current, pk, digest, data])
                    except IntegrityError:  # the same reference was created again meanwhile: left for an operator
                        counts["changed"] += 1
                        continue
                    counts["rotated" if cursor.rowcount == 1 else "changed"] += 1
        return counts
