"""The whole path, as a partner and a Celery worker see it: token, POST, worker scores, GET, signed webhook."""

from __future__ import annotations

import math
import time

import pytest
import requests
from standardwebhooks import Webhook

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_partner_gets_a_score_computed_by_a_real_worker_and_a_signed_webhook(
    live_server, champion, marketplace, webhook_receiver, celery_worker_process
):
    base = live_server.url
    token_response = requests.post(
        f"{base}/o/token/",
        data={"grant_type": "client_credentials"},
        auth=(marketplace.client_id, marketplace.client_secret),
        timeout=10,
    )
    assert token_response.status_code == 200, token_response.text
    token = token_response.json()
    assert token["token_type"] == "Bearer" and token["expires_in"] <= 3600
    auth = {"Authorization": f"Bearer {token['access_token']}"}

    hook = requests.post(
        f"{base}/api/v1/webhooks",
        json={"url": webhook_receiver.url, "event_types": ["score.completed"]},
        headers=auth,
        timeout=10,
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    assert secret.startswith("whsec_")

    created = requests.post(
        f"{base}/api/v1/scores",
        headers=auth,
        timeout=10,
        json={
            "company": {"siren": "552100554", "vat": "FR96552100554"},
            "bank_data": ["token_agregateur_open_banking"],
            "requested_amount": 25000,
        },
    )
    assert created.status_code == 202, created.text
    location = created.headers["Location"]
    assert location.endswith(f"/api/v1/scores/{created.json()['id']}")

    deadline = time.monotonic() + 60
    body = requests.get(location, headers=auth, timeout=10).json()
    while body["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.3)
        body = requests.get(location, headers=auth, timeout=10).json()
    assert body["status"] == "scored", (body, celery_worker_process.log_path.read_text()[-3000:])

    assert 0 <= body["score"] <= 1000
    assert 0 < body["probability_of_default"] < 1
    assert body["decision"] in {"accept", "guarantee", "refuse", "refer"}
    assert body["model_version"] == champion.label
    factors = body["explainability"]
    assert 1 <= len(factors) <= 12  # up to four of each kind, ordered for the decision (docs/policy.md)
    for direction in ("increases_risk", "decreases_risk"):
        group = [abs(f["contribution"]) for f in factors if f["direction"] == direction]
        assert group == sorted(group, reverse=True), "each kind largest first"
    for factor in factors:
        assert factor["text"] and factor["direction"] in {"increases_risk", "decreases_risk", "missing"}
        if factor["direction"] != "missing":
            assert (factor["contribution"] > 0) == (factor["direction"] == "increases_risk")

    received = webhook_receiver.wait(1, timeout=30)
    assert received, "the webhook never arrived"
    delivery = received[0]
    payload = Webhook(secret).verify(delivery["body"], delivery["headers"])  # raises on a bad signature
    assert payload["type"] == "score.completed"
    assert payload["data"]["id"] == body["id"]
    assert payload["data"]["score"] == body["score"]
    assert delivery["headers"]["webhook-id"].startswith("msg_")
    assert math.isclose(payload["data"]["probability_of_default"], body["probability_of_default"], abs_tol=1e-6)
