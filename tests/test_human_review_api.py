"""POST /api/v1/scores/{id}/human-review: a person, through their partner, asks a human to review a decision.

GDPR Art. 22(3): the right to obtain human intervention, to express one's point of view and to contest
the decision. The request is answered within one month (Art. 12(3)); while it is open, the decision is
not final, and the score says so. The partner hears of it by webhook, with ids and dates only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from dossiers.models import Dossier
from dossiers.services import dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from riskoffice.subjects.models import SubjectRequest
from riskoffice.subjects.review import REVIEW_DEADLINE, STATEMENT_MAX_LENGTH

from .conftest import obtain_token, problem_of

VALID = {"company": {"siren": "552100554"}, "bank_data": ["tok_123"], "requested_amount": 25000}
STATEMENT = "My company's accounts for 2024 were filed late; the turnover you used is from 2022."


def review_url(dossier_id: str) -> str:
    return f"/api/v1/scores/{dossier_id}/human-review"


@pytest.fixture
def subscribed(marketplace, settings):
    """The marketplace listens for the human review events: each one leaves a delivery in the outbox."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    endpoint, _ = webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["human_review.requested", "human_review.completed"],
        actor=Actor(client=marketplace.api_client),
    )
    return endpoint


@pytest.fixture
def scored(api, champion) -> str:
    """The marketplace's dossier, asked for through the API and scored by the real scoring service."""
    dossier_id = api.post("/api/v1/scores", VALID).json()["id"]
    assert dossier_score(dossier_id=dossier_id) is not None
    return dossier_id


def test_a_partner_asks_for_a_human_review_and_the_decision_is_no_longer_final(api, scored, subscribed):
    before = api.get(f"/api/v1/scores/{scored}").json()
    assert before["human_review"] is None and before["decision_final"] is True

    response = api.post(review_url(scored), {"statement": STATEMENT})

    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == f"http://testserver/api/v1/scores/{scored}"
    assert body["status"] == "open" and body["completed_at"] is None and body["outcome"] is None
    requested_at, due_at = parse_datetime(body["requested_at"]), parse_datetime(body["due_at"])
    assert due_at == requested_at + relativedelta(months=1)
    review = SubjectRequest.objects.get()
    assert review.pk == body["id"] and review.kind == "human_review" and review.channel == "partner_api"
    assert review.statement == STATEMENT and review.requested_by_client == api.partner.api_client
    assert str(review.dossier_id) == scored and review.company_id is not None

    score = api.get(f"/api/v1/scores/{scored}").json()
    assert score["decision_final"] is False
    assert score["human_review"] == {key: body[key] for key in score["human_review"]}
    assert score["decision"] == before["decision"], "asking for a review changes nothing until a human decides"

    audit = AuditEvent.objects.get(action="dossier.human_review_requested")
    assert audit.actor_client == api.partner.api_client and audit.object_id == scored
    assert audit.after["decision_final"] is False and audit.after["statement_given"] is True
    assert STATEMENT not in json.dumps(audit.after), "the person's words stay on the request, not in the trail"

    (delivery,) = WebhookDelivery.objects.filter(event_type="human_review.requested")
    data = delivery.payload["data"]
    assert data == {
        "id": scored,
        "request_id": review.pk,
        "channel": "partner_api",
        "decision": before["decision"],
        "requested_at": body["requested_at"],
        "due_at": body["due_at"],
    }
    assert STATEMENT not in json.dumps(delivery.payload)


def test_a_second_request_while_one_is_open_joins_it(api, scored, subscribed):
    first = api.post(review_url(scored), {"statement": STATEMENT})
    again = api.post(review_url(scored), {"statement": "I also contest the payment incident of March."})
    empty = api.post(review_url(scored), {})

    assert first.status_code == 202
    assert again.status_code == 200 and empty.status_code == 200
    assert again.json()["id"] == empty.json()["id"] == first.json()["id"]
    assert again.json()["due_at"] == first.json()["due_at"], "joining does not move the deadline"
    review = SubjectRequest.objects.get()
    assert review.statement == f"{STATEMENT}\n\nI also contest the payment incident of March."
    assert WebhookDelivery.objects.filter(event_type="human_review.requested").count() == 1
    assert AuditEvent.objects.filter(action="dossier.human_review_joined").count() == 2


