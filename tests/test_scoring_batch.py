"""Scoring in batches (dossiers/batch.py): many dossiers a claim, one matrix, one transaction, every guarantee kept."""

from __future__ import annotations

import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import NegativeEvent, WebhookDelivery, WebhookEndpoint
from dossiers.batch import (
    WAKE_UP_KEY,
    dossiers_claim,
    dossiers_record_assessments,
    dossiers_requeue_stalled,
    dossiers_score_batch,
    scoring_backlog_measure,
    scoring_woken,
)
from dossiers.models import Company, Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.celery import app
from riskoffice.models import AuditEvent
from scoring.assessment import assess_many
from scoring.model.synthetic import sandbox_company, siren_from_number
from scoring.models import FinancialStatement, Score

from .conftest import ALL_SCOPES, broker_queue_length, make_partner_client, problem_of


def sirens(count: int, start: int = 10_000_000) -> list[str]:
    """Distinct valid SIRENs."""
    return [siren_from_number(start + i) for i in range(count)]


def pending(partner_client, count: int, *, start: int = 10_000_000, tokens: list[str] | None = None) -> list[Dossier]:
    return [
        dossier_create(
            partner=partner_client.partner,
            siren=siren,
            requested_amount=Decimal(20_000 + i),
            bank_tokens=tokens or [],
            actor=Actor(client=partner_client.api_client),
        )
        for i, siren in enumerate(sirens(count, start))
    ]


# --- one batch, many dossiers ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_batch_scores_every_pending_dossier_with_one_score_audit_row_and_event_each(champion, marketplace):
    WebhookEndpoint.objects.create(partner=marketplace.partner, url="https://hooks.example.com/r", secret="whsec_x")
    dossiers = pending(marketplace, 12)

    result = dossiers_score_batch()

    assert sorted(map(str, result.scored)) == sorted(str(d.pk) for d in dossiers)
    assert Dossier.objects.filter(status="scored", claimed_until__isnull=True).count() == 12
    assert Score.objects.count() == 12 and AuditEvent.objects.filter(action="dossier.scored").count() == 12
    deliveries = WebhookDelivery.objects.filter(event_type="score.completed")
    assert sorted(d.payload["data"]["id"] for d in deliveries) == sorted(str(d.pk) for d in dossiers)


@pytest.mark.django_db
def test_the_batchs_statements_do_not_grow_with_its_size(champion, marketplace):
    """Reads one query per kind, writes one insert per table: a batch of 30 costs what a batch of 3 costs."""
    pending(marketplace, 1, start=30_000_000)
    dossiers_score_batch()  # the process parses the champion's booster once; later batches reuse it
    pending(marketplace, 3)
    with CaptureQueriesContext(connection) as small:
        assert len(dossiers_score_batch().scored) == 3
    pending(marketplace, 30, start=20_000_000)
    with CaptureQueriesContext(connection) as large:
        assert len(dossiers_score_batch().scored) == 30
    assert len(large.captured_queries) == len(small.captured_queries) <= 25


@pytest.mark.django_db
def test_in_a_batch_each_dossier_gets_the_score_and_exact_contributions_it_gets_alone(champion, marketplace):
    alone = pending(marketplace, 6, tokens=["tok"])
    for dossier in alone:
        dossier_score(dossier_id=dossier.pk)
    together = pending(marketplace, 6, tokens=["tok"])  # the same companies again
    dossiers_score_batch()

    for one, other in zip(alone, together, strict=True):
        a, b = Score.objects.get(dossier=one), Score.objects.get(dossier=other)
        assert (a.score, a.band, a.decision) == (b.score, b.band, b.decision)
        assert a.probability_of_default == pytest.approx(b.probability_of_default, abs=1e-12)
        assert a.contributions == pytest.approx(b.contributions, abs=1e-9)


