"""The language switch in a real browser: English for a browser that asks for it, French one click away, kept."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_analyst_switches_the_back_office_to_french_and_back(live_server, browser_page, analyst, committed_dossier):
    from playwright.sync_api import expect

    page = browser_page  # Chromium asks for en-GB
    page.goto(f"{live_server.url}/dossiers/{committed_dossier.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Probability of default")).to_be_visible()
    expect(page.get_by_test_id("pd")).to_have_text(re.compile(r"^\d+\.\d\d %$"))

    # One click: the same page, in French, numbers included.
    page.get_by_role("button", name="Français").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/{committed_dossier.pk}/")
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
