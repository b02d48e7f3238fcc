"""An analyst imports a French Excel file of outcomes in a browser, reads the report row by row, corrects one."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from dossiers.models import Dossier, Outcome, OutcomeImport
from dossiers.services import dossier_create, dossier_score
from dossiers.tasks import score_pending
from riskoffice.audit import Actor
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def granted_dossier(champion, marketplace, monkeypatch) -> Dossier:
    # This test commits, so dossier_create's on_commit would enqueue a scoring task; score it here instead.
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    # Which decision the policy gives this synthetic company is not the point: credit was granted.
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
    dossier.refresh_from_db()
    return dossier


def french_excel_file(rows: list[list[str]]) -> bytes:
    """What French Excel saves as "CSV (séparateur : point-virgule)": Windows-1252, semicolons, CRLF."""
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("cp1252")


def test_an_analyst_imports_a_french_excel_file_reads_the_report_and_corrects_an_outcome(
    live_server, browser_page, analyst, granted_dossier
):
    from playwright.sync_api import expect

    page = browser_page
    dossier = granted_dossier
    day = timezone.localdate().strftime("%d/%m/%Y")
    data = french_excel_file(
        [
            ["Identifiant", "Statut", "Date", "Montant accordé", "Encours", "Montant passé en perte"],
            [str(dossier.pk), "Défaut", day, "25 000,00", "18 000,50", ""],
            [str(uuid.uuid4()), "remboursé", day, "", "", ""],
            [str(dossier.pk), "passé en perte", "31/02/2025", "", "", "douze"],
        ]
    )

    page.goto(f"{live_server.url}/dossiers/outcomes/imports/")
    page.get_by_label("Username").fill(analyst.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Outcome imports", exact=True)).to_be_visible()

    # Importing with no file: the browser lets it through only once one is chosen; an empty one is refused.
    form = page.get_by_test_id("import-form")
    form.get_by_label("CSV file").set_input_files(
        files=[{"name": "vide.csv", "mimeType": "text/csv", "buffer": b"Identifiant;Statut;Date\r\n"}]
    )
    form.get_by_role("button", name="Import outcomes").click()
    expect(page.get_by_test_id("file-errors")).to_contain_text("The file has a header but no rows.")
    assert not OutcomeImport.objects.exists()

    form = page.get_by_test_id("import-form")
    form.get_by_label("CSV file").set_input_files(
        files=[{"name": "issues-mars.csv", "mimeType": "text/csv", "buffer": data}]
    )
    form.get_by_role("button", name="Import outcomes").click()

    # The report: one good row recorded, two refused with the reason for each field.
    expect(page.get_by_role("status")).to_have_text("issues-mars.csv: 1 of 3 rows recorded, 2 rejected.")
    expect(page.get_by_test_id("rows-recorded")).to_have_text("1")
    expect(page.get_by_test_id("rows-rejected")).to_have_text("2")
    report = page.get_by_test_id("report")
    expect(report.locator("tr[data-line='2']")).to_contain_text("recorded")
    expect(report.locator("tr[data-line='3']")).to_contain_text("No dossier has this id, or you may not see it.")
    bad = report.locator("tr[data-line='4']")
    expect(bad).to_contain_text("“31/02/2025” is not a date")
    expect(bad).to_contain_text("“douze” is not an amount in euros")
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.outstanding_amount) == ("defaulted", Decimal("18000.50"))

    # Only the refused rows, then the report as a file for Excel.
    page.get_by_role("link", name="Rejected rows").click()
    expect(report.locator("tbody tr")).to_have_count(2)
    with page.expect_download() as download_info:
        page.get_by_test_id("download").click()
    download = download_info.value
    assert download.suggested_filename == "issues-mars-report.csv"
    assert open(download.path(), "rb").read().startswith(b"\xef\xbb\xbf")

    # From the report to the dossier, where the outcome is corrected with a reason.
    page.get_by_role("link", name="All rows").click()
    report.locator("tr[data-line='2']").get_by_role("link").click()
    expect(page).to_have_url(f"{live_server.url}/dossiers/{dossier.pk}/")
    expect(page.get_by_test_id("outcome")).to_contain_text("Defaulted on")
    page.get_by_text("Correct this outcome").click()
    correction = page.get_by_test_id("correction-form")
    correction.get_by_label("Amount outstanding (€)").fill("17000")
    correction.get_by_label("Reason for the correction").fill("The partner's file counted fees as principal.")
    correction.get_by_role("button", name="Correct the outcome").click()
    expect(page.get_by_role("status")).to_have_text("Outcome corrected.")
    corrections = page.get_by_test_id("outcome-corrections")
    expect(corrections).to_contain_text(f"by {analyst.username}, reason: The partner's file counted fees as principal.")
    expect(corrections).to_contain_text("amount outstanding: 18000.50 → 17000.00")
    assert Outcome.objects.get().outstanding_amount == Decimal("17000")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outcome-import.png"), full_page=True)
    assert page.broken_resources == []
