"""The partner's webhook API (issue 11): read and change an endpoint, rotate its secret, pause and resume it,
read its delivery log, ask for a redelivery. Scope ``webhooks:manage``; errors are problem+json.

Through Django's test client with real client-credentials tokens; deliveries go to real local receivers.
"""

from __future__ import annotations

import json

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from alerts.events import COMPANY_INSOLVENCY_PROCEEDING, SCORE_CHANGED
from alerts.models import WebhookDelivery, WebhookEndpoint
from alerts.services import event_publish, webhook_deliver
from riskoffice.models import AuditEvent

from .conftest import make_partner_client, obtain_token, problem_of

Status = WebhookDelivery.Status


@pytest.fixture(autouse=True)
def private_urls_allowed(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PRODUCTION = False


class PartnerApi:
    """A partner's authenticated JSON calls."""

    def __init__(self, client, partner_client) -> None:
        self.client, self.partner = client, partner_client
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {obtain_token(client, partner_client)}"}

    def call(self, method: str, path: str, body: object = None, **extra: str):
        data = "" if body is None else (body if isinstance(body, (str, bytes)) else json.dumps(body))
        return getattr(self.client, method)(path, data, content_type="application/json", **self.auth, **extra)

    def get(self, path: str):
        return self.client.get(path, **self.auth)

    def post(self, path: str, body: object = None, **extra: str):
        return self.call("post", path, body, **extra)

    def patch(self, path: str, body: object = None):
        return self.call("patch", path, body)

    def delete(self, path: str):
        return self.call("delete", path)


@pytest.fixture
def partner_api(client, marketplace) -> PartnerApi:
    return PartnerApi(client, marketplace)


@pytest.fixture
def registered(partner_api, webhook_receiver) -> dict:
    response = partner_api.post("/api/v1/webhooks", {"url": webhook_receiver.url})
    assert response.status_code == 201, response.content
    return response.json()


def publish(partner_client, event_type: str = "score.completed", data: dict | None = None) -> WebhookDelivery:
    (delivery,) = event_publish(partner=partner_client.partner, event_type=event_type, payload=data or {"n": 1})
    return delivery


# --- the endpoint ----------------------------------------------------------------------------------------


def test_an_endpoint_reads_with_its_mode_pause_failure_and_rotation_state(partner_api, registered) -> None:
    body = partner_api.get(f"/api/v1/webhooks/{registered['id']}").json()

    assert body["id"] == registered["id"]
    assert body["mode"] == "immediate"
    assert body["paused"] is False
    assert body["failing_since"] is None
    assert body["disabled_at"] is None
    assert body["previous_secret_expires_at"] is None
    assert "secret" not in body


def test_an_endpoint_can_be_registered_as_a_daily_digest(partner_api, webhook_receiver) -> None:
    response = partner_api.post("/api/v1/webhooks", {"url": webhook_receiver.url, "mode": "digest"})

    assert response.status_code == 201
    assert response.json()["mode"] == "digest"


def test_patch_changes_event_types_and_mode(partner_api, registered, marketplace) -> None:
    response = partner_api.patch(
        f"/api/v1/webhooks/{registered['id']}", {"event_types": [SCORE_CHANGED], "mode": "digest"}
    )

    assert response.status_code == 200, response.content
    assert response.json()["event_types"] == [SCORE_CHANGED]
    assert response.json()["mode"] == "digest"
    event = AuditEvent.objects.get(action="webhook_endpoint.updated", object_id=str(registered["id"]))
    assert event.actor_client == marketplace.api_client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_types": ["score.exploded"]}, "event_types[0]"),
        ({"mode": "weekly"}, "mode"),
        ({"url": "https://elsewhere.example/hooks"}, "url"),
        ({"secret": "whsec_x"}, "secret"),
        ({}, "body"),
        ({"event_types": "score.changed"}, "event_types"),
    ],
)
def test_a_bad_patch_is_a_400_problem_naming_the_field(partner_api, registered, body, field) -> None:
    response = partner_api.patch(f"/api/v1/webhooks/{registered['id']}", body)

    assert response.status_code == 400
    assert field in problem_of(response)["errors"]
    assert WebhookEndpoint.objects.get(pk=registered["id"]).mode == "immediate"


