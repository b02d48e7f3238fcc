"""Webhooks through alerts.services: endpoints, the outbox, and Standard Webhooks delivery to a real HTTP server.

``webhook_deliver`` is called directly (the Celery task only wraps it); the receivers are real local HTTP
servers, nothing is mocked. ``event_publish`` enqueues through ``transaction.on_commit``, which never runs
in these (non-transactional) tests: each test decides itself when a delivery is attempted.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from alerts import signing
from alerts.models import WebhookDelivery, WebhookEndpoint
from alerts.services import (
    RETRY_SCHEDULE,
    due_delivery_ids,
    event_publish,
    url_problem,
    webhook_deliver,
    webhook_endpoint_create,
)
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent

EVENT = "score.completed"
PAYLOAD = {"dossier_id": "d-1", "score": 742, "probability_of_default": 0.03, "decision": "accept"}
Status = WebhookDelivery.Status


# --- fixtures and helpers ---------------------------------------------------------------------------


@dataclass
class ScriptedReceiver:
    """A local HTTP server answering every request (any method) with ``status`` and ``headers``."""

    url: str = ""
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def scripted_receiver() -> Iterator[ScriptedReceiver]:
    receiver = ScriptedReceiver()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "body": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            )
            self.send_response(receiver.status)
            for name, value in receiver.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_urls_allowed(settings) -> None:
    """The local receivers live on 127.0.0.1, which only development settings allow."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PRODUCTION = False


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def endpoint_for(partner_client, url: str, event_types: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoint_create(
        partner=partner_client.partner,
        url=url,
        event_types=event_types or [],
        actor=Actor(client=partner_client.api_client),
    )


def one_delivery(partner_client) -> WebhookDelivery:
    (delivery,) = event_publish(partner=partner_client.partner, event_type=EVENT, payload=PAYLOAD)
    return delivery


def make_due(delivery: WebhookDelivery, **fields: object) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1), **fields
    )


def delivered_once(delivery: WebhookDelivery) -> WebhookDelivery:
    webhook_deliver(delivery_id=delivery.pk)
    return WebhookDelivery.objects.get(pk=delivery.pk)


# --- registering endpoints ------------------------------------------------------------------------------


def test_registering_an_endpoint_returns_a_standard_webhooks_secret(marketplace, private_urls_allowed) -> None:
    endpoint, secret = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")

    assert secret.startswith("whsec_")
    assert len(signing._key(secret)) == 32
    assert endpoint.partner == marketplace.partner
    assert endpoint.is_active


def test_the_secret_is_stored_with_the_endpoint_and_differs_per_endpoint(marketplace, private_urls_allowed) -> None:
    first, first_secret = endpoint_for(marketplace, "http://127.0.0.1:9/a")
    _, second_secret = endpoint_for(marketplace, "http://127.0.0.1:9/b")

    assert WebhookEndpoint.objects.get(pk=first.pk).secret == first_secret
    assert first_secret != second_secret


def test_registering_an_endpoint_is_audited_without_the_secret(marketplace, private_urls_allowed) -> None:
    endpoint, secret = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")

    event = AuditEvent.objects.get(action="webhook_endpoint.created", object_id=str(endpoint.pk))
    assert event.actor_client == marketplace.api_client
    assert secret not in json.dumps(event.after)


def test_an_unknown_event_type_is_refused(marketplace, private_urls_allowed) -> None:
    with pytest.raises(ValidationError) as error:
        endpoint_for(marketplace, "http://127.0.0.1:9/hooks", ["score.exploded"])

    assert "event_types" in error.value.message_dict
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["ftp://example.com/hooks", "file:///etc/passwd", "/relative/hooks", "http:///x"])
def test_a_url_that_is_not_absolute_http_is_refused(url: str, private_urls_allowed) -> None:
    assert url_problem(url) == "The URL must be an absolute http(s) URL."


def test_production_refuses_plain_http_urls(settings) -> None:
    settings.PRODUCTION = True

    assert url_problem("http://93.184.215.14/hooks") == "Webhook URLs must use https."


