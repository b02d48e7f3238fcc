"""Human review in a real browser: the person asked through their partner; an analyst reads their statement and
the deadline on the dossier's page, confirms the decision with a note, and the decision is final again."""

from __future__ import annotations

import pytest
from django.utils import timezone

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from riskoffice.audit import Actor
from riskoffice.subjects.models import SubjectRequest
from riskoffice.subjects.review import review_request
from tests.conftest import ARTIFACTS
from tests.test_four_eyes_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STATEMENT = "My bank cancelled the payment incident of March; please look at its letter."


def test_an_analyst_reads_the_statement_and_confirms_the_decision(
    live_server, browser_page, analyst, committed_dossier, marketplace, settings
):
    from playwright.sync_api import expect

    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["human_review.completed"],
        actor=Actor(client=marketplace.api_client),
    )
    review, _ = review_request(committed_dossier, client=marketplace.api_client, statement=STATEMENT)
    page = browser_page

    log_in(page, live_server.url, analyst, f"/dossiers/{committed_dossier.pk}/")
    panel = page.get_by_test_id("human-review")
    expect(panel.get_by_test_id("decision-not-final")).to_be_visible()
    expect(panel.get_by_test_id("review-open")).to_contain_text(
        f"due {timezone.localtime(review.due_at):%Y-%m-%d}"
    )  # shown in Paris time
    expect(panel.get_by_test_id("review-statement")).to_have_text(STATEMENT)
    expect(page.get_by_test_id("decision-under-review")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "human-review-open.png"), full_page=True)

    form = panel.get_by_test_id("review-complete-form")
    expect(form.get_by_label("Changed: by the override put in force since the request")).to_be_disabled()
    form.get_by_label("Confirmed: a human reviewed it and the decision stands").check()
    form.get_by_label("Reviewer's note").fill("Registry checked: the incident stands; the decision stands.")
    form.get_by_role("button", name="Complete review").click()

    expect(page.locator(".flash")).to_have_text("Human review completed: the decision is confirmed and final.")
    expect(page.get_by_test_id("review-completed")).to_contain_text("the decision was confirmed")
    expect(page.get_by_test_id("decision-not-final")).to_have_count(0)
    assert SubjectRequest.objects.get().status == "completed"
    assert WebhookDelivery.objects.filter(event_type="human_review.completed").count() == 1
    assert page.broken_resources == []
