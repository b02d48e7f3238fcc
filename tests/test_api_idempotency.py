"""POST /api/v1/scores with an Idempotency-Key: a partner's retry never creates a second dossier."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIRequestFactory

from dossiers.api import ScoreListCreate, _score_request_accept
from dossiers.models import Dossier
from riskoffice.celery import app as celery_app
from riskoffice.idempotency import idempotently
from riskoffice.models import IdempotencyKey
from riskoffice.tasks import purge_expired_idempotency_keys

from .conftest import make_partner_client, obtain_token
from .test_sources import (
    BODACC,
    REGISTRY,
    apis,  # noqa: F401 - the fixture
    bodacc_answer,
    registry_answer,
    registry_record,
)

VALID = {"company": {"siren": "552100554", "vat": "FR96552100554"}, "bank_data": ["tok_123"], "requested_amount": 25000}
SCORES = "/api/v1/scores"


def _problem(response, slug: str) -> dict:
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == response.status_code
    assert body["type"] == f"urn:riskoffice:problem:{slug}", body
    return body


# --- replay -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retry_with_the_same_key_replays_the_first_answer_without_a_second_dossier(api):
    first = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="order-1234")
    assert first.status_code == 202, first.content
    assert "Idempotent-Replayed" not in first

    retry = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="order-1234")
    assert retry.status_code == 202
    assert retry.json() == first.json()
    assert retry["Location"] == first["Location"]
    assert retry["Content-Type"] == first["Content-Type"]
    assert retry["Idempotent-Replayed"] == "true"
    assert Dossier.objects.count() == 1


@pytest.mark.django_db
def test_the_same_json_with_its_keys_in_another_order_is_the_same_request(api):
    first = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="order-1234")
    reordered = json.dumps(dict(reversed(list(VALID.items()))), indent=2)
    retry = api.post(SCORES, reordered, HTTP_IDEMPOTENCY_KEY="order-1234")
    assert retry.status_code == 202 and retry["Idempotent-Replayed"] == "true"
    assert retry.json()["id"] == first.json()["id"]


@pytest.mark.django_db
def test_the_same_key_with_another_request_is_refused_422(api):
    api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="order-1234")
    other = api.post(SCORES, {**VALID, "requested_amount": 30000}, HTTP_IDEMPOTENCY_KEY="order-1234")
    assert other.status_code == 422
    _problem(other, "idempotency-key-reused")
    assert Dossier.objects.count() == 1


@pytest.mark.django_db
def test_without_a_key_every_post_creates_a_dossier(api):
    first, second = api.post(SCORES, VALID), api.post(SCORES, VALID)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_keys_belong_to_one_client_another_client_with_the_same_key_gets_its_own_dossier(api, client, other_partner):
    mine = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="order-1234")
    token = obtain_token(client, other_partner)
    theirs = client.post(
        SCORES,
        json.dumps(VALID),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY="order-1234",
    )
    assert theirs.status_code == 202
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["id"] != mine.json()["id"]
    assert Dossier.objects.get(pk=theirs.json()["id"]).partner == other_partner.partner


# --- refusals that are kept, and those that are not -------------------------------------------------------


@pytest.mark.django_db
def test_a_validation_error_is_kept_and_replayed(api):
    invalid = {**VALID, "requested_amount": -5}
    first = api.post(SCORES, invalid, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert first.status_code == 400
    _problem(first, "validation-error")

    retry = api.post(SCORES, invalid, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert retry.status_code == 400
    assert retry["Idempotent-Replayed"] == "true"
    assert _problem(retry, "validation-error") == first.json()
    assert Dossier.objects.count() == 0


@pytest.mark.django_db
def test_a_refusal_a_retry_could_change_releases_the_key(client, db):
    """The sandbox allowance's 429: once the allowance is raised, the same key creates the dossier."""
    tight = make_partner_client("Tight Sandbox", ["scores:write", "scores:read"], allowance=1)
    token = obtain_token(client, tight)

    def post(key: str):
        return client.post(
            SCORES,
            json.dumps(VALID),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    assert post("first").status_code == 202
    refused = post("second")
    assert refused.status_code == 429, refused.content
    assert not IdempotencyKey.objects.filter(key="second").exists()

    tight.api_client.sandbox_allowance = 2
    tight.api_client.save(update_fields=["sandbox_allowance"])
    retry = post("second")
    assert retry.status_code == 202, retry.content
    assert "Idempotent-Replayed" not in retry
    assert Dossier.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "tab\there", "café-1", "line\nbreak", "\x7f"],
    ids=["empty", "256 chars", "tab", "non-ascii", "newline", "DEL"],
)
def test_an_invalid_key_is_refused_400(api, key):
    response = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    _problem(response, "invalid-idempotency-key")
    assert Dossier.objects.count() == 0 and IdempotencyKey.objects.count() == 0