def test_an_unknown_field_at_registration_is_refused(partner_api, webhook_receiver) -> None:
    response = partner_api.post("/api/v1/webhooks", {"url": webhook_receiver.url, "retries": 3})

    assert response.status_code == 400
    assert "retries" in problem_of(response)["errors"]
    assert not WebhookEndpoint.objects.exists()


def test_a_registration_to_a_private_address_in_production_is_a_400_on_url(partner_api, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False

    response = partner_api.post("/api/v1/webhooks", {"url": "https://127.0.0.1/hooks"})

    assert response.status_code == 400
    assert "non-public" in problem_of(response)["errors"]["url"][0]


# --- rotation --------------------------------------------------------------------------------------------


def test_rotating_returns_the_new_secret_once_and_both_sign_during_the_overlap(
    partner_api, registered, marketplace, webhook_receiver
) -> None:
    response = partner_api.post(f"/api/v1/webhooks/{registered['id']}/rotate-secret")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != registered["secret"]
    assert body["previous_secret_expires_at"] is not None
    assert "secret" not in partner_api.get(f"/api/v1/webhooks/{registered['id']}").json()
    webhook_deliver(delivery_id=publish(marketplace).pk)
    (request,) = webhook_receiver.requests
    for secret in (registered["secret"], body["secret"]):
        Webhook(secret).verify(request["body"], request["headers"])


def test_a_rotation_with_a_body_is_refused(partner_api, registered) -> None:
    response = partner_api.post(f"/api/v1/webhooks/{registered['id']}/rotate-secret", {"secret": "whsec_mine"})

    assert response.status_code == 400
    assert "secret" in problem_of(response)["errors"]


# --- pause and resume -----------------------------------------------------------------------------------


def test_pause_and_resume(partner_api, registered, marketplace, webhook_receiver) -> None:
    paused = partner_api.post(f"/api/v1/webhooks/{registered['id']}/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    delivery = publish(marketplace)
    assert webhook_deliver(delivery_id=delivery.pk) is None

    resumed = partner_api.post(f"/api/v1/webhooks/{registered['id']}/resume")

    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED
    assert len(webhook_receiver.requests) == 1


# --- the delivery log ---------------------------------------------------------------------------------


def test_the_delivery_log_lists_newest_first_with_filters(partner_api, registered, marketplace) -> None:
    first = publish(marketplace)
    second = publish(marketplace, COMPANY_INSOLVENCY_PROCEEDING)
    webhook_deliver(delivery_id=first.pk)
    path = f"/api/v1/webhooks/{registered['id']}/deliveries"

    listed = partner_api.get(path).json()
    assert [d["message_id"] for d in listed["results"]] == [second.message_id, first.message_id]
    assert listed["results"][1]["status"] == "delivered" and listed["results"][1]["attempts"] == 1
    assert listed["results"][0]["event_id"] == second.event_id
    assert {"next", "previous"} <= set(listed)

    delivered = partner_api.get(f"{path}?status=delivered").json()["results"]
    assert [d["message_id"] for d in delivered] == [first.message_id]
    typed = partner_api.get(f"{path}?event_type={COMPANY_INSOLVENCY_PROCEEDING}").json()["results"]
    assert [d["message_id"] for d in typed] == [second.message_id]


def test_the_delivery_log_pages_by_cursor(partner_api, registered, marketplace) -> None:
    ids = [publish(marketplace).message_id for _ in range(5)]
    path = f"/api/v1/webhooks/{registered['id']}/deliveries?page_size=2"

    seen = []
    while path:
        page = partner_api.get(path).json()
        seen += [d["message_id"] for d in page["results"]]
        path = page["next"]

    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=lost", "status"),
        ("event_type=score.exploded", "event_type"),
        ("colour=red", "colour"),
        ("page_size=0", "page_size"),
        ("cursor=forged", "cursor"),
        ("status=pending&status=failed", "status"),
    ],
)
def test_a_bad_log_parameter_is_a_400_problem_naming_it(partner_api, registered, query, parameter) -> None:
    response = partner_api.get(f"/api/v1/webhooks/{registered['id']}/deliveries?{query}")

    assert response.status_code == 400
    assert parameter in problem_of(response)["errors"]


