"""/healthz and /readyz, as an operator's probe reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from riskoffice.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_unavailable_without_a_model_or_a_consuming_worker(client, reference_data):
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert "no champion model" in checks["model"]
    assert "no task consumed" in checks["workers"]


def test_readyz_is_ok_with_a_model_a_reachable_broker_and_a_recent_heartbeat(client, champion):
    Heartbeat.objects.create(name="worker", beat_at=timezone.now())
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_readyz_reports_a_stale_heartbeat(client, champion):
    Heartbeat.objects.create(name="worker", beat_at=timezone.now() - timedelta(minutes=5))
    assert client.get("/readyz").status_code == 503


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_with_beat_makes_readyz_ok(client, champion, celery_worker_process):
    import time

    deadline = time.monotonic() + 30
    while not Heartbeat.objects.filter(name="worker").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert client.get("/readyz").status_code == 200
