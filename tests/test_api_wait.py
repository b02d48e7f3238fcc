"""POST /api/v1/scores with ``Prefer: wait=N`` (RFC 7240): the score in the answer when the worker is quick enough."""

from __future__ import annotations

import time

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from dossiers.api import preferred_wait
from dossiers.models import Dossier
from riskoffice.celery import app
from scoring.models import Score
from tests.conftest import broker_queue_length


def purge_broker() -> None:
    app.control.purge()


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
def test_the_request_that_waits_scores_its_dossier_itself_without_a_worker_or_a_message(api, champion):
    """No worker runs, none is needed: the dossier is created claimed by the request, which scores it after commit."""
    purge_broker()
    response = api.post(SCORES, VALID, HTTP_PREFER="wait=5")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "scored"
    dossier = Dossier.objects.get()
    assert dossier.status == Dossier.Status.SCORED and dossier.claimed_until is None and dossier.attempts == 1
    assert Score.objects.filter(dossier=dossier).count() == 1
    assert broker_queue_length("scoring") == 0  # nothing was sent to the workers


@pytest.mark.django_db(transaction=True)
def test_a_dossier_the_request_could_not_score_is_handed_to_the_workers_with_a_202(api, champion, monkeypatch):
    """An unexpected error while gathering its data: the partner gets the 202 and a worker tries again later."""
    from scoring import sources

    def broken(**kwargs):
        raise RuntimeError("a bug in a connector")

    purge_broker()
    monkeypatch.setattr(sources, "gather_sandbox", broken)
    response = api.post(SCORES, VALID, HTTP_PREFER="wait=5")
    assert response.status_code == 202, response.content
    assert "Preference-Applied" not in response
    dossier = Dossier.objects.get()
    assert dossier.status == Dossier.Status.PENDING and dossier.attempts == 1
    assert dossier.claimed_until is not None  # held for its back-off, then retried by its own message
    assert broker_queue_length("scoring") == 1


@pytest.mark.django_db(transaction=True)
def test_a_dossier_whose_request_died_before_scoring_it_is_swept_once_its_claim_lapses(api, champion, marketplace):
    """The request's claim is a lease: when it passes and the dossier has not moved, the sweep sends it to a worker."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from dossiers.services import dossier_create, dossiers_requeue_stalled
    from riskoffice.audit import Actor

    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=25000,
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
        score_here=True,
    )
    assert dossiers_requeue_stalled() == []  # held by its request
    past = timezone.now() - timedelta(seconds=settings.SCORING_STALL_SECONDS + 1)
    Dossier.objects.filter(pk=dossier.pk).update(claimed_until=past, updated_at=past)
    assert dossiers_requeue_stalled() == [dossier.pk]


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