@pytest.mark.django_db
def test_in_a_batch_a_partners_statements_and_reports_serve_its_own_dossiers_only(champion, marketplace):
    rival = make_partner_client("Rival Lender", ALL_SCOPES)
    [siren] = sirens(1, start=40_000_000)
    mine = dossier_create(
        partner=marketplace.partner,
        siren=siren,
        requested_amount=Decimal(9000),
        bank_tokens=[],
        actor=Actor(client=marketplace.api_client),
    )
    theirs = dossier_create(
        partner=rival.partner,
        siren=siren,
        requested_amount=Decimal(9000),
        bank_tokens=[],
        actor=Actor(client=rival.api_client),
    )
    FinancialStatement.objects.create(
        company=mine.company,
        fiscal_year_end=date(2025, 12, 31),
        source="partner",
        supplied_by_client=rival.api_client,
        revenue=Decimal(5),
    )
    NegativeEvent.objects.create(
        company=mine.company,
        kind="payment_delay",
        occurred_on=timezone.localdate() - timedelta(days=10),
        days_late=75,
        source="partner",
        reported_by=rival.api_client,
    )
    assessed = assess_many([mine, theirs])

    assert assessed[theirs.pk].features["revenue"] == 5.0
    assert assessed[mine.pk].features["revenue"] != 5.0
    own_delay = sandbox_company(siren, with_bank=False).events["max_payment_delay_days"]
    assert assessed[theirs.pk].features["max_payment_delay_days"] == max(75, own_delay)
    assert assessed[mine.pk].features["max_payment_delay_days"] == own_delay


# --- claims: never two scorers on one dossier, a dead scorer's dossiers taken over ----------------------------


@pytest.mark.django_db
def test_a_claim_takes_the_named_dossier_first_then_the_oldest_and_never_one_already_held(marketplace):
    dossiers = pending(marketplace, 5)
    newest = dossiers[-1]

    first = dossiers_claim(first=newest.pk, limit=3)
    second = dossiers_claim(limit=10)

    assert first == [newest.pk, dossiers[0].pk, dossiers[1].pk]
    assert sorted(map(str, second)) == sorted(str(d.pk) for d in dossiers[2:4])
    assert dossiers_claim(limit=10) == []  # every one is held
    assert set(Dossier.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_a_dossier_held_by_a_dead_scorer_is_claimable_again_when_its_lease_passes(marketplace, champion):
    [dossier] = pending(marketplace, 1)
    assert dossiers_claim(limit=10) == [dossier.pk]  # ...and the scorer dies here
    assert dossiers_score_batch().scored == []

    Dossier.objects.filter(pk=dossier.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))

    assert dossiers_score_batch().scored == [dossier.pk]
    dossier.refresh_from_db()
    assert dossier.status == "scored" and dossier.attempts == 2


@pytest.mark.django_db
def test_storing_the_same_assessments_twice_writes_nothing_the_second_time(marketplace, champion):
    dossiers = pending(marketplace, 3)
    assessed = assess_many(dossiers)

    assert len(dossiers_record_assessments(assessed)) == 3
    assert dossiers_record_assessments(assessed) == []
    assert Score.objects.count() == 3 and AuditEvent.objects.filter(action="dossier.scored").count() == 3


