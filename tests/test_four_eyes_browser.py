"""Four eyes in a real browser: an analyst's override that raises exposure waits; a second user, a senior analyst,
approves it, and only then does the decision in force change and the partner hear of it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from dossiers.models import Dossier, Override
from dossiers.services import dossier_create, dossier_score
from dossiers.tasks import score_pending
from riskoffice.audit import Actor
from tests.conftest import ARTIFACTS, PASSWORD, pass_second_factor
from tests.test_four_eyes import reason_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REASON = "Personal guarantee from the managing director, signed in branch."


@pytest.fixture
def refused_dossier(champion, marketplace, monkeypatch, settings) -> Dossier:
    """A dossier the policy refused, of a partner subscribed to decision.overridden."""
    # This test commits, so dossier_create's on_commit would enqueue a scoring task; score it here instead.
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True  # no DNS lookup of the example host
    webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["decision.overridden"],
        actor=Actor(client=marketplace.api_client),
    )
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Dossier.objects.filter(pk=dossier.pk).update(decision="refuse")
    dossier.refresh_from_db()
    return dossier


def log_in(page, base_url: str, user, next_url: str) -> None:
    page.goto(f"{base_url}/login/?next={next_url}")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page, user)
    from playwright.sync_api import expect

    expect(page).to_have_url(f"{base_url}{next_url}")


def test_an_override_that_grants_a_refused_credit_waits_for_a_second_senior_analyst(
    live_server, browser_page, analyst, senior, refused_dossier
):
    from playwright.sync_api import expect

    page = browser_page
    dossier = refused_dossier
    code = reason_code("guarantee_obtained")
    dossier_path = f"/dossiers/{dossier.pk}/"

    # The analyst asks to accept the refused dossier, with a reason code and a text.
    log_in(page, live_server.url, analyst, dossier_path)
    expect(page.get_by_test_id("decision")).to_have_text("Refuse")
    form = page.get_by_test_id("override-form")
    form.get_by_label("New decision").select_option("accept")
    form.get_by_label("Reason code").select_option(str(code.pk))
    form.get_by_label("Reason", exact=True).fill(REASON)
    form.get_by_role("button", name="Override").click()

    # It waits: the decision in force is still Refuse, the page says who asked, and nothing went to the partner.
    expect(page.locator(".flash")).to_have_text("Override recorded: it awaits the approval of another senior analyst.")
    expect(page.get_by_test_id("decision")).to_have_text("Refuse")
    waiting = page.get_by_test_id("pending-override")
    expect(waiting).to_contain_text("Override awaiting approval")
    expect(waiting).to_contain_text(f"{analyst.username} asked on")
    expect(waiting).to_contain_text("Guarantee or surety obtained")
    expect(page.get_by_test_id("review-form")).to_have_count(0)  # an analyst approves nothing
    expect(page.get_by_test_id("override-form")).to_have_count(0)  # one override awaiting approval at a time
    assert Override.objects.get().status == "pending"
    assert not WebhookDelivery.objects.filter(event_type="decision.overridden").exists()

    # A second user, a senior analyst, logs in and approves it with a note.
    page.get_by_role("button", name="Log out").click()
    log_in(page, live_server.url, senior, dossier_path)
    expect(page.get_by_test_id("decision")).to_have_text("Refuse")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "four-eyes-pending.png"), full_page=True)
    review = page.get_by_test_id("review-form")
    review.get_by_label("Review note").fill("Guarantee deed seen; within the branch's appetite.")
    review.get_by_role("button", name="Approve").click()

    # Now the decision in force is Accept, the override is listed as approved by the senior analyst,
    # and the partner's endpoint has its one decision.overridden delivery.
    expect(page.locator(".flash")).to_have_text("Override approved: now in force.")
    expect(page.get_by_test_id("decision")).to_have_text("Accept")
    expect(page.get_by_test_id("pending-override")).to_have_count(0)
    listed = page.get_by_test_id("override").first
    expect(listed.get_by_test_id("override-status")).to_have_text("Approved")
    expect(listed.get_by_test_id("override-review")).to_have_text(
        re.compile(rf"Approved by {senior.username} on .*Guarantee deed seen")
    )
    override = Override.objects.get()
    assert (override.status, override.decided_by, override.reviewed_by) == ("approved", analyst, senior)
    assert Dossier.objects.get(pk=dossier.pk).decision == "accept"
    (delivery,) = WebhookDelivery.objects.filter(event_type="decision.overridden")
    assert delivery.payload["data"]["four_eyes"] is True and delivery.payload["data"]["decision"] == "accept"

    page.screenshot(path=str(ARTIFACTS / "four-eyes-approved.png"), full_page=True)
    assert page.broken_resources == []