def test_a_delivery_reads_with_its_attempts(partner_api, registered, marketplace, webhook_receiver) -> None:
    webhook_receiver.status = 500
    delivery = publish(marketplace)
    webhook_deliver(delivery_id=delivery.pk, now=timezone.now())

    body = partner_api.get(f"/api/v1/webhooks/{registered['id']}/deliveries/{delivery.message_id}").json()

    assert body["message_id"] == delivery.message_id
    assert body["payload"] == delivery.payload
    (attempt,) = body["attempt_log"]
    assert attempt["number"] == 1
    assert attempt["status_code"] == 500
    assert attempt["address"] == "127.0.0.1"
    assert attempt["latency_ms"] >= 0
    assert attempt["error"] == "HTTP 500"
    assert attempt["redelivery"] is False


def test_an_unknown_delivery_is_a_404_problem(partner_api, registered) -> None:
    response = partner_api.get(f"/api/v1/webhooks/{registered['id']}/deliveries/msg_nope")

    assert response.status_code == 404
    problem_of(response)


# --- redelivery ---------------------------------------------------------------------------------------


def test_a_redelivery_is_accepted_and_sent_with_the_same_webhook_id(
    partner_api, registered, marketplace, webhook_receiver
) -> None:
    delivery = publish(marketplace)
    webhook_deliver(delivery_id=delivery.pk)
    path = f"/api/v1/webhooks/{registered['id']}/deliveries/{delivery.message_id}/redeliver"

    response = partner_api.post(path, HTTP_IDEMPOTENCY_KEY="redeliver-1")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    replay = partner_api.post(path, HTTP_IDEMPOTENCY_KEY="redeliver-1")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(action="webhook_delivery.redelivered").count() == 1

    assert webhook_deliver(delivery_id=delivery.pk) == Status.DELIVERED
    first, second = webhook_receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"] == delivery.message_id


def test_redelivering_a_delivery_still_pending_is_a_409_problem(partner_api, registered, marketplace) -> None:
    delivery = publish(marketplace)

    response = partner_api.post(f"/api/v1/webhooks/{registered['id']}/deliveries/{delivery.message_id}/redeliver")

    assert response.status_code == 409
    assert "already waiting" in problem_of(response)["detail"]


# --- another partner's endpoint, scopes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/pause"),
        ("post", "/resume"),
        ("get", "/deliveries"),
        ("get", "/deliveries/{message_id}"),
        ("post", "/deliveries/{message_id}/redeliver"),
    ],
)
def test_another_partners_endpoint_is_a_404_for_every_action(
    client, registered, marketplace, other_partner, method, suffix
) -> None:
    delivery = publish(marketplace)
    webhook_deliver(delivery_id=delivery.pk)
    endpoint = WebhookEndpoint.objects.get(pk=registered["id"])
    before = (endpoint.secret, endpoint.paused_at, endpoint.mode)
    other = PartnerApi(client, other_partner)
    path = f"/api/v1/webhooks/{registered['id']}" + suffix.format(message_id=delivery.message_id)

    response = getattr(other, method)(path, {"mode": "digest"}) if method == "patch" else getattr(other, method)(path)

    assert response.status_code == 404
    problem_of(response)
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.paused_at, endpoint.mode) == before
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == Status.DELIVERED


def test_the_webhook_api_needs_the_webhooks_manage_scope(client, registered, db) -> None:
    reader = make_partner_client("Read Only Lender", ["scores:read"])
    token = obtain_token(client, reader)

    response = client.post(
        f"/api/v1/webhooks/{registered['id']}/pause",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 403
    problem_of(response)


def test_a_digested_event_names_the_digest_that_carried_it(partner_api, webhook_receiver, marketplace) -> None:
    from alerts.services import webhook_digests_send

    created = partner_api.post("/api/v1/webhooks", {"url": webhook_receiver.url, "mode": "digest"}).json()
    held = publish(marketplace, SCORE_CHANGED)
    path = f"/api/v1/webhooks/{created['id']}/deliveries"
    assert partner_api.get(f"{path}?status=held").json()["results"][0]["message_id"] == held.message_id

    (digest,) = webhook_digests_send()

    (listed,) = partner_api.get(f"{path}?status=digested").json()["results"]
    assert listed["digest_message_id"] == digest.message_id
    (shown,) = partner_api.get(f"{path}?event_type=digest.daily").json()["results"]
    assert shown["message_id"] == digest.message_id
