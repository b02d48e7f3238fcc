"""What survives what: duplicate tasks, lost broker messages."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from dossiers.models import Company, Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from scoring.models import Score


@pytest.mark.django_db
def test_scoring_the_same_dossier_twice_writes_one_score(champion, marketplace):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal(5000),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    first = dossier_score(dossier_id=dossier.pk)
    second = dossier_score(dossier_id=dossier.pk)
    assert first is not None and second is None
    assert Score.objects.filter(dossier=dossier).count() == 1


@pytest.mark.django_db
def test_a_dossier_without_a_champion_fails_with_a_reason_instead_of_hanging(reference_data, marketplace):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal(5000),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is None
    dossier.refresh_from_db()
    assert dossier.status == "failed" and "champion" in dossier.status_detail


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_dossier_whose_message_the_broker_lost_is_scored_by_the_periodic_sweep(
    champion, marketplace, celery_worker_process
):
    # Written without its task, as if the broker had been down at commit time.
    company = Company.objects.create(siren="732829320", vat="FR44732829320")
    dossier = Dossier.objects.create(partner=marketplace.partner, company=company, requested_amount=Decimal(9000))
    Dossier.objects.filter(pk=dossier.pk).update(updated_at=timezone.now() - timedelta(minutes=10))

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dossier.refresh_from_db()
        if dossier.status != "pending":
            break
        time.sleep(0.5)
    assert dossier.status == "scored", celery_worker_process.log_path.read_text()[-3000:]
    assert Score.objects.filter(dossier=dossier).count() == 1
