"""The dossier's life after the POST: whose identity a score may write, and how lost work is found again."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from dossiers.models import Company, Dossier
from dossiers.services import dossier_score, dossiers_requeue_stalled
from scoring.bulk.jobs import bulk_jobs_requeue_stalled
from scoring.model.synthetic import sandbox_company
from scoring.models import BulkScoringJob
from tests.test_bulk_scoring import csv_bytes, portfolio_rows

SIREN = "552100554"


def post_and_score(api, body: dict) -> dict:
    """A partner's POST, the scoring task's work, then the partner's GET."""
    created = api.post("/api/v1/scores", body)
    assert created.status_code == 202, created.content
    dossier_id = created.json()["id"]
    assert dossier_score(dossier_id=dossier_id) is not None
    return api.get(f"/api/v1/scores/{dossier_id}").json()


# --- the sandbox never writes the shared company record ------------------------------------


@pytest.mark.django_db
def test_a_sandbox_partners_score_leaves_the_registrys_name_and_naf_code_on_the_shared_company(api, champion):
    Company.objects.create(siren=SIREN, vat="FR96552100554", name="DANONE", naf_code="10.51A")

    body = post_and_score(api, {"company": {"siren": SIREN}, "requested_amount": 5000})

    profile = sandbox_company(SIREN, with_bank=False)
    assert body["company"]["name"] == profile.name  # the sandbox partner sees its own invented company
    company = Company.objects.get(siren=SIREN)
    assert (company.name, company.naf_code) == ("DANONE", "10.51A")  # every other partner still sees the registry's
    dossier = Dossier.objects.get(pk=body["id"])
    assert (dossier.applicant_name, dossier.naf_code) == (profile.name, profile.naf_code)


@pytest.mark.django_db
def test_the_sandbox_gives_the_same_company_and_events_with_or_without_bank_data(api, champion):
    without = post_and_score(api, {"company": {"siren": SIREN}, "requested_amount": 5000})
    with_bank = post_and_score(api, {"company": {"siren": SIREN}, "bank_data": ["tok"], "requested_amount": 5000})

    assert without["company"]["name"] == with_bank["company"]["name"]
    snapshots = [Dossier.objects.get(pk=b["id"]).feature_snapshots.get().features for b in (without, with_bank)]
    for event in ("payment_delays_12m", "max_payment_delay_days", "open_insolvency_proceeding"):
        assert snapshots[0][event] == snapshots[1][event], event
    assert snapshots[0]["avg_balance_12m"] is None and snapshots[1]["avg_balance_12m"] is not None


@pytest.mark.parametrize("reference", ["CUST-7", "CUST-8", "CUST-42"])
def test_an_individuals_sandbox_events_do_not_depend_on_bank_data(reference):
    from scoring.model.synthetic import sandbox_individual

    assert sandbox_individual(reference, with_bank=True).events == sandbox_individual(reference, with_bank=False).events


# --- the sweeps back off ---------------------------------------------------------------------


def stalled_dossier(partner, minutes: int = 10) -> Dossier:
    """A pending dossier whose message never reached a worker, as if the broker was down at commit."""
    company = Company.objects.create(siren="732829320", vat="FR44732829320")
    dossier = Dossier.objects.create(partner=partner, company=company, requested_amount=Decimal(9000))
    Dossier.objects.filter(pk=dossier.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))
    return dossier


@pytest.mark.django_db
def test_the_sweep_enqueues_a_stalled_dossier_once_then_waits_twice_as_long_each_time(marketplace):
    dossier = stalled_dossier(marketplace.partner)
    stall = settings.SCORING_STALL_SECONDS

    assert dossiers_requeue_stalled() == [dossier.pk]
    assert dossiers_requeue_stalled() == []  # not every minute: its back-off has not passed
    dossier.refresh_from_db()
    assert dossier.requeues == 1
    first_wait = (dossier.requeue_at - timezone.now()).total_seconds()
    assert stall - 5 < first_wait <= stall

    Dossier.objects.filter(pk=dossier.pk).update(requeue_at=timezone.now() - timedelta(seconds=1))
    assert dossiers_requeue_stalled() == [dossier.pk]
    dossier.refresh_from_db()
    assert dossier.requeues == 2
    assert 2 * stall - 5 < (dossier.requeue_at - timezone.now()).total_seconds() <= 2 * stall


@pytest.mark.django_db
def test_the_back_off_never_exceeds_its_cap(marketplace, settings):
    settings.REQUEUE_MAX_SECONDS = 600
    dossier = stalled_dossier(marketplace.partner)
    Dossier.objects.filter(pk=dossier.pk).update(requeues=12)

    assert dossiers_requeue_stalled() == [dossier.pk]
    dossier.refresh_from_db()
    assert (dossier.requeue_at - timezone.now()).total_seconds() <= 600


@pytest.mark.django_db
def test_a_dossier_still_moving_is_not_swept(marketplace):
    dossier = stalled_dossier(marketplace.partner, minutes=0)
    assert dossiers_requeue_stalled() == []
    dossier.refresh_from_db()
    assert dossier.requeues == 0


@pytest.mark.django_db
def test_a_queued_bulk_job_is_swept_with_the_same_back_off(champion, analyst):
    job = BulkScoringJob.objects.create(
        segment="b2b", filename="lost.csv", input_csv=b"id\n1\n", rows_total=1, model_version=champion
    )
    BulkScoringJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    assert bulk_jobs_requeue_stalled() == [job.pk]
    assert bulk_jobs_requeue_stalled() == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_bulk_job_whose_message_the_broker_lost_is_run_by_the_periodic_sweep(
    champion, analyst, celery_worker_process
):
    # Stored without its task, as if the broker had been down when the upload committed.
    job = BulkScoringJob.objects.create(
        segment="b2b",
        filename="lost.csv",
        input_csv=csv_bytes(portfolio_rows(30)),
        rows_total=30,
        model_version=champion,
        created_by=analyst,
    )
    BulkScoringJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    deadline = time.monotonic() + 60
    while job.status not in {"done", "failed"} and time.monotonic() < deadline:
        time.sleep(0.5)
        job.refresh_from_db(fields=["status", "error"])
    assert job.status == "done", (job.error, celery_worker_process.log_path.read_text()[-3000:])
