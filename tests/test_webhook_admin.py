"""Admins see every partner's webhook endpoints and delivery logs, and pause, resume and redeliver; no secret shown."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from alerts.services import event_publish, webhook_deliver, webhook_endpoint_create
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from tests.conftest import login

pytestmark = pytest.mark.django_db

Status = WebhookDelivery.Status
PAYLOAD = {"company": {"siren": "552100554", "name": "ACME SA"}, "score": 640}


@pytest.fixture
def private_urls_allowed(settings) -> None:
    """The local receiver lives on 127.0.0.1, which only development settings allow."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PRODUCTION = False


@pytest.fixture
def endpoint(marketplace, webhook_receiver, private_urls_allowed) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoint_create(
        partner=marketplace.partner,
        url=webhook_receiver.url,
        event_types=["score.dropped", "company.insolvency_proceeding"],
        actor=Actor(client=marketplace.api_client),
    )


def delivered(partner_client, event_type: str = "score.dropped") -> WebhookDelivery:
    """One event published and sent to the local receiver, as a worker sends it."""
    (delivery,) = event_publish(partner=partner_client.partner, event_type=event_type, payload=PAYLOAD)
    webhook_deliver(delivery_id=delivery.pk)
    return WebhookDelivery.objects.get(pk=delivery.pk)


def test_an_admin_lists_every_partners_endpoints_with_their_state_and_pending_count(
    client, admin_user, marketplace, other_partner, endpoint, webhook_receiver
):
    mine, secret = endpoint
    theirs, other_secret = webhook_endpoint_create(
        partner=other_partner.partner, url=webhook_receiver.url, event_types=[], actor=Actor(system="test")
    )
    event_publish(partner=marketplace.partner, event_type="score.dropped", payload=PAYLOAD)  # pending
    WebhookEndpoint.objects.filter(pk=theirs.pk).update(is_active=False, disabled_reason="410 Gone")
    login(client, admin_user)

    response = client.get("/alerts/webhooks/")

    html = response.content.decode()
    assert response.status_code == 200
    assert marketplace.partner.name in html and other_partner.partner.name in html
    assert "score.dropped, company.insolvency_proceeding" in html
    mine_row = html[html.index(f'data-endpoint="{mine.pk}"') :].split("</tr>")[0]
    assert "Active" in mine_row and re.search(r'data-testid="pending">1<', mine_row)
    theirs_row = html[html.index(f'data-endpoint="{theirs.pk}"') :].split("</tr>")[0]
    assert "Disabled" in theirs_row and "410 Gone" in theirs_row and "all" in theirs_row
    assert secret not in html and other_secret not in html and "whsec_" not in html


