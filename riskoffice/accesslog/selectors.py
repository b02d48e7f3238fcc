"""The auditor's searches: the access log and the audit trail, newest first, each filter on an index."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from riskoffice.models import AuditEvent

from .models import AccessLogEntry


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _dates(queryset: QuerySet, filters: dict[str, Any]) -> QuerySet:
    if filters.get("date_from"):
        queryset = queryset.filter(at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        queryset = queryset.filter(at__lt=_day_start(filters["date_to"] + timedelta(days=1)))
    return queryset


def access_log_search(filters: dict[str, Any]) -> QuerySet[AccessLogEntry]:
    """Entries matching the auditor's filters (a form's cleaned_data), newest first.

    ``actor`` is a username or a client's label as the log shows it ("App name (client-id)"), or the client id
    alone; ``object_id`` finds the entry of a detail page or change and the lists that showed the object.
    """
    entries = _dates(AccessLogEntry.objects.all(), filters)
    if actor := filters.get("actor"):
        entries = entries.filter(Q(actor_label=actor) | Q(actor_label__endswith=f"({actor})"))
    if object_id := filters.get("object_id"):
        entries = entries.filter(Q(object_id=object_id) | Q(object_ids__icontains=f'"{object_id}"'))
    if channel := filters.get("channel"):
        entries = entries.filter(channel=channel)
    if action := filters.get("action"):
        entries = entries.filter(action=action)
    if filters.get("outcome") is not None:
        entries = entries.filter(outcome=filters["outcome"])
    if path := filters.get("path"):
        entries = entries.filter(path__startswith=path)
    return entries.order_by("-at", "-id")


def audit_search(filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Audit events matching the auditor's filters, newest first, with their actors (no query per row).

    ``actor`` is a username, an API client's client id, or a task or command's name.
    """
    events = _dates(AuditEvent.objects.all(), filters)
    if actor := filters.get("actor"):
        events = events.filter(
            Q(actor_user__username=actor) | Q(actor_client__application__client_id=actor) | Q(actor_system=actor)
        )
    if action := filters.get("action"):
        events = events.filter(action=action)
    if object_type := filters.get("object_type"):
        events = events.filter(object_type=object_type)
    if object_id := filters.get("object_id"):
        events = events.filter(object_id=object_id)
    return events.select_related("actor_user", "actor_client__partner", "actor_client__application").order_by(
        "-at", "-id"
    )
