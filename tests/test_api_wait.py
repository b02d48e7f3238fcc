"""POST /api/v1/scores with ``Prefer: wait=N`` (RFC 7240): the score in the answer when the worker is quick enough."""

from __future__ import annotations

import time

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from dossiers.api import preferred_wait
from dossiers.models import Dossier

VALID = {"company": {"siren": "552100554", "vat": "FR96552100554"}, "bank_data": ["tok_123"], "requested_amount": 25000}
SCORES = "/api/v1/scores"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("wait=5", 5),
        ("respond-async, wait=5", 5),
        ("respond-async,wait=5;foo=bar", 5),
        ("WAIT = 7", 7),
        ('wait="3"', 3),
        ('wait="3', None),
        ("wait=60", 10),  # clamped to PREFER_WAIT_MAX_SECONDS
        ("wait=0", 0),
        ("wait=2, wait=9", 2),  # only the first instance counts
        ("wait=soon", None),
        ("wait=-1", None),
        ("wait=1.5", None),
        ("wait", None),
        ("respond-async", None),
        ("", None),
    ],
)
def test_the_prefer_header_is_read_as_rfc_7240_says(header, seconds, settings):
    settings.PREFER_WAIT_MAX_SECONDS = 10
    request = Request(APIRequestFactory().post(SCORES, HTTP_PREFER=header))
    assert preferred_wait(request) == seconds


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_wait_answers_200_with_the_score_and_a_retry_with_the_key_replays_it(api, champion, celery_worker_process):
    response = api.post(SCORES, VALID, HTTP_PREFER="wait=10", HTTP_IDEMPOTENCY_KEY="sync-1")
    assert response.status_code == 200, (response.content, celery_worker_process.log_path.read_text()[-3000:])
    assert response["Preference-Applied"] == "wait=10"
    body = response.json()
    assert body["status"] == "scored" and body["score"] is not None and body["explainability"]
    assert response["Location"].endswith(f"/api/v1/scores/{body['id']}")
    assert body == api.get(response["Location"]).json()  # what GET /api/v1/scores/{id} answers

    retry = api.post(SCORES, VALID, HTTP_PREFER="wait=10", HTTP_IDEMPOTENCY_KEY="sync-1")
    assert retry.status_code == 200
    assert retry["Idempotent-Replayed"] == "true"
    assert retry["Preference-Applied"] == "wait=10" and retry["Location"] == response["Location"]
    assert retry.json() == body
    assert Dossier.objects.count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_longer_wait_is_clamped_and_wait_0_answers_202_at_once(api, champion, celery_worker_process, settings):
    settings.PREFER_WAIT_MAX_SECONDS = 10
    clamped = api.post(SCORES, VALID, HTTP_PREFER="respond-async, wait=600")
    assert clamped.status_code == 200, clamped.content
    assert clamped["Preference-Applied"] == "wait=10"

    started = time.monotonic()
    at_once = api.post(SCORES, VALID, HTTP_PREFER="wait=0")
    assert at_once.status_code == 202
    assert "Preference-Applied" not in at_once
    assert at_once.json()["status"] == "pending"
    assert time.monotonic() - started < 1


@pytest.mark.django_db(transaction=True)
def test_without_a_worker_the_wait_ends_in_the_usual_202(api, champion):
    started = time.monotonic()
    response = api.post(SCORES, VALID, HTTP_PREFER="wait=1")
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert response["Location"].endswith(f"/api/v1/scores/{response.json()['id']}")
    assert Dossier.objects.get().status == Dossier.Status.PENDING
    assert 1 <= elapsed < 3


@pytest.mark.django_db(transaction=True)
def test_a_malformed_wait_is_ignored(api, champion):
    started = time.monotonic()
    response = api.post(SCORES, VALID, HTTP_PREFER="wait=soon")
    assert response.status_code == 202
    assert "Preference-Applied" not in response
    assert time.monotonic() - started < 1


@pytest.mark.django_db(transaction=True)
def test_a_refused_request_does_not_wait(api):
    started = time.monotonic()
    response = api.post(SCORES, {**VALID, "requested_amount": 0}, HTTP_PREFER="wait=5")
    assert response.status_code == 400
    assert time.monotonic() - started < 1
