"""The language switch in a real browser: English for a browser that asks for it, French one click away, kept."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from dossiers.tasks import score_pending
from riskoffice.audit import Actor
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scored_dossier(champion, marketplace, monkeypatch) -> Dossier:
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)  # scored here, not by a worker
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


def test_an_analyst_switches_the_back_office_to_french_and_back(live_server, browser_page, analyst, scored_dossier):
    from playwright.sync_api import expect

    page = browser_page  # Chromium asks for en-GB
    page.goto(f"{live_server.url}/dossiers/{scored_dossier.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Probability of default")).to_be_visible()
    expect(page.get_by_test_id("pd")).to_have_text(re.compile(r"^\d+\.\d\d %$"))

    # One click: the same page, in French, numbers included.
    page.get_by_role("button", name="Français").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/{scored_dossier.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_text("Probabilité de défaut")).to_be_visible()
    expect(page.get_by_test_id("pd")).to_have_text(re.compile(r"^\d+,\d\d\s%$"))  # a no-break space
    expect(page.locator(".meta strong")).to_have_text(re.compile(r"^25\s000\s€$"))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dossier-fr.png"), full_page=True)

    # The choice is kept from page to page, whatever the browser asks for.
    page.get_by_role("link", name="File d'attente").first.click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Queue").first).to_be_visible()
    assert page.broken_resources == []
