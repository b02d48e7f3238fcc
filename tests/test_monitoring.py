"""Monitoring re-scores: the monitored companies re-scored daily, drops and band changes detected once, told to whom.

A monitored company is one a partner holds open exposure on (a granted, unsettled dossier) or watches.
The previous score a re-score compares with is the dossier's (no run yet): a test sets it where it wants
the move to be, and the re-score recomputes the real score from the features on file.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from alerts.events import SCORE_BAND_CHANGED, SCORE_CHANGED, SCORE_DROPPED
from alerts.models import Alert, NegativeEvent, WatchedCompany, WebhookDelivery, WebhookEndpoint
from alerts.monitoring import monitoring_run_start
from alerts.monitoring_tasks import daily_rescore
from alerts.selectors import interested_partners, monitored_companies
from dossiers.models import Company, Dossier, Outcome
from scoring.model.synthetic import generate_portfolio, siren_from_number
from scoring.models import CompanyScore, PortfolioRun, Score
from scoring.portfolio import runs
from scoring.portfolio.tasks import rescore_chunk

from .conftest import ALL_SCOPES, PartnerClient, make_partner_client
from .test_portfolio import score_dossier

SCOPES = ALL_SCOPES
BOOKS = [company.features() for company, _, _ in generate_portfolio(12, seed=23)]


# --- a monitored book -----------------------------------------------------------------------------------


def scored_dossier(
    n: int, champion: Any, *, partner: Any = None, decision: str = "accept", company: Company | None = None
) -> Dossier:
    """A company (number ``n``) with a dossier of ``partner`` scored by the champion, with ``decision`` in force."""
    company = (
        company
        or Company.objects.get_or_create(siren=siren_from_number(30_000 + n), defaults={"name": f"Company {n}"})[0]
    )
    dossier = Dossier.objects.create(
        company=company,
        partner=partner,
        requested_amount=Decimal(20000),
        status=Dossier.Status.SCORED,
        decision=decision,
    )
    score_dossier(dossier, BOOKS[n % len(BOOKS)], champion, collected_at=timezone.now() - timedelta(days=10))
    return dossier


def previous_score_set(dossier: Dossier, *, points: int = 0, band: str | None = None) -> Score:
    """Make the score the lender last saw ``points`` higher than what the features give (and its band ``band``)."""
    score = Score.objects.get(dossier=dossier)
    score.score += points
    score.band = band or score.band
    score.save(update_fields=["score", "band"])
    return score


def other_band(band: str) -> str:
    return "B" if band != "B" else "C"


def endpoint_for(partner: Any) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(partner=partner, url="http://127.0.0.1:9/hooks", secret="whsec_dGVzdA==")


def deliveries(event_type: str | None = None, partner: Any = None) -> list[WebhookDelivery]:
    found = WebhookDelivery.objects.all()
    if event_type:
        found = found.filter(event_type=event_type)
    if partner is not None:
        found = found.filter(endpoint__partner=partner)
    return list(found.order_by("pk"))


def run_all_chunks(run: PortfolioRun) -> PortfolioRun:
    for chunk_id in run.chunks.order_by("sequence").values_list("pk", flat=True):
        rescore_chunk(chunk_id)
    run.refresh_from_db()
    return run


def monitored_rescore(**kwargs: Any) -> PortfolioRun:
    return run_all_chunks(monitoring_run_start(**kwargs))


def monitored_lender(name: str) -> PartnerClient:
    """A partner with every scope and one webhook endpoint subscribed to everything."""
    partner_client = make_partner_client(name, SCOPES)
    endpoint_for(partner_client.partner)
    return partner_client


@pytest.fixture
def lender(db) -> PartnerClient:
    return monitored_lender("Monitored Lender")


@pytest.fixture
def second_lender(db) -> PartnerClient:
    return monitored_lender("Second Lender")


# --- who is monitored, who is interested ------------------------------------------------------------------


@pytest.mark.django_db
def test_monitored_companies_are_open_exposure_or_watched_and_interested_partners_are_theirs(
    champion, lender, second_lender
):
    exposed = scored_dossier(0, champion, partner=lender.partner)
    watched = scored_dossier(1, champion, partner=second_lender.partner, decision="decline")
    WatchedCompany.objects.create(partner=second_lender.partner, company=watched.company)
    settled = scored_dossier(2, champion, partner=lender.partner)
    Outcome.objects.create(dossier=settled, status=Outcome.Status.REPAID, occurred_on=timezone.localdate())
    declined = scored_dossier(3, champion, partner=lender.partner, decision="decline")
    no_partner = scored_dossier(4, champion, partner=None)
    scored_dossier(0, champion, partner=second_lender.partner, decision="guarantee", company=exposed.company)

    assert set(monitored_companies()) == {exposed.company, watched.company}
    everyone = [d.company_id for d in (exposed, watched, settled, declined, no_partner)]
    assert interested_partners(everyone) == {
        exposed.company_id: {lender.partner.pk, second_lender.partner.pk},
        watched.company_id: {second_lender.partner.pk},
    }


@pytest.mark.django_db
def test_the_daily_run_rescores_exactly_the_monitored_companies(champion, lender):
    """Unmonitored companies between monitored ones (by id) are neither counted nor scored."""
    first = scored_dossier(0, champion, partner=lender.partner)
    between = [scored_dossier(n, champion, partner=lender.partner, decision="decline") for n in (1, 2, 3)]
    last = scored_dossier(4, champion, partner=lender.partner, decision="refer")
    WatchedCompany.objects.create(partner=lender.partner, company=last.company)

    daily_rescore()  # what beat runs at MONITORING_DAILY_AT
    run = run_all_chunks(PortfolioRun.objects.get())

    assert (run.scope, run.started_by_system, run.status) == ("monitored", "monitoring", "done")
    assert run.companies_total == 2 and run.rows_done == 2
    assert set(CompanyScore.objects.filter(run=run).values_list("company_id", flat=True)) == {
        first.company_id,
        last.company_id,
    }
    assert not CompanyScore.objects.filter(company__in=[d.company for d in between]).exists()


@pytest.mark.django_db
def test_the_daily_run_is_skipped_and_logged_while_another_run_is_going(champion, lender, caplog):
    scored_dossier(0, champion, partner=lender.partner)
    going = runs.portfolio_run_start(chunk_size=5, system="tests")

    with caplog.at_level(logging.WARNING, logger="alerts.monitoring"):
        daily_rescore()

    assert list(PortfolioRun.objects.all()) == [going]
    assert "Daily monitoring re-score skipped" in caplog.text and f"run {going.pk}" in caplog.text


def test_the_daily_schedule_is_a_paris_time_or_off():
    from riskoffice import settings as project_settings

    schedule = project_settings._monitoring_schedule("MONITORING_DAILY_AT", "03:45")
    assert (schedule.hour, schedule.minute) == ({3}, {45})
    assert project_settings._monitoring_schedule("MONITORING_DAILY_AT", "off") is None
    with pytest.raises(ImproperlyConfigured, match="MONITORING_DAILY_AT must be HH:MM"):
        project_settings._monitoring_schedule("MONITORING_DAILY_AT", "25:00")
    assert project_settings.CELERY_TIMEZONE == "Europe/Paris"
    assert project_settings.CELERY_BEAT_SCHEDULE["monitoring-daily-rescore"]["task"] == daily_rescore.name


# --- detection ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_drop_makes_exactly_one_alert_and_one_event_per_interested_partner(champion, lender, second_lender):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    other = scored_dossier(0, champion, partner=second_lender.partner, company=dossier.company)
    WatchedCompany.objects.create(partner=second_lender.partner, company=dossier.company)
    before = previous_score_set(dossier, points=60)
    Score.objects.filter(dossier=other).update(score=before.score, band=before.band)

    run = monitored_rescore(system="monitoring")

    cscore = CompanyScore.objects.get(run=run, company=dossier.company)
    assert cscore.delta == -60 and cscore.factors  # explained: an event is produced for it
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.dedup_key) == ("score_dropped", "critical", f"cscore:{cscore.pk}")
    assert (alert.previous_score, alert.score, alert.company_score) == (before.score, cscore.score, cscore)
    assert alert.dossier in (dossier, other)
    first, second = deliveries(SCORE_DROPPED, lender.partner), deliveries(SCORE_DROPPED, second_lender.partner)
    assert len(first) == 1 and len(second) == 1 and len(deliveries()) == 2
    data = first[0].payload["data"]
    assert data == {
        "company": {"siren": dossier.company.siren, "name": dossier.company.name},
        "score": cscore.score,
        "previous_score": before.score,
        "delta": -60,
        "band": cscore.band,
        "previous_band": before.band,
        "probability_of_default": round(cscore.probability_of_default, 6),
        "factors": cscore.factors,
        "trigger": "daily",
        "run_id": run.pk,
        "scored_at": data["scored_at"],
        "score_ids": [str(dossier.pk)],
    }
    assert first[0].payload["type"] == SCORE_DROPPED
    assert second[0].payload["data"]["score_ids"] == [str(other.pk)]  # each partner its own dossiers
    # The drop is in the company's history of events, which scoring never counts.
    drop = NegativeEvent.objects.get(kind=NegativeEvent.Kind.SCORE_DROP)
    assert (drop.company, drop.source, drop.external_id) == (dossier.company, "monitoring", f"cscore:{cscore.pk}")


@pytest.mark.django_db
def test_storing_the_same_chunk_twice_alerts_once(champion, lender):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    previous_score_set(dossier, points=60)
    run = monitoring_run_start(system="tests")
    chunk = run.chunks.get()
    lease = runs.portfolio_chunk_claim(chunk_id=chunk.pk)
    result = runs.portfolio_chunk_compute(lease)

    assert runs.portfolio_chunk_store(lease, result) is True
    assert runs.portfolio_chunk_store(lease, result) is False  # the chunk is done: the lease no longer holds it
    rescore_chunk(chunk.pk)  # a redelivered task message

    assert Alert.objects.count() == 1 and len(deliveries(SCORE_DROPPED)) == 1
    assert CompanyScore.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_a_band_change_without_a_drop_is_a_warning_and_score_band_changed(champion, lender):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    before = previous_score_set(dossier, points=5, band=other_band(Score.objects.get(dossier=dossier).band))

    run = monitored_rescore(system="command:monitor")

    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.previous_band, alert.band) == (
        "band_changed",
        "warning",
        before.band,
        CompanyScore.objects.get(run=run).band,
    )
    (delivery,) = deliveries()
    assert delivery.event_type == SCORE_BAND_CHANGED
    assert delivery.payload["data"]["delta"] == -5 and delivery.payload["data"]["trigger"] == "manual"


@pytest.mark.django_db
def test_a_small_move_is_score_changed_only_and_no_alert(champion, lender, settings):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    previous_score_set(dossier, points=-15)  # the score rises 15 points
    steady = scored_dossier(1, champion, partner=lender.partner)
    previous_score_set(steady, points=settings.MONITORING_CHANGE_POINTS - 1)  # below the threshold

    monitored_rescore()

    assert not Alert.objects.exists()
    (delivery,) = deliveries()
    assert delivery.event_type == SCORE_CHANGED and delivery.payload["data"]["delta"] == 15
    assert delivery.payload["data"]["company"]["siren"] == dossier.company.siren


@pytest.mark.django_db
def test_an_unmonitored_company_whose_score_drops_tells_nobody(champion, lender):
    declined = scored_dossier(0, champion, partner=lender.partner, decision="decline")
    previous_score_set(declined, points=80)

    run = run_all_chunks(runs.portfolio_run_start(chunk_size=10, system="tests"))  # the whole portfolio

    assert CompanyScore.objects.get(run=run).delta == -80
    assert not Alert.objects.exists() and not WebhookDelivery.objects.exists()
    assert not NegativeEvent.objects.exists()


@pytest.mark.django_db
def test_manage_monitor_now_rescores_here_and_says_what_it_did(champion, lender):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    previous_score_set(dossier, points=60)
    out = io.StringIO()

    call_command("monitor", "--now", "--inline", stdout=out)

    run = PortfolioRun.objects.get()
    assert f"Run {run.pk}: 1 monitored companies in 1 chunks." in out.getvalue()
    assert f"Run {run.pk} done: 1 re-scored, 1 moved." in out.getvalue() and "1 new alert(s)." in out.getvalue()

    out = io.StringIO()
    call_command("monitor", "--now", "--company", dossier.company.siren, stdout=out)
    single = PortfolioRun.objects.latest("pk")
    assert (single.scope, single.companies_total, single.trigger_event) == ("event", 1, None)
    assert f"{dossier.company.siren} re-scored" in out.getvalue() and "0 new alert(s)." in out.getvalue()

    out = io.StringIO()
    call_command("monitor", stdout=out)
    assert "1 monitored companies (0 watches); 1 alerts not acknowledged." in out.getvalue()