@pytest.mark.django_db
def test_a_dossier_whose_assessment_raises_is_retried_alone_then_failed_and_the_rest_of_its_batch_is_scored(
    marketplace, champion, monkeypatch, settings
):
    from scoring import sources

    settings.SCORING_MAX_ATTEMPTS = 2
    good = pending(marketplace, 3)
    [bad] = pending(marketplace, 1, start=30_000_000)
    real = sources.gather_sandbox

    def gather(*, siren, bank_tokens):
        if siren == bad.company.siren:
            raise RuntimeError("a bug in a connector")
        return real(siren=siren, bank_tokens=bank_tokens)

    monkeypatch.setattr(sources, "gather_sandbox", gather)

    result = dossiers_score_batch()
    assert sorted(map(str, result.scored)) == sorted(str(d.pk) for d in good)
    assert result.retrying == [bad.pk]
    bad.refresh_from_db()
    assert bad.status == "pending" and bad.claimed_until > timezone.now()  # held through its back-off

    Dossier.objects.filter(pk=bad.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert dossiers_score_batch(first=bad.pk).failed == [bad.pk]
    bad.refresh_from_db()
    assert bad.status == "failed" and "after 2 attempts (RuntimeError)" in bad.status_detail


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_scores_the_dossiers_a_dead_worker_held_within_seconds(champion, marketplace, celery_worker_process):
    """Held by a scorer that died (claimed, never stored, its messages gone): the lease passes, the sweep sends them."""
    company = Company.objects.create(siren="552100554", vat="FR96552100554")
    dossiers = [
        Dossier.objects.create(partner=marketplace.partner, company=company, requested_amount=Decimal(9000))
        for _ in range(4)
    ]
    # Claimed at once by the dead scorer (the conftest worker runs with a 3 s lease, 5 s stall, 2 s sweep).
    dossiers_claim(limit=100)
    started = time.monotonic()
    while time.monotonic() - started < 60:  # lease + stall + one sweep: about 7 s; a loaded machine takes longer
        if not Dossier.objects.filter(status="pending").exists():
            break
        time.sleep(0.2)
    assert not Dossier.objects.filter(status="pending").exists(), celery_worker_process.log_path.read_text()[-3000:]
    assert all(Score.objects.filter(dossier=d).count() == 1 for d in dossiers)


# --- back-pressure ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_while_the_backlog_is_older_than_its_limit_new_score_requests_get_503_and_nothing_is_recorded(
    api, champion, settings
):
    settings.SCORING_BACKLOG_MAX_SECONDS = 30
    body = {"company": {"siren": "552100554"}, "requested_amount": 5000}
    assert api.post("/api/v1/scores", body).status_code == 202
    Dossier.objects.update(created_at=timezone.now() - timedelta(seconds=45))  # nobody took it up for 45 s
    assert scoring_backlog_measure() == 45

    refused = api.post("/api/v1/scores", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert refused.status_code == 503
    assert problem_of(refused)["type"] == "urn:riskoffice:problem:scoring-backlog"
    assert 5 <= int(refused["Retry-After"]) <= 60
    assert Dossier.objects.count() == 1

    dossier_score(dossier_id=Dossier.objects.get().pk)
    assert scoring_backlog_measure() == 0
    assert api.post("/api/v1/scores", body, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 202  # the key was released


# --- wake-ups: about one message per batch, never a dossier left without one ------------------------------


@pytest.mark.django_db(transaction=True)
def test_new_dossiers_send_one_wake_up_while_one_is_outstanding_and_a_new_one_once_a_worker_took_it(
    marketplace, champion, settings
):
    settings.SCORING_WAKE_UP_SECONDS = 60  # outstanding until taken, however slow this machine is today
    app.control.purge()
    cache.delete(WAKE_UP_KEY)
    pending(marketplace, 10)
    assert broker_queue_length("scoring") == 1  # ten dossiers, one message: a worker will take them all

    scoring_woken()  # the worker that received it: clears the flag, then claims
    assert Dossier.objects.filter(status="scored").count() == 10
    pending(marketplace, 1, start=60_000_000)
    assert broker_queue_length("scoring") == 2  # committed after the worker's claim: it sent its own


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_batch_is_full_wakes_another_before_scoring(marketplace, champion, settings):
    settings.SCORING_BATCH_SIZE = 3
    settings.SCORING_WAKE_UP_SECONDS = 60
    pending(marketplace, 5)
    app.control.purge()
    cache.delete(WAKE_UP_KEY)

    assert len(scoring_woken().scored) == 3
    assert broker_queue_length("scoring") == 1  # the other two are someone else's batch
    assert len(scoring_woken().scored) == 2
    assert broker_queue_length("scoring") == 1  # a batch that was not full wakes nobody


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("dossiers.tasks.score_pending", "scoring"),
        ("dossiers.tasks.score_dossier", "scoring"),
        ("alerts.tasks.deliver_webhook", "webhooks"),
        ("scoring.tasks.run_bulk_job", "bulk"),
        ("scoring.portfolio.rescore_chunk", "bulk"),
        ("scoring.model.tasks.retrain_model", "bulk"),
        ("scoring.model.tasks.shadow_score_many", "bulk"),
        ("scoring.model.tasks.drift_check_daily", "celery"),
        ("riskoffice.tasks.heartbeat", "celery"),
    ],
)
def test_each_kind_of_work_has_its_queue_and_a_worker_without_q_consumes_them_all(task, queue):
    """Machines can be given to one kind of work (`-Q scoring`); a plain worker serves every queue."""
    assert app.amqp.router.route({}, task)["queue"].name == queue
    assert queue in {q.name for q in app.conf.task_queues}


@pytest.mark.django_db(transaction=True)
def test_the_sweep_wakes_one_worker_per_batch_of_stalled_dossiers_not_one_message_each(marketplace, settings):
    """Dossiers whose message was lost: counted one by one (their back-off), woken up a batch at a time."""
    settings.SCORING_BATCH_SIZE = 2
    company = Company.objects.create(siren="552100554", vat="FR96552100554")
    stalled = [
        Dossier.objects.create(partner=marketplace.partner, company=company, requested_amount=Decimal(9000))
        for _ in range(3)
    ]
    Dossier.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    app.control.purge()

    assert sorted(map(str, dossiers_requeue_stalled())) == sorted(str(d.pk) for d in stalled)
    assert broker_queue_length("scoring") == 2  # three dossiers, batches of two: two wake-ups
