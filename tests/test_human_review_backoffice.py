"""Human review on the dossier page (GDPR Art. 22), over HTTP as an analyst uses it.

- The panel says when the review was asked for and when it is due (overdue highlighted), shows the person's
  statement, and says the decision is not final while the review is open.
- An analyst records a request that came by phone or mail, and completes a review: confirming the decision
  with a note, or recording it as changed once an override made since the request is in force (at once, or
  approved by a second, senior analyst). An auditor reads the panel and can do neither (403).
- The queue's filter "Human review requested" lists the dossiers with an open review, soonest deadline first.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from dossiers.models import Dossier, Override
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from riskoffice.subjects.models import SubjectRequest
from riskoffice.subjects.review import REVIEW_DEADLINE, review_complete, review_request
from tests.conftest import login
from tests.test_four_eyes import dossier_given, override_form

pytestmark = pytest.mark.django_db

STATEMENT = "I was refused because of an incident that my bank has since cancelled."
NOTE = "Checked the bank's letter of 3 March: the incident stands in the registry; the decision stands."


@pytest.fixture
def subscribed(marketplace, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    endpoint, _ = webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["human_review.requested", "human_review.completed"],
        actor=Actor(client=marketplace.api_client),
    )
    return endpoint


@pytest.fixture
def refused(champion, marketplace, subscribed) -> Dossier:
    return dossier_given(marketplace, decision="refuse")


@pytest.fixture
def under_review(refused, marketplace) -> SubjectRequest:
    """The person asked, through the partner, for a human to review the refusal."""
    review, created = review_request(refused, client=marketplace.api_client, statement=STATEMENT)
    assert created
    return review


def detail_url(dossier: Dossier) -> str:
    return reverse("dossiers:detail", args=[dossier.pk])


def record_url(dossier: Dossier) -> str:
    return reverse("dossiers:human-review", args=[dossier.pk])


def complete_url(review: SubjectRequest) -> str:
    return reverse("dossiers:human-review-complete", args=[review.dossier_id, review.pk])


def completed_events() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(event_type="human_review.completed"))


# --- the panel ------------------------------------------------------------------------------------------------


def test_the_page_shows_the_open_review_its_deadline_and_that_the_decision_is_not_final(client, analyst, under_review):
    login(client, analyst)

    page = client.get(detail_url(under_review.dossier)).content.decode()

    requested = timezone.localtime(under_review.received_at)
    due = timezone.localtime(under_review.due_at)
    assert f"Human review requested on {requested:%Y-%m-%d %H:%M}, due {due:%Y-%m-%d}." in page
    assert 'data-testid="decision-not-final"' in page and "not final: human review open" in page
    assert escape(STATEMENT) in page
    assert 'data-testid="review-overdue"' not in page
    assert 'data-testid="review-complete-form"' in page
    assert 'data-testid="review-record-form"' not in page, "one open review at a time: nothing to record"


def test_a_review_past_its_deadline_is_shown_overdue(client, analyst, under_review):
    month_ago = timezone.now() - timedelta(days=40)
    SubjectRequest.objects.filter(pk=under_review.pk).update(received_at=month_ago, due_at=month_ago + REVIEW_DEADLINE)
    login(client, analyst)

    page = client.get(detail_url(under_review.dossier)).content.decode()

    assert 'data-testid="review-overdue"' in page and "Overdue" in page


def test_an_auditor_reads_the_panel_but_cannot_record_or_complete(client, auditor, under_review):
    login(client, auditor)

    page = client.get(detail_url(under_review.dossier)).content.decode()
    record = client.post(record_url(under_review.dossier), {"statement": "by phone"})
    complete = client.post(complete_url(under_review), {"outcome": "confirmed", "note": NOTE})

    assert escape(STATEMENT) in page and 'data-testid="review-complete-form"' not in page
    assert (record.status_code, complete.status_code) == (403, 403)
    under_review.refresh_from_db()
    assert under_review.status == "open" and SubjectRequest.objects.count() == 1


def test_someone_without_a_role_cannot_reach_another_dossiers_review(client, outsider, under_review):
    login(client, outsider)

    assert client.post(complete_url(under_review), {"outcome": "confirmed", "note": NOTE}).status_code == 403


# --- recording a request ------------------------------------------------------------------------------------


def test_an_analyst_records_a_request_made_by_phone(client, analyst, refused):
    login(client, analyst)

    response = client.post(record_url(refused), {"statement": STATEMENT}, follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Request for human review recorded" in page and escape(STATEMENT) in page
    review = SubjectRequest.objects.get()
    assert (review.kind, review.channel, review.requested_by_user) == ("human_review", "back_office", analyst)
    assert review.due_at == review.received_at + REVIEW_DEADLINE
    event = AuditEvent.objects.get(action="dossier.human_review_requested")
    assert event.actor_user == analyst and event.after["channel"] == "back_office"
    assert WebhookDelivery.objects.filter(event_type="human_review.requested").count() == 1


def test_recording_a_second_request_joins_the_open_one(client, analyst, under_review):
    login(client, analyst)

    response = client.post(record_url(under_review.dossier), {"statement": "Called again."}, follow=True)

    assert "A human review was already open: this request joins it." in response.content.decode()
    under_review.refresh_from_db()
    assert SubjectRequest.objects.count() == 1
    assert under_review.statement == f"{STATEMENT}\n\nCalled again."


def test_a_dossier_still_pending_has_no_decision_to_review(client, analyst, refused):
    Dossier.objects.filter(pk=refused.pk).update(status=Dossier.Status.PENDING)
    login(client, analyst)

    response = client.post(record_url(refused), {"statement": STATEMENT})

    assert response.status_code == 400
    assert "Only a scored dossier has a decision to review." in response.content.decode()
    assert not SubjectRequest.objects.exists()


# --- completing it ------------------------------------------------------------------------------------------


def test_an_analyst_confirms_the_decision_with_a_note(client, analyst, under_review, api):
    login(client, analyst)

    response = client.post(complete_url(under_review), {"outcome": "confirmed", "note": NOTE}, follow=True)

    page = response.content.decode()
    assert "Human review completed: the decision is confirmed and final." in page
    assert "the decision was confirmed" in page and escape(NOTE) in page
    assert 'data-testid="decision-not-final"' not in page
    under_review.refresh_from_db()
    assert (under_review.status, under_review.completed_by, under_review.resolution_note) == (
        "completed",
        analyst,
        NOTE,
    )
    assert under_review.resolution == {"outcome": "confirmed", "decision": "refuse"}
    event = AuditEvent.objects.get(action="dossier.human_review_completed")
    assert event.actor_user == analyst and event.after["outcome"] == "confirmed" and event.after["note"] == NOTE
    (delivery,) = completed_events()
    assert delivery.payload["data"] == {
        "id": str(under_review.dossier_id),
        "request_id": under_review.pk,
        "outcome": "confirmed",
        "decision": "refuse",
        "previous_decision": "refuse",
        "requested_at": under_review.received_at.isoformat(),
        "completed_at": under_review.completed_at.isoformat(),
        "reviewed_by_role": "analyst",
    }
    assert NOTE not in str(delivery.payload), "the note stays internal"
    score = api.get(f"/api/v1/scores/{under_review.dossier_id}").json()
    assert score["decision_final"] is True
    assert score["human_review"]["status"] == "completed" and score["human_review"]["outcome"] == "confirmed"
    assert score["human_review"]["completed_at"] == under_review.completed_at.isoformat()


def test_completing_takes_a_note(client, analyst, under_review):
    login(client, analyst)

    response = client.post(complete_url(under_review), {"outcome": "confirmed", "note": "   "})

    assert response.status_code == 400
    assert "Completing a review takes a note." in response.content.decode()
    under_review.refresh_from_db()
    assert under_review.status == "open" and completed_events() == []


def test_changed_needs_an_override_in_force_made_since_the_request(client, analyst, senior, under_review):
    dossier = under_review.dossier
    login(client, analyst)

    too_soon = client.post(complete_url(under_review), {"outcome": "changed", "note": NOTE})
    assert too_soon.status_code == 400
    assert "No override was put in force since the review was asked for" in too_soon.content.decode()

    # Refused → accept raises exposure: the override waits for a second, senior analyst.
    assert client.post(reverse("dossiers:override", args=[dossier.pk]), override_form("accept")).status_code == 302
    pending = Override.objects.get()
    assert pending.status == Override.Status.PENDING
    still_pending = client.post(complete_url(under_review), {"outcome": "changed", "note": NOTE})
    confirm_now = client.post(complete_url(under_review), {"outcome": "confirmed", "note": NOTE})
    assert still_pending.status_code == confirm_now.status_code == 400
    assert "An override of this dossier awaits approval" in confirm_now.content.decode()

    login(client, senior)
    approve = reverse("dossiers:override-approve", args=[dossier.pk, pending.pk])
    assert client.post(approve, {"note": "Bank letter checked."}).status_code == 302
    page = client.get(detail_url(dossier)).content.decode()
    assert 'data-testid="review-change-override"' in page and 'data-testid="decision-not-final"' in page

    response = client.post(complete_url(under_review), {"outcome": "changed", "note": NOTE}, follow=True)

    assert "the decision was changed by the override, and is final" in response.content.decode()
    under_review.refresh_from_db()
    assert under_review.resolution == {
        "outcome": "changed",
        "decision": "accept",
        "override_id": pending.pk,
        "previous_decision": "refuse",
    }
    (delivery,) = completed_events()
    data = delivery.payload["data"]
    assert (data["outcome"], data["decision"], data["previous_decision"]) == ("changed", "accept", "refuse")
    assert data["reviewed_by_role"] == "senior_analyst"


def test_an_override_made_before_the_request_does_not_count_as_a_change(client, analyst, champion, marketplace):
    accepted = dossier_given(marketplace, decision="accept", limit="300000")
    login(client, analyst)
    overriding = client.post(
        reverse("dossiers:override", args=[accepted.pk]), override_form("refuse", code="adverse_information")
    )
    assert overriding.status_code == 302 and Override.objects.get().status == Override.Status.FINAL
    review, _ = review_request(accepted, client=marketplace.api_client, statement="I contest the refusal.")

    response = client.post(complete_url(review), {"outcome": "changed", "note": NOTE})

    assert response.status_code == 400
    assert "No override was put in force since the review was asked for" in response.content.decode()
    review.refresh_from_db()
    assert review.status == "open"


def test_a_completed_review_cannot_be_completed_again(client, analyst, under_review):
    login(client, analyst)
    client.post(complete_url(under_review), {"outcome": "confirmed", "note": NOTE})

    again = client.post(complete_url(under_review), {"outcome": "confirmed", "note": "Once more."})

    assert again.status_code == 400
    assert "This review is already completed." in again.content.decode()
    assert len(completed_events()) == 1


# --- the queue ------------------------------------------------------------------------------------------------


def test_the_queue_filter_lists_open_reviews_soonest_deadline_first(client, analyst, champion, marketplace, subscribed):
    later, sooner, none, done = (dossier_given(marketplace, decision="refuse") for _ in range(4))
    for dossier in (later, sooner, done):
        review_request(dossier, client=marketplace.api_client)
    now = timezone.now()
    SubjectRequest.objects.filter(dossier=sooner).update(
        received_at=now - timedelta(days=40), due_at=now - timedelta(days=9)
    )
    SubjectRequest.objects.filter(dossier=done).update(status="completed", completed_at=now)
    login(client, analyst)

    response = client.get(reverse("dossiers:queue"), {"review": "on"})

    page = response.content.decode()
    rows = [str(d.pk) for d in (sooner, later, none, done) if f'data-dossier="{d.pk}"' in page]
    assert rows == [str(sooner.pk), str(later.pk)]
    assert page.index(f'data-dossier="{sooner.pk}"') < page.index(f'data-dossier="{later.pk}"')
    assert page.count('data-testid="review-due"') == 2 and 'class="tag overdue"' in page
    assert "Human review requested" in page


# --- what it costs ------------------------------------------------------------------------------------------


def test_the_page_and_the_score_cost_the_same_queries_with_a_review_as_without(client, analyst, refused, api):
    """The reviews come with the dossier (one prefetch): an open or completed review adds no query of its own."""
    login(client, analyst)
    page, score = detail_url(refused), f"/api/v1/scores/{refused.pk}"

    def costs() -> tuple[int, int]:
        counts = []
        for send in (lambda: client.get(page), lambda: api.get(score)):
            with CaptureQueriesContext(connection) as captured:
                assert send().status_code == 200
            counts.append(len(captured.captured_queries))
        return tuple(counts)

    costs()  # the first request of a session does its own once-per-session work
    without = costs()
    review, _ = review_request(refused, client=api.partner.api_client, statement=STATEMENT)
    with_open = costs()
    review_complete(review, user=analyst, outcome="confirmed", note=NOTE)
    with_completed = costs()

    assert without == with_open == with_completed


def test_an_unknown_review_or_one_of_another_dossier_is_not_found(client, analyst, under_review, marketplace):
    other = dossier_given(marketplace, decision="accept")
    login(client, analyst)

    unknown = client.post(reverse("dossiers:human-review-complete", args=[under_review.dossier_id, 999999]), {})
    elsewhere = client.post(reverse("dossiers:human-review-complete", args=[other.pk, under_review.pk]), {})

    assert (unknown.status_code, elsewhere.status_code) == (404, 404)
