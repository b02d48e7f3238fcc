"""Outcomes that can be trusted: corrections with a reason, audited and sent to the partner; CSV imports, row by row.

Everything through HTTP, as analysts, senior analysts, auditors and outsiders reach it.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import WebhookDelivery
from alerts.services import webhook_endpoint_create
from dossiers import outcome_import
from dossiers.models import Dossier, Outcome, OutcomeCorrection, OutcomeImport
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from tests.conftest import PASSWORD, login, make_partner_client

pytestmark = pytest.mark.django_db

SIREN = "552100554"
OTHER_SIREN = "732829320"
IMPORTS = "/dossiers/outcomes/imports/"


@pytest.fixture(autouse=True)
def english(client):
    """The messages these specifications quote are the English ones (the back-office is French by default)."""
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"


def scored(partner_client, *, siren: str = SIREN, decision: str = "accept") -> Dossier:
    """A dossier created as the partner API would and scored by the real service, its decision in force set.

    The decision is set in the database: which one the policy gives this synthetic company is not the point here.
    """
    dossier = dossier_create(
        partner=partner_client.partner,
        siren=siren,
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=partner_client.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Dossier.objects.filter(pk=dossier.pk).update(decision=decision)
    dossier.refresh_from_db()
    return dossier


@pytest.fixture
def granted(champion, marketplace) -> Dossier:
    return scored(marketplace)


@pytest.fixture
def webhook(marketplace):
    endpoint, _ = webhook_endpoint_create(
        partner=marketplace.partner,
        url="https://hooks.pay-later.example/riskoffice",
        event_types=["outcome.recorded", "outcome.corrected"],
        actor=Actor(client=marketplace.api_client),
    )
    return endpoint


def today() -> str:
    return timezone.localdate().isoformat()


def record(client, dossier: Dossier, **values):
    return client.post(f"/dossiers/{dossier.pk}/outcome", {"status": "repaid", "occurred_on": today(), **values})


def correct(client, dossier: Dossier, **values):
    data = {"status": "defaulted", "occurred_on": today(), "reason": "The partner reported the wrong status.", **values}
    return client.post(f"/dossiers/{dossier.pk}/outcome/correct", {f"correction-{k}": v for k, v in data.items()})


def events(event_type: str) -> list[dict]:
    return [d.payload["data"] for d in WebhookDelivery.objects.filter(event_type=event_type).order_by("id")]


def csv_bytes(rows: list[list[str]], *, delimiter: str = ",", encoding: str = "utf-8", bom: bool = False) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return (codecs.BOM_UTF8 if bom else b"") + out.getvalue().encode(encoding)


def upload(client, data: bytes, name: str = "outcomes.csv"):
    file = io.BytesIO(data)
    file.name = name
    return client.post(IMPORTS, {"file": file})


# --- who may do what ------------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in_from_every_outcome_screen(client, granted, analyst):
    imported = OutcomeImport.objects.create(filename="a.csv", uploaded_by=analyst)
    for response in (
        client.get(IMPORTS),
        upload(client, b"dossier,status,date\r\n"),
        client.get(f"{IMPORTS}{imported.pk}/"),
        client.get(f"{IMPORTS}{imported.pk}/report.csv"),
        correct(client, granted),
    ):
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_a_user_without_a_role_is_forbidden_every_outcome_screen(client, outsider, granted, analyst):
    imported = OutcomeImport.objects.create(filename="a.csv", uploaded_by=analyst)
    record(client, granted)  # anonymous: nothing
    login(client, outsider)
    for response in (
        client.get(IMPORTS),
        upload(client, b"dossier,status,date\r\n"),
        client.get(f"{IMPORTS}{imported.pk}/"),
        client.get(f"{IMPORTS}{imported.pk}/report.csv"),
    ):
        assert response.status_code == 403
    assert correct(client, granted).status_code in {403, 404}
    assert not Outcome.objects.exists() and OutcomeImport.objects.count() == 1


def test_an_auditor_reads_every_import_and_its_report_but_neither_imports_nor_corrects(
    client, auditor, analyst, granted
):
    login(client, analyst)
    assert record(client, granted).status_code == 302
    upload(client, csv_bytes([["dossier", "status", "date"], [str(uuid.uuid4()), "repaid", today()]]))
    imported = OutcomeImport.objects.get()
    client.logout()

    login(client, auditor)
    listing = client.get(IMPORTS)
    assert listing.status_code == 200
    body = listing.content.decode()
    assert imported.filename in body and 'data-testid="import-form"' not in body
    assert client.get(f"{IMPORTS}{imported.pk}/").status_code == 200
    assert client.get(f"{IMPORTS}{imported.pk}/report.csv").status_code == 200
    assert (
        upload(client, csv_bytes([["dossier", "status", "date"], [str(granted.pk), "repaid", today()]])).status_code
        == 403
    )
    assert correct(client, granted).status_code == 403
    page = client.get(f"/dossiers/{granted.pk}/").content.decode()
    assert 'data-testid="correction-form"' not in page
    assert Outcome.objects.get().status == "repaid" and OutcomeImport.objects.count() == 1


def test_an_analyst_sees_their_own_imports_and_a_senior_analyst_sees_everyones(client, analyst, senior, reference_data):
    from django.contrib.auth.models import Group, User

    colleague = User.objects.create_user("carl.colleague", password=PASSWORD)
    colleague.groups.add(Group.objects.get(name="analyst"))
    mine = OutcomeImport.objects.create(filename="mine.csv", uploaded_by=analyst)
    theirs = OutcomeImport.objects.create(filename="theirs.csv", uploaded_by=colleague)

    login(client, analyst)
    body = client.get(IMPORTS).content.decode()
    assert "mine.csv" in body and "theirs.csv" not in body
    assert client.get(f"{IMPORTS}{theirs.pk}/").status_code == 404
    assert client.get(f"{IMPORTS}{theirs.pk}/report.csv").status_code == 404
    assert client.get(f"{IMPORTS}{mine.pk}/").status_code == 200
    assert client.get(f"{IMPORTS}not-a-uuid/").status_code == 404
    client.logout()

    login(client, senior)
    body = client.get(IMPORTS).content.decode()
    assert "mine.csv" in body and "theirs.csv" in body


# --- corrections ----------------------------------------------------------------------------------------------


def test_an_analyst_corrects_an_outcome_with_a_reason_audited_with_before_and_after(client, analyst, granted, webhook):
    login(client, analyst)
    assert record(client, granted, granted_amount="25000").status_code == 302

    response = correct(client, granted, granted_amount="25000", outstanding_amount="18000.50")

    assert response.status_code == 302 and response["Location"] == f"/dossiers/{granted.pk}/"
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.outstanding_amount, outcome.recorded_by) == (
        "defaulted",
        Decimal("18000.50"),
        analyst,
    )
    event = AuditEvent.objects.get(action="dossier.outcome_corrected")
    assert event.actor_user == analyst and event.object_id == str(granted.pk)
    assert event.before == {"outcome": "repaid", "occurred_on": today(), "granted_amount": "25000.00"}
    assert event.after == {
        "outcome": "defaulted",
        "occurred_on": today(),
        "granted_amount": "25000.00",
        "outstanding_amount": "18000.50",
        "correction_id": OutcomeCorrection.objects.get().pk,
    }
    # The reason is the analyst's free text: on the correction, encrypted, never in the trail.
    assert OutcomeCorrection.objects.get().reason == "The partner reported the wrong status."
    assert "wrong status" not in json.dumps(event.after)
    with connection.cursor() as cursor:
        cursor.execute("SELECT reason FROM dossiers_outcomecorrection")
        assert b"wrong status" not in bytes(cursor.fetchone()[0])
    # The partner hears of both, in the order they happened, from the back-office.
    assert events("outcome.recorded") == [
        {
            "id": str(granted.pk),
            "status": "repaid",
            "occurred_on": today(),
            "granted_amount": "25000.00",
            "outstanding_amount": None,
            "written_off_amount": None,
            "source": "back-office",
        }
    ]
    assert events("outcome.corrected") == [
        {
            "id": str(granted.pk),
            "status": "defaulted",
            "occurred_on": today(),
            "granted_amount": "25000.00",
            "outstanding_amount": "18000.50",
            "written_off_amount": None,
            "source": "back-office",
        }
    ]
    # The dossier page says it was corrected, when, by whom and why.
    page = client.get(f"/dossiers/{granted.pk}/").content.decode()
    assert 'data-testid="outcome-corrections"' in page
    assert f"by {analyst.username}, reason: The partner reported the wrong status." in page
    assert "status: Repaid → Defaulted" in page


def test_a_correction_without_a_reason_is_a_400_and_nothing_changes(client, analyst, granted, webhook):
    login(client, analyst)
    record(client, granted)

    response = correct(client, granted, reason="   ")

    assert response.status_code == 400
    assert "A correction needs a reason." in response.content.decode()
    assert Outcome.objects.get().status == "repaid"
    assert not AuditEvent.objects.filter(action="dossier.outcome_corrected").exists()
    assert events("outcome.corrected") == []


def test_a_correction_that_changes_nothing_is_refused(client, analyst, granted):
    login(client, analyst)
    record(client, granted, granted_amount="25000")

    response = correct(client, granted, status="repaid", granted_amount="25000.00")

    assert response.status_code == 400
    assert "Nothing changed: the correction states the outcome as it is recorded." in response.content.decode()
    assert not AuditEvent.objects.filter(action="dossier.outcome_corrected").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"occurred_on": "2001-01-01"}, "The outcome date cannot precede the decision in force"),
        ({"occurred_on": (timezone.localdate() + timedelta(days=1)).isoformat()}, "cannot be in the future"),
        ({"status": "written_off"}, "A write-off states the amount written off."),
        ({"status": "repaid", "written_off_amount": "10"}, "Only a write-off states an amount written off."),
    ],
)
def test_a_correction_passes_the_checks_a_new_outcome_passes(client, analyst, granted, values, message):
    login(client, analyst)
    record(client, granted)

    response = correct(client, granted, **values)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert Outcome.objects.get().status == "repaid"


def test_a_correction_is_refused_once_the_decision_in_force_grants_no_credit(client, analyst, granted):
    login(client, analyst)
    record(client, granted)
    Dossier.objects.filter(pk=granted.pk).update(decision="refuse")

    response = correct(client, granted)

    assert response.status_code == 400
    assert "no credit was granted" in response.content.decode()


def test_a_dossier_without_an_outcome_has_nothing_to_correct(client, analyst, granted):
    login(client, analyst)
    response = correct(client, granted)
    assert response.status_code == 400
    assert "This dossier has no outcome to correct: record one instead." in response.content.decode()
    assert not Outcome.objects.exists()


def test_re_posting_an_outcome_is_still_refused_a_correction_is_its_own_act(client, analyst, granted):
    login(client, analyst)
    record(client, granted)
    response = record(client, granted, status="defaulted")
    assert response.status_code == 400
    assert "An outcome is already recorded for this dossier." in response.content.decode()
    page = client.get(f"/dossiers/{granted.pk}/").content.decode()
    assert 'data-testid="correction-form"' in page and 'value="repaid" selected' in page


def test_an_outcome_reported_through_the_api_is_sent_as_an_event_from_the_api(api, granted, webhook):
    response = api.post(f"/api/v1/scores/{granted.pk}/outcome", {"status": "repaid", "occurred_on": today()})
    assert response.status_code == 201
    assert [event["source"] for event in events("outcome.recorded")] == ["api"]


# --- CSV import ------------------------------------------------------------------------------------------------


@pytest.fixture
def book(champion, marketplace):
    """Dossiers for an import: two granted, one with an outcome, one refused, one of another partner."""
    other = make_partner_client("Other Lender", ["scores:write"])
    return {
        "new": scored(marketplace),
        "recorded": scored(marketplace, siren=OTHER_SIREN),
        "refused": scored(marketplace, decision="refuse"),
        "other_partner": scored(other),
    }


def test_a_mixed_file_is_recorded_row_by_row_with_a_report_naming_each_refusal(client, analyst, book, webhook):
    login(client, analyst)
    assert record(client, book["recorded"], granted_amount="30000").status_code == 302
    unknown = str(uuid.uuid4())
    tomorrow = (timezone.localdate() + timedelta(days=1)).strftime("%d/%m/%Y")
    day = timezone.localdate().strftime("%d/%m/%Y")
    french = csv_bytes(
        [
            ["Identifiant", "Statut", "Date", "Montant accordé", "Encours", "Montant passé en perte", "Motif"],
            [str(book["new"].pk), "Défaut", day, "25 000,00", "18\u00a0000,50", "", ""],
            [str(book["recorded"].pk), "passé en perte", day, "30 000", "", "12 345,67", "Radié par le comité"],
            [unknown, "remboursé", day, "", "", "", ""],
            ["12345", "remboursé", day, "", "", "", ""],
            [str(book["refused"].pk), "remboursé", day, "", "", "", ""],
            [str(book["new"].pk), "payé", "31/02/2025", "12,34,5", "", "", ""],
            [str(book["other_partner"].pk), "remboursé", tomorrow, "", "", "", ""],
        ],
        delimiter=";",
        encoding="cp1252",
    )

    response = upload(client, french, name="C:\\exports\\issues-mars.csv")

    assert response.status_code == 302
    imported = OutcomeImport.objects.get()
    assert response["Location"] == f"{IMPORTS}{imported.pk}/"
    assert (imported.filename, imported.encoding, imported.uploaded_by) == ("issues-mars.csv", "cp1252", analyst)
    assert (imported.rows_total, imported.rows_recorded, imported.rows_rejected) == (7, 2, 5)
    assert imported.report == [
        {"line": 2, "dossier": str(book["new"].pk), "result": "recorded", "errors": {}},
        {"line": 3, "dossier": str(book["recorded"].pk), "result": "corrected", "errors": {}},
        {
            "line": 4,
            "dossier": unknown,
            "result": "rejected",
            "errors": {"dossier": "No dossier has this id, or you may not see it."},
        },
        {
            "line": 5,
            "dossier": "12345",
            "result": "rejected",
            "errors": {"dossier": "“12345” is not a dossier id: give the full id shown on the dossier page."},
        },
        {
            "line": 6,
            "dossier": str(book["refused"].pk),
            "result": "rejected",
            "errors": {
                "row": "The decision in force is refuse: no credit was granted, "
                "so there is no repayment or default to record."
            },
        },
        {
            "line": 7,
            "dossier": str(book["new"].pk),
            "result": "rejected",
            "errors": {
                "status": "“payé” is not an outcome: write repaid, defaulted or written off "
                "(or remboursé, défaut, passé en perte).",
                "date": "“31/02/2025” is not a date: write it as YYYY-MM-DD or DD/MM/YYYY.",
                "granted_amount": "“12,34,5” is not an amount in euros (e.g. 1234.56 or 1 234,56).",
            },
        },
        # Back-office staff see every partner's dossiers: the refusal is the date's, not the partner's.
        {
            "line": 8,
            "dossier": str(book["other_partner"].pk),
            "result": "rejected",
            "errors": {"date": "The outcome date cannot be in the future."},
        },
    ]
    new = Outcome.objects.get(dossier=book["new"])
    assert (new.status, new.granted_amount, new.outstanding_amount) == (
        "defaulted",
        Decimal("25000"),
        Decimal("18000.50"),
    )
    corrected = Outcome.objects.get(dossier=book["recorded"])
    assert (corrected.status, corrected.written_off_amount) == ("written_off", Decimal("12345.67"))
    assert not Outcome.objects.filter(dossier__in=[book["refused"], book["other_partner"]]).exists()
    correction = AuditEvent.objects.get(action="dossier.outcome_corrected")
    assert correction.actor_user == analyst
    assert OutcomeCorrection.objects.get(pk=correction.after["correction_id"]).reason == "Radié par le comité"
    assert AuditEvent.objects.get(action="outcomes.imported").after == {
        "filename": "issues-mars.csv",
        "rows": 7,
        "recorded": 1,
        "corrected": 1,
        "rejected": 5,
    }
    # Each row that changed an outcome told the partner, as an import.
    assert [(e["id"], e["status"], e["source"]) for e in events("outcome.recorded")] == [
        (str(book["recorded"].pk), "repaid", "back-office"),
        (str(book["new"].pk), "defaulted", "import"),
    ]
    assert [(e["id"], e["status"], e["source"]) for e in events("outcome.corrected")] == [
        (str(book["recorded"].pk), "written_off", "import")
    ]

    # The report page shows every row and what was wrong, field by field.
    page = client.get(response["Location"])
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="rows-recorded">2<' in body and 'data-testid="rows-rejected">5<' in body
    assert "read as Windows-1252" in body
    assert "<strong>date</strong>: “31/02/2025” is not a date" in body
    rejected_only = client.get(f"{response['Location']}?show=rejected").content.decode()
    assert rejected_only.count('class="result-rejected"') == 5 and 'class="result-recorded"' not in rejected_only


def test_a_utf8_comma_file_in_english_is_imported_the_same_way(client, senior, book):
    english_rows = csv_bytes(
        [
            ["dossier_id", "status", "occurred_on", "granted_amount", "written_off_amount", "note"],
            [str(book["new"].pk), "repaid", today(), "1234.56", "", "paid early"],
            [str(book["recorded"].pk), "written_off", today(), "", "", ""],
            [str(book["recorded"].pk), "repaid", today(), "", "", ""],
        ],
        bom=True,
    )
    login(client, senior)

    response = upload(client, english_rows)

    assert response.status_code == 302
    imported = OutcomeImport.objects.get()
    assert imported.encoding == "utf-8-sig"
    assert [(row["line"], row["result"], row["errors"]) for row in imported.report] == [
        (2, "recorded", {}),
        (3, "rejected", {"written_off_amount": "A write-off states the amount written off."}),
        (4, "recorded", {}),
    ]
    assert Outcome.objects.get(dossier=book["new"]).granted_amount == Decimal("1234.56")


def test_a_second_outcome_without_a_reason_is_refused_with_the_way_to_correct_it(client, analyst, book):
    login(client, analyst)
    record(client, book["recorded"])
    upload(client, csv_bytes([["dossier", "status", "date"], [str(book["recorded"].pk), "defaulted", today()]]))
    assert OutcomeImport.objects.get().report[0]["errors"] == {
        "row": "An outcome is already recorded for this dossier. "
        "To correct it, give the reason for the correction in a “reason” column."
    }
    assert Outcome.objects.get().status == "repaid"


def test_the_report_downloads_as_a_csv_french_excel_opens(client, analyst, book):
    login(client, analyst)
    upload(
        client,
        csv_bytes(
            [
                ["dossier", "status", "date"],
                [str(book["new"].pk), "repaid", today()],
                ["nope", "repaid", "hier"],
            ]
        ),
        name="retours.csv",
    )
    imported = OutcomeImport.objects.get()

    response = client.get(f"{IMPORTS}{imported.pk}/report.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="retours-report.csv"'
    assert response.content.startswith(codecs.BOM_UTF8)
    text = response.content.decode("utf-8-sig")
    assert text.splitlines() == [
        "line;dossier;result;errors",
        f"2;{book['new'].pk};recorded;",
        "3;nope;rejected;dossier: “nope” is not a dossier id: give the full id shown on the dossier page. | "
        "date: “hier” is not a date: write it as YYYY-MM-DD or DD/MM/YYYY.",
    ]
    assert "\r\n" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\r\n;;\r\n", "The file is empty."),
        (b"dossier;status;date\r\n", "The file has a header but no rows."),
        (b"id;amount\r\n1;2\r\n", "The first line must name the columns dossier, status and date"),
        (b"dossier,id,status,date\r\n1,2,repaid,2025-01-01\r\n", "both name the dossier: keep one."),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x81", "The file is not UTF-8 text"),
        (b"PK\x03\x04workbook", "This is an Excel workbook, not a CSV file"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_a_clear_error_and_nothing_recorded(
    client, analyst, book, data, message
):
    login(client, analyst)
    response = upload(client, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not OutcomeImport.objects.exists() and not Outcome.objects.exists()


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(client, analyst, book, monkeypatch):
    monkeypatch.setattr(outcome_import, "MAX_BYTES", 2**20)
    login(client, analyst)
    padding = "x" * 1000
    rows = [[str(book["new"].pk), "repaid", today(), padding]] * 1300
    response = upload(client, csv_bytes([["dossier", "status", "date", "note"], *rows]))
    assert response.status_code == 400
    assert "The file is 1.3 MB; the limit is 1 MB. Split it into smaller files." in response.content.decode()
    assert not OutcomeImport.objects.exists() and not Outcome.objects.exists()


def test_a_file_with_too_many_rows_is_refused_and_nothing_recorded(client, analyst, book, monkeypatch):
    monkeypatch.setattr(outcome_import, "MAX_ROWS", 2)
    login(client, analyst)
    rows = [[str(book[name].pk), "repaid", today()] for name in ("new", "recorded", "other_partner")]
    response = upload(client, csv_bytes([["dossier", "status", "date"], *rows]))
    assert response.status_code == 400
    assert "The file has more than 2 rows; split it into smaller files." in response.content.decode()
    assert not OutcomeImport.objects.exists() and not Outcome.objects.exists()


def test_the_limits_are_the_documented_ones():
    assert (outcome_import.MAX_BYTES, outcome_import.MAX_ROWS) == (5 * 1024 * 1024, 10_000)


def test_no_file_at_all_is_a_clear_error(client, analyst, reference_data):
    login(client, analyst)
    response = client.post(IMPORTS, {})
    assert response.status_code == 400
    assert "Choose a CSV file to import." in response.content.decode()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1234.56", Decimal("1234.56")),
        ("1 234,56", Decimal("1234.56")),
        ("1\u00a0234,56", Decimal("1234.56")),
        ("1\u202f234,5", Decimal("1234.5")),
        ("1.234,56", Decimal("1234.56")),
        ("1,234.56", Decimal("1234.56")),
        ("12 000 €", Decimal("12000")),
        ("", None),
    ],
)
def test_amounts_are_read_the_french_and_the_english_way(text, value):
    assert outcome_import._amount(text) == value


@pytest.mark.parametrize("text", ["1.234", "abc", "1,2,3", "12.345.678,9.1", "1e5"])
def test_an_unreadable_amount_is_an_error_never_a_guess(text):
    with pytest.raises(outcome_import._CellError):
        outcome_import._amount(text)
