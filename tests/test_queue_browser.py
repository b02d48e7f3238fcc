"""An analyst works the queue in a browser: searches a SIREN, filters by band, takes a dossier, opens its company."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from dossiers.tasks import score_pending
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.models import Score
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(champion, marketplace, monkeypatch) -> list[Dossier]:
    """Three scored requests: one of SIREN 552100554 in band B, two of 732829320 in band D (granted credit)."""
    # This test commits, so dossier_create's on_commit would enqueue a scoring task; score it here instead.
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)
    made = []
    for siren, band in [("552100554", "B"), ("732829320", "D"), ("732829320", "D")]:
        dossier = dossier_create(
            partner=marketplace.partner,
            siren=siren,
            requested_amount=Decimal("40000"),
            bank_tokens=["t"],
            actor=Actor(client=marketplace.api_client),
        )
        assert dossier_score(dossier_id=dossier.pk) is not None
        Score.objects.filter(dossier=dossier).update(band=band)
        Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
        made.append(Dossier.objects.get(pk=dossier.pk))
    return made


def test_an_analyst_searches_a_siren_filters_by_band_takes_a_dossier_and_opens_its_company(
    live_server, browser_page, analyst, queue
):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/dossiers/")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/")
    rows = page.locator("table.grid tbody tr[data-dossier]")
    expect(rows).to_have_count(3)
    expect(page.get_by_test_id("count-all")).to_have_text("3")

    # A SIREN typed the way people read it, with spaces, finds that company's request only.
    page.get_by_label("Search", exact=True).fill("552 100 554")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=552\+100\+554"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("552100554")

    # Filtering by band D instead shows the other company's two requests.
    page.get_by_role("link", name="Clear the filters").click()
    expect(rows).to_have_count(3)
    page.get_by_text("Filters", exact=True).click()
    page.get_by_label("Band").select_option("D")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"band=D"))
    expect(rows).to_have_count(2)
    for i in range(2):
        expect(rows.nth(i).locator(".band")).to_have_text("D")

    # Taking the first: the analyst's name shows on the row, the filter stays, and the "Mine" tab counts it.
    first = rows.first
    taken_id = first.get_attribute("data-dossier")
    first.get_by_role("button", name="Take").click()
    expect(page.get_by_role("status")).to_contain_text("You took dossier")
    expect(page).to_have_url(re.compile(r"band=D"))
    taken = page.locator(f'tr[data-dossier="{taken_id}"]')
    expect(taken.get_by_test_id("assignee")).to_have_text(analyst.username)
    expect(taken.get_by_role("button", name="Release")).to_be_visible()
    expect(page.get_by_test_id("count-mine")).to_have_text("1")
    assert Dossier.objects.get(pk=taken_id).assigned_to_id == analyst.pk
    assert AuditEvent.objects.filter(action="dossier.assigned", object_id=taken_id).count() == 1

    # The SIREN leads to the company: both requests, 80,000 € open, and the score chart.
    taken.get_by_role("link", name=re.compile("SIREN 732829320")).click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/companies/732829320/")
    expect(page.get_by_test_id("company-dossiers").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("exposure-amount")).to_contain_text("80,000")
    expect(page.get_by_test_id("exposure-count")).to_have_text("over 2 open requests")
    expect(page.get_by_test_id("score-chart")).to_be_visible()
    expect(page.get_by_role("img", name="Scores of this company over time")).to_be_visible()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "company-page.png"), full_page=True)
    assert page.broken_resources == []