@pytest.mark.django_db
def test_a_key_of_255_printable_characters_is_accepted(api):
    key = ("Aa0 !~" * 43)[:255]
    assert api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY=key).status_code == 202
    assert api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY=key)["Idempotent-Replayed"] == "true"


# --- expiry ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_expired_key_counts_as_absent_and_the_hourly_task_purges_it(api, settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 1
    first = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="short-lived")
    api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="left-to-expire")
    time.sleep(1.1)
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 86400

    again = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="short-lived")
    assert again.status_code == 202
    assert "Idempotent-Replayed" not in again
    assert again.json()["id"] != first.json()["id"]

    assert purge_expired_idempotency_keys() == 1
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["short-lived"]
    assert "purge-expired-idempotency-keys" in settings.CELERY_BEAT_SCHEDULE


# --- what a dead request leaves behind -------------------------------------------------------------------------


def _abandoned(api, *, key: str, **answer) -> IdempotencyKey:
    """The row a request killed after claiming its key leaves (its fingerprint taken from a real request)."""
    api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="template")
    template = IdempotencyKey.objects.get(key="template")
    return IdempotencyKey.objects.create(
        client=template.client,
        key=key,
        fingerprint=template.fingerprint,
        expires_at=timezone.now() + timedelta(days=1),
        **answer,
    )


@pytest.mark.django_db
def test_a_key_whose_request_died_before_its_work_committed_is_taken_over_after_the_timeout(api, settings):
    row = _abandoned(api, key="dead")
    IdempotencyKey.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(seconds=30))
    young = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="dead")
    assert young.status_code == 409
    assert young["Retry-After"] == "1"
    _problem(young, "idempotency-key-in-flight")

    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS + 1)
    IdempotencyKey.objects.filter(pk=row.pk).update(created_at=stale)
    taken_over = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="dead")
    assert taken_over.status_code == 202
    assert "Idempotent-Replayed" not in taken_over
    retry = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="dead")
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == taken_over.json()
    assert Dossier.objects.count() == 2  # the template's and the taken-over key's


@pytest.mark.django_db
def test_a_key_whose_request_died_after_its_work_committed_is_answered_from_what_was_stored(api, settings):
    """Killed while waiting (Prefer: wait): its dossier and provisional 202 committed, its final answer never came."""
    dossier = Dossier.objects.get(pk=api.post(SCORES, VALID).json()["id"])
    location = f"http://testserver/api/v1/scores/{dossier.pk}"
    body = {"id": str(dossier.pk), "status": "pending", "links": {"self": location}}
    headers = {"Location": location, "Content-Type": "application/json", ":status": 202}
    row = _abandoned(api, key="waiting", response_body=body, response_headers=headers)
    stale = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS + 1)
    IdempotencyKey.objects.filter(pk=row.pk).update(created_at=stale)

    retry = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="waiting")
    assert retry.status_code == 202
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == body and retry["Location"] == location
    assert Dossier.objects.count() == 2  # the one above and the template's: none for the retry


@pytest.mark.django_db(transaction=True)
def test_a_slow_request_and_a_retry_that_finds_its_key_abandoned_make_one_dossier(api, client, marketplace, settings):
    """The first request is slow; its retry, finding the key in flight past the timeout, takes it over.

    On PostgreSQL the retry creates the dossier and the slow request, whose claim is no longer its own,
    rolls its work back and replays the retry's answer. SQLite's IMMEDIATE transactions make the retry
    wait for the slow request's transaction instead, then replay its answer. One dossier either way.
    """
    settings.IDEMPOTENCY_IN_FLIGHT_SECONDS = 0  # every key in flight looks abandoned: a retry takes it over
    django_request = APIRequestFactory().post(
        SCORES,
        VALID,
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {obtain_token(client, marketplace)}",
        HTTP_IDEMPOTENCY_KEY="slow-2",
    )
    view = ScoreListCreate()
    view.args, view.kwargs, view.headers, view.format_kwarg = (), {}, {}, None
    request = view.request = view.initialize_request(django_request)
    view.initial(request)
    retries: list = []
    retry = threading.Thread(target=lambda: retries.append(api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="slow-2")))

    def slow_work():
        retry.start()  # arrives while this request has written nothing yet
        retry.join(timeout=2)
        return _score_request_accept(request)

    slow = idempotently(view, request, work=slow_work)
    retry.join(timeout=30)
    assert slow.status_code == retries[0].status_code == 202, retries[0].content
    assert slow.data == retries[0].json()
    assert [slow.has_header("Idempotent-Replayed"), retries[0].has_header("Idempotent-Replayed")].count(True) == 1
    if connection.vendor == "postgresql":
        assert slow["Idempotent-Replayed"] == "true"  # the takeover happened: the slow work was rolled back
    assert Dossier.objects.count() == 1


