"""/healthz and /readyz, as an operator's probe reads them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from riskoffice.models import Heartbeat
from scoring.model.registry import model_register
from scoring.models import ModelVersion, PolicyVersion

from .conftest import trained_once

pytestmark = pytest.mark.django_db

B2C_APPLICATION = {"individual": {"reference": "CUST-00042"}, "bank_data": ["tok_abc"], "requested_amount": 3000}
NO_B2C_CHAMPION = "no champion for b2c (run manage.py train_model --segment b2c)"


@pytest.fixture
def worker_beating(db) -> None:
    Heartbeat.objects.create(name="worker", beat_at=timezone.now())


@pytest.fixture
def b2c_champion(reference_data) -> ModelVersion:
    return model_register(segment="b2c", trained=trained_once("b2c"), trained_by="tests", promote=True)


def test_healthz_answers_while_the_process_runs(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_unavailable_without_a_model_or_a_consuming_worker(client, reference_data):
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["model"] == "model: no champion for b2b (run manage.py train_model --segment b2b)"
    assert "no task consumed" in checks["workers"]


def test_readyz_is_ok_with_a_model_a_reachable_broker_and_a_recent_heartbeat(client, champion):
    Heartbeat.objects.create(name="worker", beat_at=timezone.now())
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"


def test_a_b2b_only_deployment_is_ready_without_a_b2c_model(client, champion, worker_beating):
    # The migrations give B2C a current policy too, but no B2C model was ever trained and no B2C file arrived.
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["model"] == "ok"


def test_b2c_applications_without_a_b2c_champion_make_the_deployment_not_ready(
    client, api, champion, worker_beating, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        assert api.post("/api/v1/scores", B2C_APPLICATION).status_code == 202
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == f"model: {NO_B2C_CHAMPION}"


def test_a_segment_whose_champion_was_retired_without_a_successor_is_reported(
    client, champion, b2c_champion, worker_beating
):
    assert client.get("/readyz").status_code == 200
    ModelVersion.objects.filter(pk=b2c_champion.pk).update(status=ModelVersion.Status.RETIRED)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["model"] == f"model: {NO_B2C_CHAMPION}"


def test_each_segment_in_use_without_a_champion_is_named(client, b2c_champion, worker_beating):
    ModelVersion.objects.filter(pk=b2c_champion.pk).update(status=ModelVersion.Status.RETIRED)
    checks = client.get("/readyz").json()["checks"]
    assert checks["model"] == (
        f"model: no champion for b2b (run manage.py train_model --segment b2b); {NO_B2C_CHAMPION}"
    )


def test_a_deployment_with_a_champion_for_each_segment_in_use_is_ready(
    client, api, champion, b2c_champion, worker_beating, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        assert api.post("/api/v1/scores", B2C_APPLICATION).status_code == 202
    assert client.get("/readyz").status_code == 200


def test_readyz_reads_the_segments_in_use_in_one_query_however_many_models_and_dossiers(
    client, api, champion, b2c_champion, worker_beating, django_capture_on_commit_callbacks
):
    with CaptureQueriesContext(connection) as few:
        assert client.get("/readyz").status_code == 200
    with django_capture_on_commit_callbacks(execute=False):
        for n in range(3):
            api.post("/api/v1/scores", {**B2C_APPLICATION, "individual": {"reference": f"CUST-{n:05d}"}})
    for version in (2, 3, 4):  # earlier champions of both segments, retired
        for segment in ("b2b", "b2c"):
            ModelVersion.objects.create(
                segment=segment, version=version, status=ModelVersion.Status.RETIRED, booster_ubj=b"", feature_names=[]
            )
    with CaptureQueriesContext(connection) as many:
        assert client.get("/readyz").status_code == 200
    assert len(many) == len(few)
    model_queries = [
        q["sql"] for q in many.captured_queries if any(t in q["sql"] for t in ("policyversion", "modelversion"))
    ]
    assert len(model_queries) == 1, model_queries


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


def test_a_deployment_without_a_current_b2b_policy_is_not_ready(client, champion, worker_beating):
    PolicyVersion.objects.filter(segment="b2b").update(is_current=False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["model"].startswith("model: no current policy for b2b")
