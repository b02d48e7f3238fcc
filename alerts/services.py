"""Webhook writes: endpoints and their settings, publishing events to the outbox, delivering them, digests."""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from requests.structures import CaseInsensitiveDict

from riskoffice.audit import Actor, audit_record
from riskoffice.http import retry_after_seconds
from riskoffice.models import Partner
from riskoffice.queueing import enqueue_on_commit

from . import signing, transport
from .events import CRITICAL_EVENT_TYPES, DIGEST, EVENT_TYPES
from .models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

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
# A digest carries at most this many events; more held events make several digests.
DIGEST_MAX_EVENTS = 1000


class WebhookConflict(ValidationError):
    """The endpoint or the delivery is not in a state that allows what was asked."""

    problem_status, problem_slug, problem_title = 409, "webhook-conflict", "Not possible in this state"


def url_problem(url: str) -> str | None:
    """Why a webhook URL is refused, or None (alerts.transport: SSRF rules, checked again at send time)."""
    return transport.url_problem(url)


def _mode_checked(mode: str) -> str:
    if mode not in WebhookEndpoint.Mode.values:
        raise ValidationError({"mode": f"Give one of: {', '.join(WebhookEndpoint.Mode.values)}."})
    return mode


def _event_types_checked(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError({"event_types": f"Unknown event types: {', '.join(unknown)}."})
    return list(dict.fromkeys(event_types))


@transaction.atomic
def webhook_endpoint_create(
    *, partner: Partner, url: str, event_types: list[str], actor: Actor, mode: str = WebhookEndpoint.Mode.IMMEDIATE
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its secret, which is shown this once."""
    problem = url_problem(url)
    if problem:
        raise ValidationError({"url": problem})
    event_types = _event_types_checked(event_types)
    _mode_checked(mode)
    secret = signing.secret_generate()
    endpoint = WebhookEndpoint.objects.create(
        partner=partner, url=url, secret=secret, event_types=event_types, mode=mode
    )
    audit_record(
        actor=actor,
        action="webhook_endpoint.created",
        obj=endpoint,
        after={"url": url, "event_types": event_types, "mode": mode},
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


def _endpoint_locked(endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """The endpoint's row, locked: changes to one endpoint happen one at a time (endpoint, then deliveries)."""
    return WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)


def _settings_of(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"event_types": endpoint.event_types, "mode": endpoint.mode}


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor: Actor, event_types: list[str] | None = None, mode: str | None = None
) -> WebhookEndpoint:
    """Change what an endpoint subscribes to and how (at once or in a daily digest).

    Back to immediate, the events held for the digest are sent at once rather than kept for a digest
    that no longer comes.
    """
    endpoint = _endpoint_locked(endpoint)
    before = _settings_of(endpoint)
    if event_types is not None:
        endpoint.event_types = _event_types_checked(event_types)
    if mode is not None:
        endpoint.mode = _mode_checked(mode)
    if _settings_of(endpoint) == before:
        return endpoint
    endpoint.save(update_fields=["event_types", "mode"])
    if endpoint.mode == WebhookEndpoint.Mode.IMMEDIATE:
        _pending_send(endpoint, endpoint.deliveries.filter(status=Status.HELD), now=timezone.now())
    audit_record(
        actor=actor, action="webhook_endpoint.updated", obj=endpoint, before=before, after=_settings_of(endpoint)
    )
    return endpoint


def _pending_send(endpoint: WebhookEndpoint, deliveries: Any, *, now: datetime) -> None:
    """Make ``deliveries`` pending and due now; sent after commit unless the endpoint is paused."""
    from .tasks import deliver_webhook

    ids = list(deliveries.values_list("pk", flat=True))
    WebhookDelivery.objects.filter(pk__in=ids).update(status=Status.PENDING, next_attempt_at=now)
    if endpoint.paused_at is None:
        for delivery_id in ids[:500]:  # the sweep sends the rest within seconds
            enqueue_on_commit(deliver_webhook, delivery_id)


@transaction.atomic
def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor: Actor, now: datetime | None = None) -> str:
    """A new signing secret, returned this once; the current one keeps signing beside it for the overlap.

    Rotating again during an overlap drops the oldest secret: two sign at most.
    """
    now = now or timezone.now()
    endpoint = _endpoint_locked(endpoint)
    secret = signing.secret_generate()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    audit_record(
        actor=actor,
        action="webhook_endpoint.secret_rotated",
        obj=endpoint,
        after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()},
    )
    return secret


