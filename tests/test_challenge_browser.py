"""An analyst challenges a score in a real browser: corrected accounts, a re-score, the history of versions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from dossiers.tasks import score_pending
from riskoffice.audit import Actor
from scoring.model.synthetic import siren_from_number
from scoring.models import Score
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_ACCOUNTS_SIREN = siren_from_number(50_000_002)  # its sandbox profile has no published accounts


@pytest.fixture
def dossier_without_accounts(champion, marketplace, monkeypatch) -> Dossier:
    # This test commits, so dossier_create's on_commit would enqueue a scoring task; score it here instead.
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=NO_ACCOUNTS_SIREN,
        requested_amount=Decimal("94900"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


def test_an_analyst_challenges_with_corrected_accounts_and_reads_the_new_version_in_the_history(
    live_server, browser_page, analyst, dossier_without_accounts
):
    from playwright.sync_api import expect

    page = browser_page
    dossier = dossier_without_accounts
    url = f"{live_server.url}/dossiers/{dossier.pk}/"

    page.goto(url)
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(url)
    expect(page.get_by_test_id("data-flags")).to_contain_text("financial statements (sandbox) missing")
    expect(page.get_by_test_id("version-in-force")).to_contain_text("Score version 1 in force")

    # The challenge form opens from its summary; the browser holds it back without a justification.
    page.get_by_text("Challenge the recommendation", exact=True).first.click()
    form = page.get_by_test_id("challenge-form")
    expect(form).to_be_visible()
    form.get_by_label("Fiscal year end").fill("2025-12-31")
    form.get_by_label("Revenue", exact=True).fill("420000")
    form.get_by_label("Net income").fill("-38000")
    form.get_by_label("Source document").fill("Liasse fiscale 2025")
    form.get_by_role("button", name="Challenge and re-score").click()
    expect(page).to_have_url(url)  # not sent: the justification is required
    assert not dossier.challenges.exists()

    form.get_by_label("Justification").fill("The 2025 accounts were not on file: revenue 420 k€, a loss of 38 k€.")
    form.get_by_role("button", name="Challenge and re-score").click()

    expect(page.get_by_role("status").filter(has_text="Re-scored: version 2")).to_be_visible()
    expect(page.get_by_test_id("version-in-force")).to_contain_text("Score version 2 in force (challenge")
    expect(page.get_by_test_id("data-flags")).to_have_count(0)  # the accounts are on file now
    history = page.get_by_test_id("score-history")
    expect(history.locator("tbody tr")).to_have_count(2)
    newest, oldest = history.locator("tbody tr").nth(0), history.locator("tbody tr").nth(1)
    expect(newest).to_contain_text("Challenge")
    expect(newest).to_contain_text(analyst.username)
    expect(newest).to_contain_text("Liasse fiscale 2025")
    expect(oldest).to_contain_text("Application")
    new = Score.objects.get(dossier=dossier, version=2)
    expect(newest.locator("td").nth(3)).to_have_text(str(new.score))
    expect(page.get_by_test_id("decision")).to_have_text(re.compile(re.escape(new.get_decision_display())))
    expect(page.get_by_test_id("statements")).to_contain_text("2025-12-31")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "challenge-history.png"), full_page=True)
    assert page.broken_resources == []