# --- SSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.5/",
        "http://169.254.169.254/",
        "http://localhost/",
        "http://192.168.1.10/",
        "http://172.16.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
        "https://127.0.0.1:8443/hooks",
    ],
)
def test_without_private_urls_a_loopback_private_or_link_local_target_is_refused(url: str, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    assert url_problem(url) is not None


def test_without_private_urls_a_public_address_is_accepted(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    assert url_problem("https://93.184.215.14/hooks") is None


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "http://10.0.0.5/", "http://169.254.169.254/", "http://localhost/"]
)
def test_without_private_urls_registering_a_private_target_raises_a_validation_error_on_url(
    url: str, settings, marketplace
) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    with pytest.raises(ValidationError) as error:
        endpoint_for(marketplace, url)

    assert "url" in error.value.message_dict
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("allow_private", [True, False])
def test_a_url_with_an_out_of_range_port_is_refused_not_crashed_on(allow_private: bool, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = allow_private

    assert url_problem("https://93.184.215.14:99999/hooks") is not None


def test_the_target_is_checked_again_at_send_time(marketplace, webhook_receiver, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    delivery = delivered_once(delivery)

    assert webhook_receiver.requests == []
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert "non-public" in delivery.last_error


# --- publishing to the outbox -----------------------------------------------------------------------


def test_publishing_writes_one_pending_delivery_per_active_subscribed_endpoint(
    marketplace, other_partner, private_urls_allowed
) -> None:
    all_events, _ = endpoint_for(marketplace, "http://127.0.0.1:9/all")
    subscribed, _ = endpoint_for(marketplace, "http://127.0.0.1:9/scores", [EVENT])
    inactive, _ = endpoint_for(marketplace, "http://127.0.0.1:9/off")
    WebhookEndpoint.objects.filter(pk=inactive.pk).update(is_active=False)
    WebhookEndpoint.objects.create(
        partner=marketplace.partner,
        url="http://127.0.0.1:9/other",
        secret=signing.secret_generate(),
        event_types=["accounts.published"],
    )
    endpoint_for(other_partner, "http://127.0.0.1:9/someone-else")

    deliveries = event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD)

    assert {d.endpoint_id for d in deliveries} == {all_events.pk, subscribed.pk}
    assert WebhookDelivery.objects.count() == 2
    assert all(d.status == Status.PENDING and d.attempts == 0 for d in deliveries)


def test_a_published_delivery_is_due_at_once_and_carries_the_event_envelope(marketplace, private_urls_allowed) -> None:
    endpoint_for(marketplace, "http://127.0.0.1:9/hooks")
    before = timezone.now()

    delivery = WebhookDelivery.objects.get(pk=one_delivery(marketplace).pk)

    assert before <= delivery.next_attempt_at <= timezone.now()
    assert delivery.event_type == EVENT
    assert delivery.payload["type"] == EVENT
    assert delivery.payload["data"] == PAYLOAD
    assert delivery.payload["timestamp"]


def test_each_delivery_gets_its_own_message_id(marketplace, private_urls_allowed) -> None:
    endpoint_for(marketplace, "http://127.0.0.1:9/a")
    endpoint_for(marketplace, "http://127.0.0.1:9/b")

    first = event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD)
    second = event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD)

    ids = [d.message_id for d in first + second]
    assert len(set(ids)) == 4
    assert all(i.startswith("msg_") for i in ids)


def test_publishing_enqueues_one_send_per_delivery_only_after_commit(
    marketplace, private_urls_allowed, django_capture_on_commit_callbacks
) -> None:
    endpoint_for(marketplace, "http://127.0.0.1:9/a")
    endpoint_for(marketplace, "http://127.0.0.1:9/b")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliveries = event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD)

    assert len(deliveries) == 2
    assert len(callbacks) == 2


def test_a_partner_without_endpoints_publishes_nothing(marketplace) -> None:
    assert event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD) == []


# --- delivering: success and signatures ---------------------------------------------------------------


def test_a_2xx_answer_marks_the_delivery_delivered(marketplace, webhook_receiver, private_urls_allowed) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)

    status = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert status == Status.DELIVERED
    assert delivery.status == Status.DELIVERED
    assert delivery.attempts == 1
    assert delivery.last_status_code == 204
    assert delivery.last_error == ""
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert len(webhook_receiver.requests) == 1


@pytest.mark.parametrize("code", [200, 201, 202, 299])
def test_any_2xx_counts_as_delivered(code: int, marketplace, webhook_receiver, private_urls_allowed) -> None:
    webhook_receiver.status = code
    endpoint_for(marketplace, webhook_receiver.url)

    assert webhook_deliver(delivery_id=one_delivery(marketplace).pk) == Status.DELIVERED


def test_the_signature_verifies_with_the_standardwebhooks_library(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    _, secret = endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)

    webhook_deliver(delivery_id=delivery.pk)

    (request,) = webhook_receiver.requests
    assert Webhook(secret).verify(request["body"], request["headers"]) == delivery.payload