def signing_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during a rotation's overlap."""
    secrets_ = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        secrets_.append(endpoint.previous_secret)
    return secrets_


@transaction.atomic
def webhook_endpoint_pause(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Stop sending: new events still wait as pending deliveries (held ones for the digest), sent on resume."""
    endpoint = _endpoint_locked(endpoint)
    if endpoint.paused_at is None:
        endpoint.paused_at = timezone.now()
        endpoint.save(update_fields=["paused_at"])
        audit_record(
            actor=actor, action="webhook_endpoint.paused", obj=endpoint, after={"paused_at": str(endpoint.paused_at)}
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_resume(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """Send again: what waited is sent now. A disabled endpoint is enabled again, its failure count reset.

    Deliveries cancelled when it was disabled stay cancelled; ask for them one by one (redelivery).
    """
    endpoint = _endpoint_locked(endpoint)
    if endpoint.paused_at is None and endpoint.is_active:
        return endpoint
    before = {"paused_at": str(endpoint.paused_at) if endpoint.paused_at else None, "is_active": endpoint.is_active}
    endpoint.paused_at = None
    endpoint.is_active = True
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    endpoint.save(update_fields=["paused_at", "is_active", "disabled_at", "disabled_reason", "failing_since"])
    now = timezone.now()
    # Not the ones leased by a worker or waiting for a retry: those keep their time.
    _pending_send(endpoint, endpoint.deliveries.filter(status=Status.PENDING, next_attempt_at__lte=now), now=now)
    audit_record(actor=actor, action="webhook_endpoint.resumed", obj=endpoint, before=before, after={"is_active": True})
    return endpoint


@transaction.atomic
def webhook_redeliver(*, delivery: WebhookDelivery, actor: Actor) -> WebhookDelivery:
    """Send a delivery again now, with the same webhook-id (the receiver deduplicates on it)."""
    from .tasks import deliver_webhook

    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if not endpoint.is_active:
        raise WebhookConflict("The endpoint is disabled: resume it first, then ask for the redelivery.")
    if delivery.status == Status.PENDING:
        raise WebhookConflict("This delivery is already waiting to be sent.")
    if delivery.status == Status.HELD:
        raise WebhookConflict("This event waits for the daily digest; it is not sent on its own.")
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status = Status.PENDING
    delivery.attempts = 0  # the retry schedule starts again; the log's attempt numbers go on
    delivery.next_attempt_at = timezone.now()
    delivery.delivered_at = None
    delivery.save(update_fields=["status", "attempts", "next_attempt_at", "delivered_at"])
    audit_record(
        actor=actor, action="webhook_delivery.redelivered", obj=delivery, before=before, after={"status": "pending"}
    )
    if endpoint.paused_at is None:
        enqueue_on_commit(deliver_webhook, delivery.pk)
    return delivery


# --- publishing: the outbox ---------------------------------------------------------------------------


def event_publish(*, partner: Partner, event_type: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """Write one delivery per subscribed endpoint in the caller's transaction; send after commit."""
    return events_publish([(partner.pk, event_type, payload)])


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(*, event_type: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What every event is sent as: its id is the same in every endpoint's copy and every retry."""
    return {"id": WebhookDelivery.new_event_id(), "type": event_type, "timestamp": _timestamp(now), "data": data}


def events_publish(events: list[tuple[Any, str, dict[str, Any]]]) -> list[WebhookDelivery]:
    """Many events at once, each ``(partner id, type, data)``: one query for the endpoints, one insert.

    Each event gets one delivery per active endpoint of its partner that wants its type, in the
    caller's transaction. A digest endpoint's non-critical events are held for the daily digest; the
    others are sent after commit (a paused endpoint's wait until it is resumed).
    """
    from .tasks import deliver_webhook

    if not events:
        return []
    now = timezone.now()
    endpoints: dict[Any, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(partner_id__in={p for p, _, _ in events}, is_active=True):
        endpoints.setdefault(endpoint.partner_id, []).append(endpoint)
    rows = []
    for partner_id, event_type, data in events:
        subscribed = [e for e in endpoints.get(partner_id, []) if e.wants(event_type)]
        if not subscribed:
            continue
        event = envelope(event_type=event_type, data=data, now=now)
        for endpoint in subscribed:
            held = endpoint.mode == WebhookEndpoint.Mode.DIGEST and event_type not in CRITICAL_EVENT_TYPES
            rows.append(
                WebhookDelivery(
                    endpoint=endpoint,
                    message_id=WebhookDelivery.new_message_id(),
                    event_id=event["id"],
                    event_type=event_type,
                    payload=event,
                    status=Status.HELD if held else Status.PENDING,
                    next_attempt_at=None if held else now,
                )
            )
    deliveries = WebhookDelivery.objects.bulk_create(rows)
    for delivery in deliveries:
        if delivery.status == Status.PENDING and delivery.endpoint.paused_at is None:
            enqueue_on_commit(deliver_webhook, delivery.pk)  # a broker down at commit: beat's sweep sends it
    return deliveries


# --- the daily digest -----------------------------------------------------------------------------------


def webhook_digests_send(*, now: datetime | None = None) -> list[WebhookDelivery]:
    """Bundle each digest endpoint's held events into ``digest.daily`` deliveries; safe to run twice at once."""
    now = now or timezone.now()
    endpoint_ids = (
        WebhookDelivery.objects.filter(status=Status.HELD, endpoint__is_active=True)
        .values_list("endpoint_id", flat=True)
        .distinct()
        .order_by()
    )
    digests: list[WebhookDelivery] = []
    for endpoint_id in list(endpoint_ids):
        digests += _endpoint_digest(endpoint_id, now=now)
    return digests


@transaction.atomic
def _endpoint_digest(endpoint_id: int, *, now: datetime) -> list[WebhookDelivery]:
    """One endpoint's held events as digests, in one transaction. A concurrent run waits on the endpoint's
    lock, then finds nothing held any more."""
    from .tasks import deliver_webhook

    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id, is_active=True).first()
    if endpoint is None:
        return []
    held = list(
        endpoint.deliveries.select_for_update()
        .filter(status=Status.HELD)
        .order_by("created_at", "pk")
        .values_list("pk", "payload")
    )
    digests = []
    for start in range(0, len(held), DIGEST_MAX_EVENTS):
        chunk = held[start : start + DIGEST_MAX_EVENTS]
        event = envelope(event_type=DIGEST, data={"events": [payload for _, payload in chunk]}, now=now)
        digest = WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=WebhookDelivery.new_message_id(),
            event_id=event["id"],
            event_type=DIGEST,
            payload=event,
            next_attempt_at=now,
        )
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in chunk]).update(
            status=Status.DIGESTED, digest=digest, next_attempt_at=None
        )
        if endpoint.paused_at is None:
            enqueue_on_commit(deliver_webhook, digest.pk)
        digests.append(digest)
    if digests:
        endpoint.last_digest_at = now
        endpoint.save(update_fields=["last_digest_at"])
    return digests


