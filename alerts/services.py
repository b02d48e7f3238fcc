"""Webhook writes: registering endpoints, publishing events to the outbox, delivering them."""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from riskoffice.audit import Actor, audit_record
from riskoffice.http import retry_after_seconds
from riskoffice.models import Partner
from riskoffice.queueing import enqueue_on_commit

from . import signing
from .events import EVENT_TYPES
from .models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# Retries spread over about three days (Standard Webhooks' schedule), with ±10 % jitter.
RETRY_SCHEDULE = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]
# While one worker sends, the row is leased so the periodic sweep does not send it twice.
LEASE = timedelta(seconds=120)


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None. Resolves the host: no private targets in production (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "The URL must be an absolute http(s) URL."
    try:
        port = parts.port
    except ValueError:  # out of range: urlsplit raises on access, the URLField regex lets it through
        return "The URL's port is not valid."
    if settings.PRODUCTION and parts.scheme != "https":
        return "Webhook URLs must use https."
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return f"The host {parts.hostname} does not resolve."
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            return f"The host {parts.hostname} resolves to a non-public address ({address})."
    return None


@transaction.atomic
def webhook_endpoint_create(
    *, partner: Partner, url: str, event_types: list[str], actor: Actor
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its secret, which is shown this once."""
    problem = url_problem(url)
    if problem:
        raise ValidationError({"url": problem})
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError({"event_types": f"Unknown event types: {', '.join(unknown)}."})
    secret = signing.secret_generate()
    endpoint = WebhookEndpoint.objects.create(partner=partner, url=url, secret=secret, event_types=event_types)
    audit_record(
        actor=actor, action="webhook_endpoint.created", obj=endpoint, after={"url": url, "event_types": event_types}
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """Remove an endpoint and its pending deliveries, leaving an audit row."""
    audit_record(
        actor=actor,
        action="webhook_endpoint.deleted",
        obj=endpoint,
        before={"url": endpoint.url, "event_types": endpoint.event_types},
    )
    endpoint.delete()


def event_publish(*, partner: Partner, event_type: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Write one delivery per subscribed endpoint in the caller's transaction; send after commit."""
    return events_publish([(partner.pk, event_type, payload)])


def events_publish(events: list[tuple[Any, str, dict[str, Any]]]) -> list[WebhookDelivery]:
    """Many events at once, each ``(partner id, type, payload)``: one query for the endpoints, one insert.

    Each event gets one delivery per active endpoint of its partner that wants its type, in the
    caller's transaction; each delivery is sent after commit.
    """
    from .tasks import deliver_webhook

    if not events:
        return []
    now = timezone.now()
    endpoints: dict[Any, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(partner_id__in={p for p, _, _ in events}, is_active=True):
        endpoints.setdefault(endpoint.partner_id, []).append(endpoint)
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=endpoint,
                message_id=WebhookDelivery.new_message_id(),
                event_type=event_type,
                payload={"type": event_type, "timestamp": now.isoformat(), "data": payload},
                next_attempt_at=now,
            )
            for partner_id, event_type, payload in events
            for endpoint in endpoints.get(partner_id, [])
            if endpoint.wants(event_type)
        ]
    )
    for delivery in deliveries:
        enqueue_on_commit(deliver_webhook, delivery.pk)  # a broker down at commit: beat's sweep sends it
    return deliveries


def webhook_deliver(*, delivery_id: int) -> str | None:
    """One attempt at a due delivery. Returns the resulting status, or None when it was not due."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
            .first()
        )
        if delivery is None:
            return None
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["next_attempt_at"])

    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    status_code, error, retry_after = None, "", None
    problem = url_problem(endpoint.url)  # checked again at send time: DNS may have changed
    if problem:
        error = problem
    else:
        headers = signing.headers(
            secrets_=[endpoint.secret], message_id=delivery.message_id, timestamp=int(now.timestamp()), body=body
        )
        try:
            response = requests.post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                allow_redirects=False,
            )
            status_code = response.status_code
            if status_code in (429, 503):
                seconds = retry_after_seconds(response)
                retry_after = None if seconds is None else timedelta(seconds=seconds)
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery_id)
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error or ("" if status_code and 200 <= status_code < 300 else f"HTTP {status_code}")
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif status_code == 410:
            _endpoint_disable(delivery.endpoint, reason="The receiver answered 410 Gone.")
            delivery.status = WebhookDelivery.Status.CANCELLED
            delivery.next_attempt_at = None
        elif delivery.attempts > len(RETRY_SCHEDULE):
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delay = RETRY_SCHEDULE[delivery.attempts - 1] * random.uniform(0.9, 1.1)
            if retry_after is not None:
                # Honour the receiver's Retry-After, but never beyond the schedule's longest wait.
                delay = max(delay, min(retry_after, RETRY_SCHEDULE[-1]))
            delivery.next_attempt_at = timezone.now() + delay
        delivery.save(
            update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"]
        )
    return delivery.status


def _endpoint_disable(endpoint: WebhookEndpoint, *, reason: str) -> None:
    endpoint.is_active = False
    endpoint.disabled_reason = reason
    endpoint.save(update_fields=["is_active", "disabled_reason"])
    endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(
        status=WebhookDelivery.Status.CANCELLED, next_attempt_at=None
    )
    audit_record(
        actor=Actor.of_system("webhooks"), action="webhook_endpoint.disabled", obj=endpoint, after={"reason": reason}
    )


def due_delivery_ids(limit: int = 500) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