def test_a_request_without_a_statement_is_accepted(api, scored):
    response = api.post(review_url(scored), {})

    assert response.status_code == 202, response.content
    assert SubjectRequest.objects.get().statement == ""


def test_a_dossier_not_scored_yet_has_no_decision_to_review(api, champion):
    pending = api.post("/api/v1/scores", VALID).json()["id"]  # no worker in this test: it stays pending

    response = api.post(review_url(pending), {"statement": STATEMENT})

    assert response.status_code == 409
    problem = problem_of(response)
    assert problem["type"] == "urn:riskoffice:problem:dossier-not-scored"
    assert not SubjectRequest.objects.exists()
    assert api.get(f"/api/v1/scores/{pending}").json()["decision_final"] is False


def test_another_partners_score_is_not_found(client, api, scored, other_partner):
    token = obtain_token(client, other_partner)

    response = client.post(
        review_url(scored), json.dumps({}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    unknown = api.post(review_url("00000000-0000-4000-8000-000000000000"), {})

    assert response.status_code == 404 and unknown.status_code == 404
    problem_of(response)
    assert not SubjectRequest.objects.exists()


def test_bad_input_is_named(api, scored):
    too_long = api.post(review_url(scored), {"statement": "x" * (STATEMENT_MAX_LENGTH + 1)})
    unknown = api.post(review_url(scored), {"statement": "ok", "reason": "no"})
    number = api.post(review_url(scored), {"statement": 42})
    not_json = api.post(review_url(scored), "{not json")

    assert [r.status_code for r in (too_long, unknown, number, not_json)] == [400, 400, 400, 400]
    assert "statement" in problem_of(too_long)["errors"]
    assert problem_of(unknown)["errors"] == {"reason": ["Unknown field."]}
    assert "statement" in problem_of(number)["errors"]
    problem_of(not_json)
    assert not SubjectRequest.objects.exists()


def test_the_request_needs_the_scores_write_scope(client, scored, marketplace):
    token = obtain_token(client, marketplace, scope="scores:read")

    response = client.post(
        review_url(scored), json.dumps({}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 403
    problem_of(response)


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(api, scored):
    first = api.post(review_url(scored), {"statement": STATEMENT}, HTTP_IDEMPOTENCY_KEY="review-0001")
    retry = api.post(review_url(scored), {"statement": STATEMENT}, HTTP_IDEMPOTENCY_KEY="review-0001")
    reused = api.post(review_url(scored), {"statement": "other"}, HTTP_IDEMPOTENCY_KEY="review-0001")

    assert first.status_code == retry.status_code == 202
    assert retry["Idempotent-Replayed"] == "true" and retry.json() == first.json()
    assert retry["Location"] == first["Location"]
    assert reused.status_code == 422
    assert SubjectRequest.objects.get().statement == STATEMENT
    assert AuditEvent.objects.filter(action__startswith="dossier.human_review").count() == 1


def test_the_list_shows_each_scores_review(api, scored):
    api.post(review_url(scored), {})

    (row,) = api.get("/api/v1/scores").json()["results"]

    assert row["decision_final"] is False and row["human_review"]["status"] == "open"


# --- the deadline and the database ------------------------------------------------------------------------


def test_the_deadline_is_one_calendar_month_after_receipt():
    assert datetime(2026, 1, 31, 9, 0, tzinfo=UTC) + REVIEW_DEADLINE == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert datetime(2026, 3, 15, 9, 0, tzinfo=UTC) + REVIEW_DEADLINE == datetime(2026, 4, 15, 9, 0, tzinfo=UTC)


def test_the_database_holds_at_most_one_open_review_per_dossier(api, scored):
    api.post(review_url(scored), {})
    dossier = Dossier.objects.get(pk=scored)
    now = timezone.now()

    with pytest.raises(IntegrityError, match="subjectrequest_one_open_review_per_dossier"), transaction.atomic():
        SubjectRequest.objects.create(
            kind="human_review",
            channel="partner_api",
            dossier=dossier,
            requested_by_client=api.partner.api_client,
            received_at=now,
            due_at=now + REVIEW_DEADLINE,
        )
    # A completed review does not count: the next request opens a new one.
    SubjectRequest.objects.update(status="completed", completed_at=now)
    assert api.post(review_url(scored), {}).status_code == 202
    assert SubjectRequest.objects.filter(status="open").count() == 1