# --- delivering -----------------------------------------------------------------------------------------


def webhook_deliver(*, delivery_id: int, now: datetime | None = None) -> str | None:
    """One attempt at a due delivery. Returns the resulting status, or None when it was not due.

    ``now`` is the clock (tests control it); without it, the time of the attempt.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(
                pk=delivery_id,
                status=Status.PENDING,
                next_attempt_at__lte=now,
                endpoint__is_active=True,
                endpoint__paused_at__isnull=True,
            )
            .first()
        )
        if delivery is None:
            return None
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["next_attempt_at"])

    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signing.headers(
        secrets_=signing_secrets(endpoint, now=now),
        message_id=delivery.message_id,
        timestamp=int(now.timestamp()),
        body=body,
    )
    # Resolved once, checked (DNS may have changed since registration), sent to the checked address.
    result = transport.post(endpoint.url, body=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    return _attempt_record(endpoint_id=endpoint.pk, delivery_id=delivery_id, result=result, now=now)


@transaction.atomic
def _attempt_record(*, endpoint_id: int, delivery_id: int, result: transport.Result, now: datetime) -> str | None:
    # The endpoint first, then the delivery: the order every writer to an endpoint's rows locks them in.
    endpoint = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint_id).first()
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if endpoint is None or delivery is None:
        logger.info("Webhook delivery %s: its endpoint was deleted while it was being sent", delivery_id)
        return None
    code = result.status_code
    succeeded = code is not None and 200 <= code < 300
    error = result.error or ("" if succeeded else f"HTTP {code}")
    number = (delivery.attempt_log.aggregate(last=Max("number"))["last"] or 0) + 1
    DeliveryAttempt.objects.create(
        delivery=delivery,
        number=number,
        attempted_at=now,
        address=result.address,
        status_code=code,
        latency_ms=result.latency_ms,
        response_excerpt=result.body_excerpt,
        error=error,
        redelivery=delivery.attempts == 0 and number > 1,
    )
    delivery.attempts += 1
    delivery.last_status_code = code
    delivery.last_error = error
    fields = ["attempts", "last_status_code", "last_error", "status", "delivered_at", "next_attempt_at"]
    if succeeded:
        delivery.status = Status.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        if endpoint.failing_since is not None:
            endpoint.failing_since = None
            endpoint.save(update_fields=["failing_since"])
    elif delivery.status != Status.PENDING:
        pass  # cancelled while in flight (its endpoint disabled by another delivery): the attempt is logged only
    elif code == 410:
        _endpoint_disable(endpoint, reason="The receiver answered 410 Gone.", now=now)
        delivery.status = Status.CANCELLED
        delivery.next_attempt_at = None
    else:
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            endpoint.save(update_fields=["failing_since"])
        failing_for = now - endpoint.failing_since
        if endpoint.is_active and failing_for >= timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS):
            days = settings.WEBHOOK_DISABLE_AFTER_DAYS
            _endpoint_disable(endpoint, reason=f"Deliveries have failed for {days} days without a success.", now=now)
            delivery.status = Status.CANCELLED
            delivery.next_attempt_at = None
        elif delivery.attempts > len(RETRY_SCHEDULE):
            delivery.status = Status.FAILED
            delivery.next_attempt_at = None
        else:
            delay = RETRY_SCHEDULE[delivery.attempts - 1] * random.uniform(0.9, 1.1)
            if code in (429, 503):
                seconds = retry_after_seconds(SimpleNamespace(headers=CaseInsensitiveDict(result.headers or {})))
                if seconds is not None:
                    # Honour the receiver's Retry-After, but never beyond the schedule's longest wait.
                    delay = max(delay, min(timedelta(seconds=seconds), RETRY_SCHEDULE[-1]))
            delivery.next_attempt_at = now + delay
    delivery.save(update_fields=fields)
    return delivery.status


def _endpoint_disable(endpoint: WebhookEndpoint, *, reason: str, now: datetime) -> None:
    """Stop an endpoint for good (until resumed): its waiting deliveries are cancelled, its partner e-mailed."""
    endpoint.is_active = False
    endpoint.disabled_reason = reason
    endpoint.disabled_at = now
    endpoint.save(update_fields=["is_active", "disabled_reason", "disabled_at"])
    endpoint.deliveries.filter(status__in=[Status.PENDING, Status.HELD]).update(
        status=Status.CANCELLED, next_attempt_at=None
    )
    audit_record(
        actor=Actor.of_system("webhooks"), action="webhook_endpoint.disabled", obj=endpoint, after={"reason": reason}
    )
    contact = Partner.objects.filter(pk=endpoint.partner_id).values_list("technical_contact_email", flat=True).first()
    if contact:
        url, pk = endpoint.url, endpoint.pk
        transaction.on_commit(lambda: _disabled_email_send(contact, url=url, endpoint_id=pk, reason=reason))


def _disabled_email_send(contact: str, *, url: str, endpoint_id: int, reason: str) -> None:
    """The partner's technical contact hears of it; a mail server down is logged, the disable stands."""
    try:
        send_mail(
            subject=f"Webhook endpoint disabled: {url}",
            message=(
                f"We stopped sending webhooks to {url} (endpoint {endpoint_id}).\n\n"
                f"Reason: {reason}\n\n"
                "Events written since are not sent. Once the receiver answers again, resume the endpoint "
                f"(POST /api/v1/webhooks/{endpoint_id}/resume) and ask for the redelivery of the events you need "
                f"(GET /api/v1/webhooks/{endpoint_id}/deliveries lists them).\n"
            ),
            from_email=None,
            recipient_list=[contact],
        )
    except Exception:  # any mail backend failure
        logger.exception("Could not e-mail %s that webhook endpoint %s was disabled", contact, endpoint_id)


def due_delivery_ids(limit: int = 500) -> list[int]:
    """Pending deliveries whose attempt is due, on endpoints that are active and not paused."""
    return list(
        WebhookDelivery.objects.filter(
            status=Status.PENDING,
            next_attempt_at__lte=timezone.now(),
            endpoint__is_active=True,
            endpoint__paused_at__isnull=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
