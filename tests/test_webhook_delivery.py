"""Delivering events (issue 11): the envelope, the attempt log, retries and disabling on a controlled clock,
secret rotation, the daily digest, pause and resume, redelivery, an endpoint deleted while a delivery is in flight.

Receivers are real local HTTP servers; signatures are checked with the independent ``standardwebhooks``
library. ``webhook_deliver(now=...)`` is the controlled clock: nothing waits for real hours.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts import signing
from alerts.events import COMPANY_ACCOUNTS_PUBLISHED, COMPANY_INSOLVENCY_PROCEEDING, DIGEST, SCORE_CHANGED
from alerts.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from alerts.selectors import webhook_deliveries_of
from alerts.services import (
    RETRY_SCHEDULE,
    WebhookConflict,
    due_delivery_ids,
    events_publish,
    webhook_deliver,
    webhook_digests_send,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_pause,
    webhook_endpoint_resume,
    webhook_endpoint_update,
    webhook_redeliver,
    webhook_secret_rotate,
)
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent

Status = WebhookDelivery.Status
Mode = WebhookEndpoint.Mode
SCORED = "score.completed"
DATA = {"score_id": "d-1", "score": 742}


# --- a scriptable local receiver ------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local HTTP server: answers ``status`` (or the next of ``script``), records every request."""

    url: str = ""
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    script: list[int] = field(default_factory=list)
    on_request: Callable[[], None] | None = None
    requests: list[dict] = field(default_factory=list)

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if receiver.on_request:
                receiver.on_request()
            status = receiver.script.pop(0) if receiver.script else receiver.status
            receiver.requests.append({"path": self.path, "headers": headers, "body": body, "status": status})
            self.send_response(status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.body)))
            self.end_headers()
            self.wfile.write(receiver.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def private_urls_allowed(settings) -> None:
    """The local receivers live on 127.0.0.1, which only development settings allow."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PRODUCTION = False


def endpoint_for(partner_client, url: str, event_types: list[str] | None = None, mode: str = Mode.IMMEDIATE):
    return webhook_endpoint_create(
        partner=partner_client.partner,
        url=url,
        event_types=event_types or [],
        mode=mode,
        actor=Actor(client=partner_client.api_client),
    )


def publish(partner_client, event_type: str = SCORED, data: dict | None = None) -> list[WebhookDelivery]:
    return events_publish([(partner_client.partner.pk, event_type, data or DATA)])


def fresh(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.objects.get(pk=delivery.pk)


def verified(secret: str, request: dict) -> dict:
    return Webhook(secret).verify(request["body"], request["headers"])


# --- the envelope ------------------------------------------------------------------------------------


def test_an_event_is_sent_as_an_envelope_whose_id_every_endpoint_shares(marketplace, receiver) -> None:
    _, first_secret = endpoint_for(marketplace, receiver.url)
    _, second_secret = endpoint_for(marketplace, receiver.url + "/second")

    first, second = publish(marketplace)
    webhook_deliver(delivery_id=first.pk)
    webhook_deliver(delivery_id=second.pk)

    one, other = verified(first_secret, receiver.requests[0]), verified(second_secret, receiver.requests[1])
    assert one["id"] == other["id"] == first.event_id == second.event_id
    assert one["id"].startswith("evt_")
    assert one["type"] == SCORED and one["data"] == DATA
    assert one["timestamp"].endswith("Z")
    assert first.message_id != second.message_id


def test_each_event_of_a_batch_gets_its_own_event_id(marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url)

    deliveries = events_publish(
        [(marketplace.partner.pk, SCORED, {"n": 1}), (marketplace.partner.pk, SCORED, {"n": 2})]
    )

    assert len({d.event_id for d in deliveries}) == 2


def test_a_rolled_back_change_writes_and_sends_nothing(
    marketplace, receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint_for(marketplace, receiver.url)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            publish(marketplace)
            raise RuntimeError("the change failed")

    assert callbacks == []
    assert not WebhookDelivery.objects.exists()
    assert receiver.requests == []


# --- the attempt log ------------------------------------------------------------------------------------


def test_each_attempt_is_logged_with_address_status_latency_and_the_start_of_the_answer(marketplace, receiver) -> None:
    receiver.status, receiver.body = 500, b"x" * 600
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    now = timezone.now()

    webhook_deliver(delivery_id=delivery.pk, now=now)

    (attempt,) = fresh(delivery).attempt_log.all()
    assert attempt.number == 1
    assert attempt.attempted_at == now
    assert attempt.address == "127.0.0.1"
    assert attempt.status_code == 500
    assert attempt.latency_ms is not None and attempt.latency_ms >= 0
    assert attempt.response_excerpt == "x" * 500
    assert attempt.error == "HTTP 500"
    assert not attempt.redelivery


def test_a_refused_connection_is_logged_with_its_error(marketplace) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint_for(marketplace, f"http://127.0.0.1:{port}/hooks")
    (delivery,) = publish(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    (attempt,) = fresh(delivery).attempt_log.all()
    assert attempt.status_code is None
    assert attempt.error.startswith("ConnectionError: could not connect to 127.0.0.1")


# --- retries and disabling on a controlled clock ---------------------------------------------------------


def test_a_failing_receiver_is_retried_on_the_schedule_with_jitter_then_the_delivery_fails(
    marketplace, receiver
) -> None:
    receiver.status = 500
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    now = timezone.now()

    for step in RETRY_SCHEDULE:
        assert webhook_deliver(delivery_id=delivery.pk, now=now) == Status.PENDING
        wait = fresh(delivery).next_attempt_at - now
        assert step * 0.9 <= wait <= step * 1.1
        assert webhook_deliver(delivery_id=delivery.pk, now=now + wait - timedelta(seconds=1)) is None  # not due
        now += wait
    assert webhook_deliver(delivery_id=delivery.pk, now=now) == Status.FAILED

    delivery = fresh(delivery)
    assert delivery.attempts == len(RETRY_SCHEDULE) + 1
    assert [a.number for a in delivery.attempt_log.all()] == list(range(1, len(RETRY_SCHEDULE) + 2))
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    endpoint.refresh_from_db()
    assert endpoint.is_active  # about three days of retries: not yet failing for five days


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_that_is_retried_and_never_followed(code: int, marketplace, receiver) -> None:
    receiver.status = code
    receiver.headers = {"Location": receiver.url + "/elsewhere"}
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    assert [r["path"] for r in receiver.requests] == ["/hooks"]
    assert fresh(delivery).last_error == f"HTTP {code}"


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured_on_the_controlled_clock(code: int, marketplace, receiver) -> None:
    receiver.script = [code]
    receiver.headers = {"Retry-After": "3600"}
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    now = timezone.now()

    webhook_deliver(delivery_id=delivery.pk, now=now)
    retry_at = fresh(delivery).next_attempt_at
    assert timedelta(hours=1) <= retry_at - now <= timedelta(hours=1, seconds=1)
    assert webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(minutes=59)) is None
    receiver.headers = {}

    assert webhook_deliver(delivery_id=delivery.pk, now=retry_at) == Status.DELIVERED
    assert [r["status"] for r in receiver.requests] == [code, 204]
    assert receiver.requests[0]["headers"]["webhook-id"] == receiver.requests[1]["headers"]["webhook-id"]


def test_failing_since_is_set_by_the_first_failure_and_cleared_by_a_success(marketplace, receiver) -> None:
    receiver.script = [500, 500]
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    first = timezone.now()

    webhook_deliver(delivery_id=delivery.pk, now=first)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == first
    second = fresh(delivery).next_attempt_at
    webhook_deliver(delivery_id=delivery.pk, now=second)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == first  # the first failure since the last success

    webhook_deliver(delivery_id=delivery.pk, now=fresh(delivery).next_attempt_at)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_an_endpoint_failing_for_five_days_is_disabled_its_deliveries_cancelled_and_its_contact_emailed(
    marketplace, receiver, django_capture_on_commit_callbacks
) -> None:
    marketplace.partner.technical_contact_email = "tech@marketplace.example"
    marketplace.partner.save()
    receiver.status = 500
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (waiting,) = publish(marketplace)
    WebhookDelivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() + timedelta(hours=3))
    (delivery,) = publish(marketplace)
    now = timezone.now()
    webhook_deliver(delivery_id=delivery.pk, now=now)  # failing since now
    retry = fresh(delivery)

    assert webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(days=4, hours=23)) == Status.PENDING
    assert mail.outbox == []
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=retry.next_attempt_at)
    with django_capture_on_commit_callbacks(execute=True):
        status = webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(days=5))

    endpoint.refresh_from_db()
    assert status == Status.CANCELLED
    assert not endpoint.is_active
    assert endpoint.disabled_at == now + timedelta(days=5)
    assert "5 days" in endpoint.disabled_reason
    assert fresh(waiting).status == Status.CANCELLED
    assert AuditEvent.objects.filter(action="webhook_endpoint.disabled", object_id=str(endpoint.pk)).exists()
    (email,) = mail.outbox
    assert email.to == ["tech@marketplace.example"]
    assert endpoint.url in email.subject
    assert "5 days" in email.body and f"/api/v1/webhooks/{endpoint.pk}/resume" in email.body
    assert publish(marketplace) == []


def test_the_number_of_failing_days_before_disabling_is_a_setting(marketplace, receiver, settings) -> None:
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 1
    receiver.status = 500
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    now = timezone.now()
    webhook_deliver(delivery_id=delivery.pk, now=now)

    assert webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(days=1)) == Status.CANCELLED

    endpoint.refresh_from_db()
    assert not endpoint.is_active


def test_a_410_disables_the_endpoint_and_emails_its_contact(
    marketplace, receiver, django_capture_on_commit_callbacks
) -> None:
    marketplace.partner.technical_contact_email = "tech@marketplace.example"
    marketplace.partner.save()
    receiver.status = 410
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_deliver(delivery_id=delivery.pk) == Status.CANCELLED

    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_at is not None
    assert "410" in endpoint.disabled_reason
    (email,) = mail.outbox
    assert email.to == ["tech@marketplace.example"] and "410" in email.body


def test_a_partner_without_a_technical_contact_is_not_emailed(
    marketplace, receiver, django_capture_on_commit_callbacks
) -> None:
    receiver.status = 410
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver(delivery_id=delivery.pk)

    assert mail.outbox == []


# --- secret rotation -------------------------------------------------------------------------------------


def test_during_the_overlap_both_secrets_sign_and_each_verifies(marketplace, receiver) -> None:
    endpoint, old = endpoint_for(marketplace, receiver.url)
    new = webhook_secret_rotate(endpoint=endpoint, actor=Actor(client=marketplace.api_client))
    (delivery,) = publish(marketplace)

    webhook_deliver(delivery_id=delivery.pk)

    (request,) = receiver.requests
    assert new != old and new.startswith("whsec_")
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verified(old, request) == verified(new, request) == delivery.payload
    assert signing.verify(secrets_=[old], headers=request["headers"], body=request["body"])
    assert signing.verify(secrets_=[new], headers=request["headers"], body=request["body"])


def test_after_the_overlap_only_the_new_secret_signs(marketplace, receiver, settings) -> None:
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 24
    endpoint, old = endpoint_for(marketplace, receiver.url)
    new = webhook_secret_rotate(
        endpoint=endpoint, actor=Actor(client=marketplace.api_client), now=timezone.now() - timedelta(hours=25)
    )
    (delivery,) = publish(marketplace)

    webhook_deliver(delivery_id=delivery.pk)

    (request,) = receiver.requests
    assert len(request["headers"]["webhook-signature"].split(" ")) == 1
    assert verified(new, request) == delivery.payload
    with pytest.raises(WebhookVerificationError):
        verified(old, request)


def test_a_rotation_is_audited_without_any_secret_and_sets_when_the_old_one_expires(marketplace, settings) -> None:
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 6
    endpoint, old = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")
    now = timezone.now()

    new = webhook_secret_rotate(endpoint=endpoint, actor=Actor(client=marketplace.api_client), now=now)

    endpoint.refresh_from_db()
    assert endpoint.secret == new and endpoint.previous_secret == old
    assert endpoint.previous_secret_expires_at == now + timedelta(hours=6)
    event = AuditEvent.objects.get(action="webhook_endpoint.secret_rotated", object_id=str(endpoint.pk))
    assert old not in json.dumps(event.after) and new not in json.dumps(event.after)


def test_verify_refuses_a_stale_timestamp_and_a_tampered_body() -> None:
    secret = signing.secret_generate()
    body = b'{"type":"score.completed"}'
    now = 1_800_000_000
    headers = signing.headers(secrets_=[secret], message_id="msg_1", timestamp=now, body=body)

    assert signing.verify(secrets_=[secret], headers=headers, body=body, now=now + 299)
    assert not signing.verify(secrets_=[secret], headers=headers, body=body, now=now + 301)
    assert not signing.verify(secrets_=[secret], headers=headers, body=body + b" ", now=now)
    assert not signing.verify(secrets_=[signing.secret_generate()], headers=headers, body=body, now=now)


# --- the daily digest ------------------------------------------------------------------------------------


def test_a_digest_endpoint_holds_non_critical_events_and_gets_critical_ones_at_once(marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)

    (held,) = publish(marketplace, SCORE_CHANGED)
    (urgent,) = publish(marketplace, COMPANY_INSOLVENCY_PROCEEDING)

    assert held.status == Status.HELD and held.next_attempt_at is None
    assert urgent.status == Status.PENDING
    assert due_delivery_ids() == [urgent.pk]
    assert webhook_deliver(delivery_id=held.pk) is None


def test_the_digest_bundles_the_held_events_into_one_signed_delivery(marketplace, receiver) -> None:
    endpoint, secret = endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    held = publish(marketplace, SCORE_CHANGED, {"n": 1}) + publish(marketplace, COMPANY_ACCOUNTS_PUBLISHED, {"n": 2})
    now = timezone.now()

    (digest,) = webhook_digests_send(now=now)
    webhook_deliver(delivery_id=digest.pk, now=now)

    (request,) = receiver.requests
    body = verified(secret, request)
    assert body["type"] == DIGEST
    assert body["data"]["events"] == [d.payload for d in held]
    assert all(fresh(d).status == Status.DIGESTED and fresh(d).digest_id == digest.pk for d in held)
    assert fresh(digest).status == Status.DELIVERED
    endpoint.refresh_from_db()
    assert endpoint.last_digest_at == now


def test_running_the_digest_again_sends_nothing_more(marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    publish(marketplace, SCORE_CHANGED)

    assert len(webhook_digests_send()) == 1
    assert webhook_digests_send() == []
    assert WebhookDelivery.objects.filter(event_type=DIGEST).count() == 1


def test_each_digest_endpoint_gets_its_own_digest_and_immediate_ones_none(marketplace, other_partner, receiver) -> None:
    first, _ = endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    second, _ = endpoint_for(other_partner, receiver.url, mode=Mode.DIGEST)
    endpoint_for(marketplace, receiver.url + "/immediate")
    publish(marketplace, SCORE_CHANGED)
    publish(other_partner, SCORE_CHANGED)

    digests = webhook_digests_send()

    assert sorted(d.endpoint_id for d in digests) == sorted([first.pk, second.pk])
    assert all(len(d.payload["data"]["events"]) == 1 for d in digests)


def test_switching_a_digest_endpoint_to_immediate_sends_what_it_held(marketplace, receiver) -> None:
    endpoint, _ = endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    (held,) = publish(marketplace, SCORE_CHANGED)

    webhook_endpoint_update(endpoint=endpoint, actor=Actor(client=marketplace.api_client), mode=Mode.IMMEDIATE)

    assert fresh(held).status == Status.PENDING
    assert webhook_deliver(delivery_id=held.pk) == Status.DELIVERED
    assert webhook_digests_send() == []


@pytest.mark.django_db(transaction=True)
def test_two_digest_runs_at_once_send_one_digest(marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    for n in range(5):
        publish(marketplace, SCORE_CHANGED, {"n": n})
    results: list[int] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(len(webhook_digests_send()))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [0, 1]
    (digest,) = WebhookDelivery.objects.filter(event_type=DIGEST)
    assert len(digest.payload["data"]["events"]) == 5
    assert WebhookDelivery.objects.filter(status=Status.DIGESTED, digest=digest).count() == 5


# --- endpoint settings, pause and resume --------------------------------------------------------------


def test_an_update_changes_event_types_and_mode_and_is_audited(marketplace) -> None:
    endpoint, _ = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")

    webhook_endpoint_update(
        endpoint=endpoint, actor=Actor(client=marketplace.api_client), event_types=[SCORE_CHANGED], mode=Mode.DIGEST
    )

    endpoint.refresh_from_db()
    assert endpoint.event_types == [SCORE_CHANGED] and endpoint.mode == Mode.DIGEST
    event = AuditEvent.objects.get(action="webhook_endpoint.updated", object_id=str(endpoint.pk))
    assert event.before == {"event_types": [], "mode": "immediate"}
    assert event.after == {"event_types": [SCORE_CHANGED], "mode": "digest"}


@pytest.mark.parametrize(
    ("changes", "field_name"), [({"event_types": ["score.exploded"]}, "event_types"), ({"mode": "weekly"}, "mode")]
)
def test_an_update_with_bad_values_is_refused_naming_the_field(marketplace, changes, field_name) -> None:
    endpoint, _ = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")

    with pytest.raises(ValidationError) as error:
        webhook_endpoint_update(endpoint=endpoint, actor=Actor(client=marketplace.api_client), **changes)

    assert field_name in error.value.message_dict


def test_a_paused_endpoint_keeps_its_deliveries_pending_and_sends_nothing_until_resumed(
    marketplace, receiver, django_capture_on_commit_callbacks
) -> None:
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    actor = Actor(client=marketplace.api_client)
    webhook_endpoint_pause(endpoint=endpoint, actor=actor)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        (delivery,) = publish(marketplace)

    assert callbacks == []  # nothing enqueued
    assert delivery.status == Status.PENDING
    assert due_delivery_ids() == []
    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert receiver.requests == []

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        webhook_endpoint_resume(endpoint=endpoint, actor=actor)

    assert len(callbacks) == 1
    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED
    assert len(receiver.requests) == 1
    actions = AuditEvent.objects.filter(object_id=str(endpoint.pk)).values_list("action", flat=True)
    assert {"webhook_endpoint.paused", "webhook_endpoint.resumed"} <= set(actions)


def test_resuming_a_disabled_endpoint_enables_it_again(marketplace, receiver) -> None:
    receiver.script = [410]
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    webhook_deliver(delivery_id=publish(marketplace)[0].pk)

    webhook_endpoint_resume(endpoint=endpoint, actor=Actor(client=marketplace.api_client))

    endpoint.refresh_from_db()
    assert endpoint.is_active and endpoint.disabled_at is None and endpoint.disabled_reason == ""
    (delivery,) = publish(marketplace)
    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED


# --- redelivery ------------------------------------------------------------------------------------------


def test_a_redelivery_is_sent_again_with_the_same_webhook_id_and_logged_as_one(marketplace, receiver) -> None:
    _, secret = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    webhook_deliver(delivery_id=delivery.pk)

    webhook_redeliver(delivery=fresh(delivery), actor=Actor(client=marketplace.api_client))
    assert fresh(delivery).status == Status.PENDING
    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED

    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == delivery.message_id
    assert verified(secret, second) == delivery.payload
    assert [(a.number, a.redelivery) for a in fresh(delivery).attempt_log.all()] == [(1, False), (2, True)]
    assert AuditEvent.objects.filter(action="webhook_delivery.redelivered", object_id=str(delivery.pk)).exists()


def test_a_failed_delivery_can_be_redelivered_with_a_fresh_retry_schedule(marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, attempts=10, next_attempt_at=None)

    webhook_redeliver(delivery=fresh(delivery), actor=Actor(client=marketplace.api_client))

    assert fresh(delivery).attempts == 0
    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED


@pytest.mark.parametrize("status", [Status.PENDING, Status.HELD])
def test_a_delivery_still_waiting_cannot_be_redelivered(status: str, marketplace, receiver) -> None:
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=status)

    with pytest.raises(WebhookConflict):
        webhook_redeliver(delivery=fresh(delivery), actor=Actor(client=marketplace.api_client))


def test_a_disabled_endpoints_delivery_cannot_be_redelivered(marketplace, receiver) -> None:
    receiver.status = 410
    endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)
    webhook_deliver(delivery_id=delivery.pk)

    with pytest.raises(WebhookConflict, match="disabled"):
        webhook_redeliver(delivery=fresh(delivery), actor=Actor(client=marketplace.api_client))


# --- an endpoint changed while a delivery is in flight ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_while_its_delivery_is_in_flight_is_no_error(marketplace, receiver) -> None:
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)

    def delete_endpoint() -> None:  # the partner deletes it while our request is being answered
        try:
            webhook_endpoint_delete(endpoint=endpoint, actor=Actor(client=marketplace.api_client))
        finally:
            connection.close()

    receiver.on_request = delete_endpoint

    assert webhook_deliver(delivery_id=delivery.pk) is None

    assert len(receiver.requests) == 1
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert not DeliveryAttempt.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_paused_while_its_delivery_is_in_flight_logs_the_attempt_and_waits(marketplace, receiver) -> None:
    receiver.status = 500
    endpoint, _ = endpoint_for(marketplace, receiver.url)
    (delivery,) = publish(marketplace)

    def pause_endpoint() -> None:
        try:
            webhook_endpoint_pause(endpoint=endpoint, actor=Actor(client=marketplace.api_client))
        finally:
            connection.close()

    receiver.on_request = pause_endpoint

    assert webhook_deliver(delivery_id=delivery.pk) == Status.PENDING

    delivery = fresh(delivery)
    assert delivery.attempt_log.count() == 1
    assert webhook_deliver(delivery_id=delivery.pk, now=delivery.next_attempt_at) is None
    assert due_delivery_ids() == []


def test_the_delivery_log_is_newest_first(marketplace) -> None:
    endpoint, _ = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")
    first = publish(marketplace)[0]
    second = publish(marketplace)[0]

    assert list(webhook_deliveries_of(endpoint)) == [second, first]


def test_the_digest_leaves_daily_at_seven_paris_time_by_default(settings) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["send-webhook-digests"]

    assert entry["task"] == "alerts.tasks.send_webhook_digests"
    assert entry["schedule"].hour == {7} and entry["schedule"].minute == {0}
    assert settings.CELERY_TIMEZONE == "Europe/Paris"


def test_the_digest_task_bundles_what_is_held(marketplace, receiver) -> None:
    from alerts.tasks import send_webhook_digests

    endpoint_for(marketplace, receiver.url, mode=Mode.DIGEST)
    publish(marketplace, SCORE_CHANGED)

    send_webhook_digests.apply()

    assert WebhookDelivery.objects.filter(event_type=DIGEST, status=Status.PENDING).count() == 1
