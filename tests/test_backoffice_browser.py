"""An analyst's day in a real browser: log in, open a dossier, read the score, override it, record the outcome."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from dossiers.models import Dossier, Outcome, Override
from scoring.model.engine import factors_in_decision_order
from tests.conftest import ARTIFACTS, PASSWORD
from tests.test_four_eyes import reason_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_analyst_logs_in_reads_a_dossier_overrides_it_and_records_the_outcome(
    live_server, browser_page, analyst, committed_dossier
):
    from playwright.sync_api import expect

    page = browser_page
    dossier = committed_dossier
    # Granted, so that lowering it to a guarantee is final at once; an override that raises exposure waits for
    # a second, senior analyst (tests/test_four_eyes_browser.py).
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
    dossier.refresh_from_db()
    code = reason_code("guarantee_obtained")
    score = dossier.scores.get()
    company = dossier.applicant_name

    # Logging in through the form lands on the queue the analyst asked for.
    page.goto(f"{live_server.url}/dossiers/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/dossiers/$"))
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/")
    expect(page.get_by_role("heading", name="Dossiers")).to_be_visible()
    row = page.locator("table.grid tbody tr", has_text=company)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(str(score.score))

    # The dossier shows the score, the PD, the recommendation and its reasons (ordered for the decision), fr and en.
    row.get_by_role("link", name=company).click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/{dossier.pk}/")
    expect(page.get_by_test_id("score")).to_have_text(str(score.score))
    expect(page.get_by_test_id("pd")).to_have_text(f"{100 * score.probability_of_default:.2f} %")
    expect(page.get_by_test_id("recommendation")).to_have_text(score.get_decision_display())
    expect(page.get_by_test_id("decision")).to_have_text(dossier.get_decision_display())
    factors = page.get_by_test_id("factors").locator("li")
    ordered = factors_in_decision_order(score.factors, dossier.decision)
    expect(factors).to_have_count(len(ordered))
    for i, factor in enumerate(ordered):
        expect(factors.nth(i).locator(".fr")).to_have_text(factor["text"]["fr"])
        expect(factors.nth(i).locator(".en")).to_have_text(factor["text"]["en"])

    # The contribution bars are drawn to scale: the biggest contribution has the longest bar.
    bars = page.locator("table.bars td.bar span")
    expect(bars).to_have_count(len(score.contributions))
    first, last = bars.first.bounding_box(), bars.last.bounding_box()
    assert first["width"] > 0 and last["width"] < first["width"]

    # An override with no reason: the browser holds the form back (the field is required).
    # Overridden to another decision that grants credit: outcomes are recorded only where credit was granted.
    target = "guarantee" if dossier.decision == "accept" else "accept"
    target_label = str(dict(Dossier._meta.get_field("decision").choices)[target])
    override_form = page.get_by_test_id("override-form")
    override_form.get_by_label("New decision").select_option(target)
    override_form.get_by_label("Reason code").select_option(str(code.pk))
    override_form.get_by_role("button", name="Override").click()
    reason = override_form.get_by_label("Reason", exact=True)
    assert reason.evaluate("el => el.validity.valueMissing") is True
    expect(page).to_have_url(f"{live_server.url}/dossiers/{dossier.pk}/")
    assert not Override.objects.exists()

    # A blank reason gets past the browser but not the server, which says why.
    reason.fill("   ")
    override_form.get_by_role("button", name="Override").click()
    expect(page.get_by_test_id("override-form")).to_contain_text("An override needs a reason.")
    assert not Override.objects.exists()

    # With a reason, the decision in force changes and the override is listed under the analyst's name.
    page.get_by_test_id("override-form").get_by_label("New decision").select_option(target)
    page.get_by_test_id("override-form").get_by_label("Reason code").select_option(str(code.pk))
    reason = page.get_by_test_id("override-form").get_by_label("Reason", exact=True)
    reason.fill("Personal guarantee from the managing director.")
    page.get_by_test_id("override-form").get_by_role("button", name="Override").click()
    expect(page.get_by_role("status")).to_have_text("Decision overridden.")
    expect(page.get_by_test_id("decision")).to_have_text(target_label)
    overrides = page.get_by_test_id("overrides")
    expect(overrides).to_contain_text(analyst.username)
    expect(overrides).to_contain_text("Personal guarantee from the managing director.")
    assert Override.objects.get().decided_by == analyst

    # Recording the outcome: today's date is offered, and the outcome replaces the form.
    today = timezone.localdate().isoformat()
    outcome_form = page.get_by_test_id("outcome-form")
    expect(outcome_form.get_by_label("Date")).to_have_value(today)
    outcome_form.get_by_label("Outcome").select_option("repaid")
    outcome_form.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_role("status")).to_have_text("Outcome recorded.")
    expect(page.get_by_test_id("outcome")).to_have_text(f"Repaid on {today}, recorded by {analyst.username}.")
    expect(page.get_by_test_id("outcome-form")).to_have_count(0)
    assert Outcome.objects.get().status == "repaid"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "backoffice-dossier.png"), full_page=True)
    assert page.broken_resources == []
