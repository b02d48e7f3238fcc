"""Writing, verifying and purging the access log.

Appending is serialised so that the chain never forks: on PostgreSQL a transaction-scoped advisory lock is
taken first, then one INSERT reads the chain's head and hashes the row in the database (``sha256``); on SQLite
the same INSERT runs under SQLite's single write lock (a statement is atomic, and ``transaction_mode`` IMMEDIATE
takes that lock when a transaction begins), hashing with ``riskoffice_sha256`` (registered on each connection in
``riskoffice.accesslog.apps``). Either way a request costs one INSERT, plus the lock statement on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from riskoffice.models import ApiClient

from .models import AccessLogCheckpoint, AccessLogEntry, Action, Channel

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock's key for appending to the access log ("ACCLOG" in ASCII).
APPEND_LOCK_KEY = 0x4143434C4F47
PURGE_SETTING = "riskoffice.accesslog_purge"

# The fields a row's hash covers, in this order (the id is not one: the database assigns it after hashing).
HASHED_FIELDS = (
    "at",
    "actor_user_id",
    "actor_client_id",
    "actor_label",
    "channel",
    "action",
    "method",
    "path",
    "route",
    "object_type",
    "object_id",
    "object_ids",
    "outcome",
    "ip",
    "user_agent",
)
FIELD_OF = {"actor_user_id": "actor_user", "actor_client_id": "actor_client"}
USER_AGENT_MAX = 200


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(values: dict[str, Any]) -> str:
    """A row's fields as one JSON text: sorted keys, no spaces, the time in UTC to the microsecond."""
    fields = {name: values[name] for name in HASHED_FIELDS}
    at = fields["at"]
    fields["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, values: dict[str, Any]) -> str:
    return sha256_hex(prev_hash + canonical(values))


def _actor_label(user: AbstractBaseUser | None, client: ApiClient | None) -> str:
    if client is not None:
        application = client.application
        return f"{application.name} ({application.client_id})"[:200]
    if user is not None:
        return user.get_username()[:200]
    return ""


def _head_sql(table: str) -> str:
    checkpoints = AccessLogCheckpoint._meta.db_table
    return (
        f"COALESCE((SELECT hash FROM {table} ORDER BY id DESC LIMIT 1), "  # noqa: S608 - our table names
        f"(SELECT last_hash FROM {checkpoints} ORDER BY id DESC LIMIT 1), '')"
    )


def access_log_record(
    *,
    channel: str,
    action: str,
    user: AbstractBaseUser | None = None,
    client: ApiClient | None = None,
    label: str = "",
    method: str = "",
    path: str = "",
    route: str = "",
    object_type: str = "",
    object_id: str = "",
    object_ids: Iterable[Any] = (),
    outcome: int | None = None,
    ip: str = "",
    user_agent: str = "",
) -> int:
    """Append one entry to the access log; its id.

    ``label`` names the actor when neither ``user`` nor ``client`` does (a failed sign-in's username, a
    command's name). Never pass a secret, a token, a password, a cookie or a request body: nothing here is
    ever redacted afterwards.
    """
    if channel not in Channel.values:
        raise ValueError(f"unknown access-log channel {channel!r}")
    if action not in Action.values:
        raise ValueError(f"unknown access-log action {action!r}")
    values: dict[str, Any] = {
        "at": timezone.now(),
        "actor_user_id": user.pk if user is not None else None,
        "actor_client_id": client.pk if client is not None else None,
        "actor_label": (_actor_label(user, client) or label)[:200],
        "channel": channel,
        "action": action,
        "method": method[:10],
        "path": path[:500],
        "route": route[:200],
        "object_type": object_type[:100],
        "object_id": str(object_id)[:64],
        "object_ids": [str(item) for item in object_ids],
        "outcome": outcome,
        "ip": ip[:45],
        "user_agent": user_agent[:USER_AGENT_MAX],
    }
    text = canonical(values)
    meta = AccessLogEntry._meta
    columns = [meta.get_field(FIELD_OF.get(name, name)) for name in HASHED_FIELDS]
    params = [
        field.get_db_prep_save(values[name], connection) for field, name in zip(columns, HASHED_FIELDS, strict=True)
    ]
    table = meta.db_table
    head = _head_sql(table)
    if connection.vendor == "postgresql":
        digest = f"encode(sha256(convert_to({head} || %s, 'UTF8')), 'hex')"
    else:
        digest = f"riskoffice_sha256({head} || %s)"
    sql = (
        f"INSERT INTO {table} ({', '.join(field.column for field in columns)}, prev_hash, hash) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}, {head}, {digest}) RETURNING id"
    )
    # savepoint=False: inside a caller's transaction this costs no SAVEPOINT round trips.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
        cursor.execute(sql, [*params, text])
        return cursor.fetchone()[0]


# --- verification ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    head_hash: str
    first_bad_id: int | None = None
    problem: str = ""


def accesslog_verify(*, chunk_size: int = 2000) -> VerifyResult:
    """Recompute the chain from the latest checkpoint (or the start); the first entry where it breaks.

    A modified entry no longer matches its own hash; a deleted entry leaves its successor pointing at a hash
    that is not its predecessor's; an inserted entry points at the wrong predecessor (or its successor does).
    Rewriting the whole tail consistently is caught only against a head hash kept outside the database.
    """
    checkpoint = AccessLogCheckpoint.objects.order_by("-id").first()
    expected_prev = checkpoint.last_hash if checkpoint else ""
    after_id = checkpoint.purged_through_id if checkpoint else 0
    fields = ("id", *HASHED_FIELDS, "prev_hash", "hash")
    checked = 0
    rows = AccessLogEntry.objects.order_by("id").values(*fields).iterator(chunk_size=chunk_size)
    for row in rows:
        if row["id"] <= after_id:
            return VerifyResult(False, checked, expected_prev, row["id"], "an entry older than the last purge remains")
        if row["prev_hash"] != expected_prev:
            problem = "the entry before it was deleted or changed, or this entry was inserted"
            return VerifyResult(False, checked, expected_prev, row["id"], problem)
        if entry_hash(row["prev_hash"], row) != row["hash"]:
            return VerifyResult(False, checked, expected_prev, row["id"], "the entry was modified")
        expected_prev = row["hash"]
        checked += 1
    return VerifyResult(True, checked, expected_prev)


def accesslog_chain_contains(hash_value: str) -> bool:
    """Whether an earlier head hash (anchored outside the database) is still in the chain or a checkpoint."""
    return (
        AccessLogEntry.objects.filter(hash=hash_value).exists()
        or AccessLogCheckpoint.objects.filter(last_hash=hash_value).exists()
    )


# --- retention ---------------------------------------------------------------------------------------------


def accesslog_purge_before(cutoff: datetime, *, dry_run: bool) -> int:
    """Delete the entries older than ``cutoff``; how many (would be) deleted.

    Every entry before the first one at or after ``cutoff`` goes (ids follow time), and a checkpoint keeps the
    last deleted hash, so that the remaining chain still verifies. The purge itself is logged (channel command).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Nobody appends while the chain is cut; the triggers let this transaction's DELETE through.
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [APPEND_LOCK_KEY])
                cursor.execute(f"SET LOCAL {PURGE_SETTING} = 'on'")
        first_kept = AccessLogEntry.objects.filter(at__gte=cutoff).order_by("id").values_list("id", flat=True).first()
        doomed = AccessLogEntry.objects.all()
        if first_kept is not None:
            doomed = doomed.filter(id__lt=first_kept)
        last = doomed.order_by("-id").values("id", "hash").first()
        if last is None:
            return 0
        count = doomed.count()
        if dry_run:
            return count
        doomed.delete()
        AccessLogCheckpoint.objects.create(
            cutoff=cutoff, purged_through_id=last["id"], last_hash=last["hash"], purged_count=count
        )
        access_log_record(
            channel=Channel.COMMAND,
            action=Action.PURGE,
            label="retention",
            object_type=AccessLogEntry._meta.label_lower,
            object_id=str(last["id"]),
        )
        logger.info("access log: %d entries older than %s purged", count, cutoff.isoformat())
        return count
