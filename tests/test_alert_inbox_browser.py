"""An analyst works the alert inbox in a browser: sees the count, acknowledges an alert, lowers a limit from another."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from alerts.models import Alert
from dossiers.models import Company
from riskoffice.models import AuditEvent
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_alerts(reference_data) -> list[Alert]:
    """ACME, limit 50,000 €: its score dropped 712 → 640 (band B → D); Globex changed band C → D."""
    acme = Company.objects.create(siren="552100554", name="ACME SA", recommended_limit=Decimal("50000"))
    globex = Company.objects.create(siren="732829320", name="Globex SARL")
    drop = Alert.objects.create(
        kind=Alert.Kind.SCORE_DROPPED,
        severity=Alert.Severity.CRITICAL,
        dedup_key="cscore:1",
        company=acme,
        previous_score=712,
        score=640,
        previous_band="B",
        band="D",
    )
    band = Alert.objects.create(
        kind=Alert.Kind.BAND_CHANGED,
        severity=Alert.Severity.WARNING,
        dedup_key="cscore:2",
        company=globex,
        previous_score=650,
        score=630,
        previous_band="C",
        band="D",
    )
    return [drop, band]


def test_an_analyst_sees_the_count_acknowledges_an_alert_and_lowers_a_limit_from_another(
    live_server, browser_page, analyst, two_alerts
):
    from playwright.sync_api import expect

    drop, band = two_alerts
    page = browser_page
    page.goto(f"{live_server.url}/dossiers/")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/")
    expect(page.get_by_test_id("alerts-unread")).to_have_text("2 unread")

    # The navigation leads to the inbox: newest first, each with its company and what happened.
    page.get_by_test_id("nav-alerts").click()
    expect(page).to_have_url(f"{live_server.url}/alerts/")
    rows = page.locator("table[data-testid=alerts] tbody tr[data-alert]")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Globex SARL")
    expect(rows.first.get_by_test_id("what")).to_have_text("score 650 → 630, band C → D")
    expect(rows.nth(1).get_by_test_id("what")).to_have_text("score 712 → 640, band B → D")

    # Acknowledging the band change: it leaves the unread list, and the count drops.
    page.get_by_role("button", name=f"Acknowledge alert {band.pk}").click()
    expect(page.get_by_role("status")).to_contain_text("Alert acknowledged.")
    expect(rows).to_have_count(1)
    expect(page.get_by_test_id("alerts-unread")).to_have_text("1 unread")

    # Lowering ACME's limit from its alert, with a reason: back in the inbox, the alert acknowledged too.
    rows.first.get_by_role("link", name="Lower the recommended limit").click()
    expect(page.get_by_test_id("alert-what")).to_have_text("score 712 → 640, band B → D")
    expect(page.get_by_test_id("current-limit")).to_contain_text("50,000")
    page.get_by_label("New recommended limit (€)").fill("60 000")
    page.get_by_label("Reason").fill("Band D after the re-score")
    page.get_by_role("button", name="Lower the limit").click()
    expect(page.get_by_test_id("limit-errors")).to_contain_text("must be lower than the current one")
    page.get_by_label("New recommended limit (€)").fill("20 000")
    page.get_by_role("button", name="Lower the limit").click()
    expect(page).to_have_url(f"{live_server.url}/alerts/")
    expect(page.get_by_role("status")).to_contain_text("The recommended limit of ACME SA is now 20000.00")
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No unread alerts.")).to_be_visible()
    expect(page.get_by_test_id("alerts-unread")).to_have_count(0)

    audit = AuditEvent.objects.get(action="company.limit_lowered")
    assert audit.actor_user_id == analyst.pk
    assert audit.before == {"recommended_limit": "50000.00"}
    assert audit.after["recommended_limit"] == "20000.00" and audit.after["reason"] == "Band D after the re-score"
    assert Alert.objects.get(pk=drop.pk).acknowledged_by_id == analyst.pk

    # Everything on file: "All" shows both, acknowledged by this analyst.
    page.get_by_label("Show").select_option("all")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"show=all"))
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("acknowledged")).to_have_count(2)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "alert-inbox.png"), full_page=True)
    assert page.broken_resources == []