def test_the_signature_does_not_verify_with_another_secret(marketplace, webhook_receiver, private_urls_allowed) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    webhook_deliver(delivery_id=one_delivery(marketplace).pk)

    (request,) = webhook_receiver.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_generate()).verify(request["body"], request["headers"])


def test_the_request_carries_the_standard_webhooks_headers(marketplace, webhook_receiver, private_urls_allowed) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)

    webhook_deliver(delivery_id=delivery.pk)

    headers = webhook_receiver.requests[0]["headers"]
    assert headers["webhook-id"] == delivery.message_id
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["content-type"] == "application/json"


def test_the_body_is_the_json_envelope(marketplace, webhook_receiver, private_urls_allowed) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)

    webhook_deliver(delivery_id=delivery.pk)

    assert json.loads(webhook_receiver.requests[0]["body"]) == delivery.payload


def test_during_a_rotation_each_secret_verifies_the_same_message() -> None:
    old, new = signing.secret_generate(), signing.secret_generate()
    body = b'{"type":"score.completed"}'

    headers = signing.headers(secrets_=[old, new], message_id="msg_1", timestamp=int(time.time()), body=body)

    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_the_webhook_id_stays_the_same_across_retries_while_the_timestamp_changes(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    _, secret = endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    webhook_receiver.status = 500
    webhook_deliver(delivery_id=delivery.pk)
    first_timestamp = int(webhook_receiver.requests[0]["headers"]["webhook-timestamp"])
    time.sleep(max(0.0, first_timestamp + 1 - time.time()) + 0.05)  # into the next second
    make_due(delivery)
    webhook_receiver.status = 204

    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED

    first, second = (r["headers"] for r in webhook_receiver.requests)
    assert first["webhook-id"] == second["webhook-id"] == delivery.message_id
    assert int(second["webhook-timestamp"]) > int(first["webhook-timestamp"])
    Webhook(secret).verify(webhook_receiver.requests[1]["body"], second)


# --- delivering: failures and retries ----------------------------------------------------------------


def test_a_500_leaves_the_delivery_pending_for_a_retry_in_about_five_seconds(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    webhook_receiver.status = 500
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    before = timezone.now()

    status = webhook_deliver(delivery_id=delivery.pk)

    after = timezone.now()
    delivery.refresh_from_db()
    assert status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500"
    assert before + timedelta(seconds=4.5) <= delivery.next_attempt_at <= after + timedelta(seconds=5.5)


@pytest.mark.parametrize("previous_attempts", [1, 2, 5, len(RETRY_SCHEDULE) - 1])
def test_the_nth_failure_waits_the_nth_step_of_the_schedule_with_ten_percent_jitter(
    previous_attempts: int, marketplace, webhook_receiver, private_urls_allowed
) -> None:
    webhook_receiver.status = 500
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    make_due(delivery, attempts=previous_attempts)
    step = RETRY_SCHEDULE[previous_attempts]
    before = timezone.now()

    delivery = delivered_once(delivery)

    assert delivery.status == Status.PENDING
    assert delivery.attempts == previous_attempts + 1
    assert before + step * 0.9 <= delivery.next_attempt_at <= timezone.now() + step * 1.1


def test_the_retry_schedule_spans_about_three_days() -> None:
    assert RETRY_SCHEDULE[0] == timedelta(seconds=5)
    assert RETRY_SCHEDULE == sorted(RETRY_SCHEDULE)
    assert timedelta(days=2.5) <= sum(RETRY_SCHEDULE, timedelta()) <= timedelta(days=3.5)


def test_after_the_last_scheduled_retry_fails_the_delivery_is_failed(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    webhook_receiver.status = 500
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    make_due(delivery, attempts=len(RETRY_SCHEDULE))

    status = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert status == Status.FAILED
    assert delivery.status == Status.FAILED
    assert delivery.attempts == len(RETRY_SCHEDULE) + 1
    assert delivery.next_attempt_at is None
    assert len(webhook_receiver.requests) == 1


def test_a_failed_delivery_does_not_disable_the_endpoint(marketplace, webhook_receiver, private_urls_allowed) -> None:
    webhook_receiver.status = 500
    endpoint, _ = endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    make_due(delivery, attempts=len(RETRY_SCHEDULE))

    webhook_deliver(delivery_id=delivery.pk)

    endpoint.refresh_from_db()
    assert endpoint.is_active


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(
    code: int, marketplace, scripted_receiver, private_urls_allowed
) -> None:
    scripted_receiver.status = code
    scripted_receiver.headers = {"Location": scripted_receiver.url.replace("/hooks", "/elsewhere")}
    endpoint_for(marketplace, scripted_receiver.url)
    delivery = one_delivery(marketplace)

    status = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert status == Status.PENDING
    assert delivery.last_status_code == code
    assert delivery.attempts == 1
    assert [(r["method"], r["path"]) for r in scripted_receiver.requests] == [("POST", "/hooks")]


def test_a_410_disables_the_endpoint_and_cancels_its_pending_deliveries(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    webhook_receiver.status = 410
    endpoint, _ = endpoint_for(marketplace, webhook_receiver.url)
    delivered = one_delivery(marketplace)
    WebhookDelivery.objects.filter(pk=delivered.pk).update(status=Status.DELIVERED, next_attempt_at=None)
    waiting = one_delivery(marketplace)
    WebhookDelivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() + timedelta(hours=1))
    sent = one_delivery(marketplace)

    status = webhook_deliver(delivery_id=sent.pk)

    endpoint.refresh_from_db()
    assert status == Status.CANCELLED
    assert not endpoint.is_active
    assert "410" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get(pk=sent.pk).status == Status.CANCELLED
    assert WebhookDelivery.objects.get(pk=waiting.pk).status == Status.CANCELLED
    assert WebhookDelivery.objects.get(pk=waiting.pk).next_attempt_at is None
    assert WebhookDelivery.objects.get(pk=delivered.pk).status == Status.DELIVERED


def test_a_410_is_audited_as_a_system_disable(marketplace, webhook_receiver, private_urls_allowed) -> None:
    webhook_receiver.status = 410
    endpoint, _ = endpoint_for(marketplace, webhook_receiver.url)

    webhook_deliver(delivery_id=one_delivery(marketplace).pk)

    event = AuditEvent.objects.get(action="webhook_endpoint.disabled", object_id=str(endpoint.pk))
    assert event.actor_system == "webhooks"


def test_a_disabled_endpoint_gets_no_new_deliveries(marketplace, webhook_receiver, private_urls_allowed) -> None:
    webhook_receiver.status = 410
    endpoint_for(marketplace, webhook_receiver.url)
    webhook_deliver(delivery_id=one_delivery(marketplace).pk)

    assert event_publish(partner=marketplace.partner, event_type=EVENT, payload=PAYLOAD) == []


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_in_seconds_delays_the_next_attempt_at_least_that_long(
    code: int, marketplace, scripted_receiver, private_urls_allowed
) -> None:
    scripted_receiver.status = code
    scripted_receiver.headers = {"Retry-After": "120"}
    endpoint_for(marketplace, scripted_receiver.url)
    delivery = one_delivery(marketplace)
    before = timezone.now()

    delivery = delivered_once(delivery)

    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at >= before + timedelta(seconds=120)
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=121)


def test_retry_after_as_an_http_date_is_honoured(marketplace, scripted_receiver, private_urls_allowed) -> None:
    scripted_receiver.status = 503
    not_before = timezone.now().replace(microsecond=0) + timedelta(minutes=10)
    scripted_receiver.headers = {"Retry-After": format_datetime(not_before, usegmt=True)}
    endpoint_for(marketplace, scripted_receiver.url)

    delivery = delivered_once(one_delivery(marketplace))

    assert delivery.next_attempt_at >= not_before - timedelta(seconds=1)
    assert delivery.next_attempt_at <= not_before + timedelta(seconds=2)


def test_a_retry_after_shorter_than_the_schedule_does_not_shorten_it(
    marketplace, scripted_receiver, private_urls_allowed
) -> None:
    scripted_receiver.status = 429
    scripted_receiver.headers = {"Retry-After": "1"}
    endpoint_for(marketplace, scripted_receiver.url)
    before = timezone.now()

    delivery = delivered_once(one_delivery(marketplace))

    assert delivery.next_attempt_at >= before + timedelta(seconds=4.5)


def test_a_connection_error_leaves_the_delivery_pending_with_the_error(
    marketplace, closed_port_url, private_urls_allowed
) -> None:
    endpoint_for(marketplace, closed_port_url)
    delivery = one_delivery(marketplace)

    status = webhook_deliver(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert status == Status.PENDING
    assert delivery.attempts == 1
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ConnectionError")
    assert delivery.next_attempt_at > timezone.now()


# --- not due, and the sweep --------------------------------------------------------------------------


def test_a_delivery_not_yet_due_is_not_sent(marketplace, webhook_receiver, private_urls_allowed) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    later = timezone.now() + timedelta(minutes=5)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later)

    assert webhook_deliver(delivery_id=delivery.pk) is None

    delivery.refresh_from_db()
    assert webhook_receiver.requests == []
    assert delivery.attempts == 0
    assert delivery.next_attempt_at == later


@pytest.mark.parametrize("status", [Status.DELIVERED, Status.FAILED, Status.CANCELLED])
def test_a_delivery_that_is_no_longer_pending_is_never_sent_again(
    status: str, marketplace, webhook_receiver, private_urls_allowed
) -> None:
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    make_due(delivery, status=status)

    assert webhook_deliver(delivery_id=delivery.pk) is None
    assert webhook_receiver.requests == []


def test_a_delivery_that_no_longer_exists_is_skipped(db) -> None:
    assert webhook_deliver(delivery_id=987654) is None


def test_the_sweep_returns_only_due_pending_deliveries_oldest_first(marketplace, private_urls_allowed) -> None:
    endpoint, _ = endpoint_for(marketplace, "http://127.0.0.1:9/hooks")
    now = timezone.now()

    def delivery(status: str, next_attempt_at: object) -> int:
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=WebhookDelivery.new_message_id(),
            event_type=EVENT,
            payload={},
            status=status,
            next_attempt_at=next_attempt_at,
        ).pk

    recent = delivery(Status.PENDING, now - timedelta(seconds=1))
    oldest = delivery(Status.PENDING, now - timedelta(hours=1))
    delivery(Status.PENDING, now + timedelta(minutes=5))  # scheduled retry, or a worker's lease
    delivery(Status.DELIVERED, None)
    delivery(Status.FAILED, None)
    delivery(Status.CANCELLED, None)
    delivery(Status.DELIVERED, now - timedelta(hours=2))  # a stale timestamp on a finished row

    assert due_delivery_ids() == [oldest, recent]


def test_the_sweep_returns_at_most_limit_ids(marketplace, private_urls_allowed) -> None:
    endpoint_for(marketplace, "http://127.0.0.1:9/hooks")
    for _ in range(3):
        make_due(one_delivery(marketplace))

    assert len(due_delivery_ids(limit=2)) == 2


def test_a_failed_attempt_leaves_the_sweep_until_its_retry_is_due(
    marketplace, webhook_receiver, private_urls_allowed
) -> None:
    webhook_receiver.status = 500
    endpoint_for(marketplace, webhook_receiver.url)
    delivery = one_delivery(marketplace)
    assert due_delivery_ids() == [delivery.pk]

    webhook_deliver(delivery_id=delivery.pk)

    assert due_delivery_ids() == []


# --- the partner's door: /api/v1/webhooks ------------------------------------------------------------


def _bearer(client, partner_client) -> dict[str, str]:
    from tests.conftest import obtain_token

    return {"HTTP_AUTHORIZATION": f"Bearer {obtain_token(client, partner_client)}"}


def test_a_partner_registers_lists_and_deletes_its_endpoints_through_the_api(client, marketplace):
    auth = _bearer(client, marketplace)
    created = client.post(
        "/api/v1/webhooks", {"url": "https://hooks.example.com/risk"}, content_type="application/json", **auth
    )
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhooks", **auth).json()["results"]
    assert [e["url"] for e in listed] == ["https://hooks.example.com/risk"]
    assert "secret" not in listed[0]

    deleted = client.delete(f"/api/v1/webhooks/{created.json()['id']}", **auth)
    assert deleted.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert AuditEvent.objects.filter(action="webhook_endpoint.deleted", actor_client=marketplace.api_client).exists()


def test_a_partner_cannot_see_or_delete_another_partners_endpoint(client, marketplace, other_partner):
    endpoint, _ = webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.example.com/a",
        event_types=[],
        actor=Actor(client=marketplace.api_client),
    )
    auth = _bearer(client, other_partner)
    assert client.get("/api/v1/webhooks", **auth).json()["results"] == []
    response = client.delete(f"/api/v1/webhooks/{endpoint.pk}", **auth)
    assert response.status_code == 404
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "https://hooks.example.com/", "event_types": ["score.exploded"]}, "event_types"),
        ({}, "url"),
    ],
)
def test_a_bad_registration_gets_a_400_naming_the_field(client, marketplace, body, field):
    response = client.post("/api/v1/webhooks", body, content_type="application/json", **_bearer(client, marketplace))
    assert response.status_code == 400
    assert any(name.startswith(field) for name in response.json()["errors"])
    assert not WebhookEndpoint.objects.exists()