def test_the_endpoint_page_shows_its_delivery_log_with_each_attempt(client, admin_user, marketplace, endpoint):
    mine, secret = endpoint
    delivery = delivered(marketplace)
    login(client, admin_user)

    response = client.get(f"/alerts/webhooks/{mine.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    row = html[html.index(f'data-delivery="{delivery.pk}"') :].split("</details>")[0]
    assert "score.dropped" in row and delivery.message_id in row and "Delivered" in row
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert "1 attempt" in row and "<td>204</td>" in row and f"{attempt.latency_ms} ms" in row
    assert secret not in html and "whsec_" not in html


def test_the_delivery_log_pages_by_seeking_in_constant_queries(client, admin_user, marketplace, endpoint):
    mine, _secret = endpoint
    for _ in range(30):
        event_publish(partner=marketplace.partner, event_type="score.dropped", payload=PAYLOAD)
    login(client, admin_user)

    first = client.get(f"/alerts/webhooks/{mine.pk}/")
    with CaptureQueriesContext(connection) as queries:
        second = client.get(f"/alerts/webhooks/{mine.pk}/?page=2")

    assert first.content.decode().count("data-delivery=") == 25 and "Older →" in first.content.decode()
    assert second.content.decode().count("data-delivery=") == 5
    assert len(queries) <= 12, [q["sql"] for q in queries]


def test_an_admin_pauses_and_resumes_an_endpoint_audited(client, admin_user, endpoint):
    mine, _secret = endpoint
    login(client, admin_user)

    paused = client.post(f"/alerts/webhooks/{mine.pk}/pause/", follow=True)

    assert "Endpoint paused" in paused.content.decode()
    mine.refresh_from_db()
    assert mine.paused_at is not None
    assert AuditEvent.objects.get(action="webhook_endpoint.paused").actor_user == admin_user

    resumed = client.post(f"/alerts/webhooks/{mine.pk}/resume/", follow=True)

    assert "Endpoint resumed" in resumed.content.decode()
    mine.refresh_from_db()
    assert mine.paused_at is None
    assert AuditEvent.objects.get(action="webhook_endpoint.resumed").actor_user == admin_user


def test_an_admin_asks_for_a_redelivery_with_the_same_webhook_id(client, admin_user, marketplace, endpoint):
    mine, _secret = endpoint
    delivery = delivered(marketplace)
    login(client, admin_user)

    response = client.post(f"/alerts/webhooks/{mine.pk}/deliveries/{delivery.pk}/redeliver/", follow=True)

    assert f"Delivery {delivery.message_id} will be sent again" in response.content.decode()
    again = WebhookDelivery.objects.get(pk=delivery.pk)
    assert again.status == Status.PENDING and again.message_id == delivery.message_id
    assert AuditEvent.objects.get(action="webhook_delivery.redelivered").actor_user == admin_user


def test_a_redelivery_the_state_does_not_allow_is_a_message_not_an_error(client, admin_user, marketplace, endpoint):
    mine, _secret = endpoint
    (pending,) = event_publish(partner=marketplace.partner, event_type="score.dropped", payload=PAYLOAD)
    login(client, admin_user)

    response = client.post(f"/alerts/webhooks/{mine.pk}/deliveries/{pending.pk}/redeliver/", follow=True)

    assert response.status_code == 200
    assert "already waiting to be sent" in response.content.decode()


def test_unknown_or_mismatched_ids_are_404s(client, admin_user, marketplace, other_partner, endpoint, webhook_receiver):
    mine, _secret = endpoint
    theirs, _ = webhook_endpoint_create(
        partner=other_partner.partner, url=webhook_receiver.url, event_types=[], actor=Actor(system="test")
    )
    delivery = delivered(marketplace)
    login(client, admin_user)

    assert client.get("/alerts/webhooks/999999/").status_code == 404
    assert client.post("/alerts/webhooks/999999/pause/").status_code == 404
    assert client.post(f"/alerts/webhooks/{theirs.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 404
    assert client.post(f"/alerts/webhooks/{mine.pk}/deliveries/999999/redeliver/").status_code == 404


def test_only_admins_see_or_act_on_webhooks(client, analyst, senior, auditor, marketplace, endpoint):
    mine, _secret = endpoint
    delivery = delivered(marketplace)
    for user in (analyst, senior, auditor):
        login(client, user)
        assert client.get("/alerts/webhooks/").status_code == 403
        assert client.get(f"/alerts/webhooks/{mine.pk}/").status_code == 403
        assert client.post(f"/alerts/webhooks/{mine.pk}/pause/").status_code == 403
        assert client.post(f"/alerts/webhooks/{mine.pk}/resume/").status_code == 403
        assert client.post(f"/alerts/webhooks/{mine.pk}/deliveries/{delivery.pk}/redeliver/").status_code == 403
        client.post("/logout/")
    client.logout()
    response = client.get("/alerts/webhooks/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    mine.refresh_from_db()
    assert mine.paused_at is None


def test_pausing_needs_a_post(client, admin_user, endpoint):
    mine, _secret = endpoint
    login(client, admin_user)

    assert client.get(f"/alerts/webhooks/{mine.pk}/pause/").status_code == 405
