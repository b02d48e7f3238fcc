"""One way to write the audit trail: services call ``audit_record`` inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models

from .models import ApiClient, AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who acts: a back-office user, a partner's API client, or the system (a task, a command)."""

    user: AbstractBaseUser | None = None
    client: ApiClient | None = None
    system: str = ""

    @classmethod
    def of_system(cls, name: str) -> Actor:
        return cls(system=name)


def audit_record(
    *,
    actor: Actor,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor_user=actor.user,
        actor_client=actor.client,
        actor_system=actor.system,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )


def audit_records(entries: list[tuple[Actor, str, models.Model, dict[str, Any] | None, dict[str, Any] | None]]) -> None:
    """Many audit rows in one insert, each ``(actor, action, object, before, after)``: a batch's decisions."""
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                actor_user=actor.user,
                actor_client=actor.client,
                actor_system=actor.system,
                action=action,
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                before=before,
                after=after,
            )
            for actor, action, obj, before, after in entries
        ]
    )


def audit_history(obj: models.Model, *, newest_first: bool = True) -> models.QuerySet[AuditEvent]:
    """The audit events of one object, with their actors, for history panels."""
    order = ("-at", "-id") if newest_first else ("at", "id")
    return (
        AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))
        .select_related("actor_user", "actor_client__partner", "actor_client__application")
        .order_by(*order)
    )


def audit_redaction_allow() -> None:
    """Let this transaction rewrite audit rows' ``before``/``after`` (GDPR erasure), and nothing else.

    The audit trail is append-only: on PostgreSQL a trigger refuses UPDATE and DELETE (migration 0007), but
    lets an UPDATE through when it changes only ``before``/``after`` in a transaction that called this first.
    Call it inside ``transaction.atomic()``: the setting ends with the transaction (SET LOCAL).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL riskoffice.audit_redact = 'on'")