# --- for real, over HTTP, with concurrent requests -----------------------------------------------------------


def _token(client, partner_client) -> dict[str, str]:
    return {"Authorization": f"Bearer {obtain_token(client, partner_client)}"}


@pytest.mark.django_db(transaction=True)
def test_the_same_key_while_the_first_request_is_still_answering_is_asked_to_retry_409(
    live_server,
    client,
    marketplace,
    champion,
    apis,  # noqa: F811
):
    # A live partner whose company registry takes 2 s to answer: the first request, which scores
    # its dossier itself (Prefer: wait), is still answering, its key in flight.
    marketplace.partner.is_sandbox = False
    marketplace.partner.save(update_fields=["is_sandbox"])
    apis.answer(REGISTRY, replace(registry_answer(registry_record("552100554")), delay=2.0))
    apis.answer(BODACC, bodacc_answer())
    auth = _token(client, marketplace)
    url = f"{live_server.url}{SCORES}"
    waiting = {**auth, "Idempotency-Key": "slow-1", "Prefer": "wait=3"}
    answers: list[requests.Response] = []
    first = threading.Thread(target=lambda: answers.append(requests.post(url, json=VALID, headers=waiting, timeout=30)))
    first.start()
    deadline = time.monotonic() + 10
    while not Dossier.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

    during = requests.post(url, json=VALID, headers={**auth, "Idempotency-Key": "slow-1"}, timeout=30)
    assert during.status_code == 409, during.text
    assert during.headers["Retry-After"] == "1"
    assert during.headers["Content-Type"].startswith("application/problem+json")
    assert during.json()["type"] == "urn:riskoffice:problem:idempotency-key-in-flight"

    first.join(timeout=30)
    assert answers[0].status_code == 200 and answers[0].headers["Preference-Applied"] == "wait=3"
    assert answers[0].json()["status"] == "scored"
    after = requests.post(url, json=VALID, headers={**auth, "Idempotency-Key": "slow-1"}, timeout=30)
    assert after.status_code == 200
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.json() == answers[0].json()
    assert Dossier.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_retries_of_one_key_create_exactly_one_dossier(live_server, client, marketplace):
    headers = {**_token(client, marketplace), "Idempotency-Key": "burst-1"}
    url = f"{live_server.url}{SCORES}"
    start = threading.Barrier(10)
    answers: list[requests.Response] = []

    def post() -> None:
        start.wait()
        answers.append(requests.post(url, json=VALID, headers=headers, timeout=60))

    threads = [threading.Thread(target=post) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    statuses = sorted(answer.status_code for answer in answers)
    assert len(answers) == 10
    assert set(statuses) <= {202, 409}, [(a.status_code, a.text) for a in answers]
    assert {answer.json()["id"] for answer in answers if answer.status_code == 202} == {str(Dossier.objects.get().pk)}
    assert Dossier.objects.count() == 1


# --- the broker down ----------------------------------------------------------------------------------------------


@pytest.fixture
def broker_unreachable(monkeypatch):
    """The web process's broker is a port nobody listens on; its connection pools are rebuilt on each side."""
    unreachable = "redis://127.0.0.1:1/0"
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", unreachable)
    monkeypatch.setitem(celery_app.conf, "broker_url", unreachable)

    def reset_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    reset_pools()
    assert celery_app.connection_for_write().port == 1
    yield
    monkeypatch.undo()
    reset_pools()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_dossier_is_accepted_and_a_retry_replays_it(api, broker_unreachable, caplog):
    with caplog.at_level(logging.WARNING, logger="riskoffice.queueing"):
        first = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="offline-1")
    assert first.status_code == 202, first.content
    assert "Broker unreachable" in caplog.text  # its scoring is left to the stall sweep
    assert Dossier.objects.get().status == Dossier.Status.PENDING

    retry = api.post(SCORES, VALID, HTTP_IDEMPOTENCY_KEY="offline-1")
    assert retry.status_code == 202
    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert Dossier.objects.count() == 1
