"""Personal and bank-derived data are encrypted in the database; lookups by reference still work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import NegativeEvent
from dossiers.models import Dossier, Individual
from dossiers.overrides import dossier_override
from dossiers.services import dossier_score
from riskoffice.models import AuditEvent
from scoring.bulk.jobs import bulk_job_create, bulk_job_run
from scoring.bulk.retention import expire_bulk_files
from scoring.models import BulkScoringJob, FeatureSnapshot, Score
from tests.conftest import login
from tests.test_b2c import b2c_champion  # noqa: F401 - fixture
from tests.test_bulk_scoring import csv_bytes, portfolio_rows

pytestmark = pytest.mark.django_db

REFERENCE = "CUST-SECRET-7731"
BODY = {"individual": {"reference": REFERENCE}, "bank_data": ["tok_abc"], "requested_amount": 3000}


def raw_column(model, column: str, pk) -> bytes:
    """The column's bytes exactly as PostgreSQL stores them (no Django field conversion)."""
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{column}" FROM "{model._meta.db_table}" WHERE id = %s', [pk])  # noqa: S608
        return bytes(cursor.fetchone()[0])


def scored_b2c(api) -> Dossier:
    response = api.post("/api/v1/scores", BODY)
    assert response.status_code in (201, 202), response.content
    dossier_score(dossier_id=response.json()["id"])
    return Dossier.objects.select_related("individual").get(pk=response.json()["id"])


def test_the_reference_is_not_in_the_individuals_row_nor_in_the_audit(api, b2c_champion):  # noqa: F811
    dossier = scored_b2c(api)

    raw = raw_column(Individual, "reference", dossier.individual_id)
    assert REFERENCE.encode() not in raw
    assert Individual.objects.get(pk=dossier.individual_id).reference == REFERENCE  # the model reads it back
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM riskoffice_auditevent WHERE CAST(after AS text) LIKE %s", [f"%{REFERENCE}%"]
        )
        assert cursor.fetchone()[0] == 0


def test_bank_aggregates_and_the_reasons_quoting_them_are_not_in_clear(api, b2c_champion):  # noqa: F811
    dossier = scored_b2c(api)
    snapshot = FeatureSnapshot.objects.get(dossier=dossier)
    score = Score.objects.get(dossier=dossier)
    name, value = next((k, v) for k, v in snapshot.features.items() if isinstance(v, float) and v not in (0.0, 1.0))

    raw_features = raw_column(FeatureSnapshot, "features", snapshot.pk)
    assert name.encode() not in raw_features and repr(value).encode() not in raw_features
    raw_factors = raw_column(Score, "factors", score.pk)
    assert score.factors and score.factors[0]["feature"].encode() not in raw_factors


def test_an_override_reason_is_encrypted_and_not_copied_into_the_audit(api, b2c_champion, analyst):  # noqa: F811
    dossier = scored_b2c(api)
    text = "Customer showed payslips from Acme Corp on 12 March"
    decision = "refuse" if dossier.decision != "refuse" else "review"
    override = dossier_override(dossier=dossier, decision=decision, reason_code="data_error", reason=text, user=analyst)

    assert text.encode() not in raw_column(type(override), "reason", override.pk)
    assert type(override).objects.get(pk=override.pk).reason == text
    audit = AuditEvent.objects.filter(object_id=str(dossier.pk), action__startswith="dossier.overrid").get()
    assert audit.after["override_id"] == override.pk and text not in str(audit.after)


# --- lookups by reference through the API -------------------------------------------------------------------


def test_the_same_reference_twice_is_the_same_individual_and_the_list_filters_by_it(api, b2c_champion):  # noqa: F811
    first, second = scored_b2c(api), scored_b2c(api)
    assert first.individual_id == second.individual_id
    assert Individual.objects.count() == 1

    listed = api.get(f"/api/v1/scores?reference={REFERENCE}")
    assert listed.status_code == 200, listed.content
    assert {item["id"] for item in listed.json()["results"]} == {str(first.pk), str(second.pk)}
    assert api.get("/api/v1/scores?reference=someone-else").json()["results"] == []


def test_a_negative_event_by_reference_lands_on_the_scored_individual(api, b2c_champion):  # noqa: F811
    dossier = scored_b2c(api)
    body = {
        "individual": {"reference": REFERENCE},
        "event_id": "sepa/1",
        "kind": "sepa_incident",
        "occurred_on": (timezone.localdate() - timedelta(days=2)).isoformat(),
        "reason_code": "AM04",
    }
    response = api.post("/api/v1/events", body)
    assert response.status_code == 201, response.content
    assert response.json()["subject"] == {"individual": {"reference": REFERENCE}}
    assert NegativeEvent.objects.get().individual_id == dossier.individual_id
    assert REFERENCE not in str(AuditEvent.objects.get(action="negative_event.reported").after)


# --- bulk files: encrypted, and they expire -----------------------------------------------------------------


def test_bulk_files_are_encrypted_and_expire(client, champion, analyst):
    rows = portfolio_rows(5)
    job = bulk_job_create(user=analyst, segment="b2b", filename="p.csv", data=csv_bytes(rows))
    bulk_job_run(job_id=job.pk)
    marker = b"R00003,"  # a row id from the partner's file, as the CSV holds it
    assert marker in bytes(BulkScoringJob.objects.get(pk=job.pk).input_csv)  # the application reads the file
    with connection.cursor() as cursor:
        cursor.execute("SELECT input_csv, output_csv FROM scoring_bulkscoringjob WHERE id = %s", [job.pk])
        raw_input, raw_output = (bytes(v) for v in cursor.fetchone())
    assert marker not in raw_input and marker not in raw_output

    assert expire_bulk_files(older_than=timedelta(days=30), dry_run=False) == 0  # too recent
    assert expire_bulk_files(older_than=timezone.now() + timedelta(seconds=1), dry_run=True) == 1
    assert BulkScoringJob.objects.get(pk=job.pk).files_expired_at is None  # a dry run changes nothing
    assert expire_bulk_files(older_than=timezone.now() + timedelta(seconds=1), dry_run=False) == 1
    assert expire_bulk_files(older_than=timezone.now() + timedelta(seconds=1), dry_run=False) == 0  # idempotent

    job.refresh_from_db()
    assert job.input_csv is None and job.output_csv is None and job.files_expired_at is not None
    assert AuditEvent.objects.filter(action="bulk_job.files_expired", object_id=str(job.pk)).exists()
    login(client, analyst)
    page = client.get(f"/scoring/bulk/{job.pk}/").content.decode()
    assert 'data-testid="files-expired"' in page and 'data-testid="download"' not in page
    assert client.get(f"/scoring/bulk/{job.pk}/download").status_code == 404
