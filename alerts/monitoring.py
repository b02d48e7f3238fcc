"""Monitoring: re-scores of the monitored companies, what a re-score or a negative event tells whom, the watch list.

- **Monitored companies**: open exposure (a partner's dossier whose decision grants credit, no outcome yet) or
  a partner's watch (``/api/v1/monitoring``). **Interested partners**: those holding the exposure or watching.
- **A re-score** (a portfolio run of scope monitored, daily; of scope event, one company after a negative
  event) is checked in the transaction that stores each chunk (``rescore_detect``): a drop of
  ``MONITORING_DROP_POINTS`` → a critical alert and ``score.dropped``; else a band change → a warning and
  ``score.band_changed``; else a move of ``MONITORING_CHANGE_POINTS`` → ``score.changed`` only. One alert
  (``cscore:<id>``) and one event per company and re-score: the chunk's lease stores a chunk once.
- **A negative event** (partner API, analyst, BODACC) on a monitored company → in its transaction an alert
  (``event:<id>``; none for accounts published) and the ``company.*`` event; after commit a re-score of the
  company. A partner's report is confidential: its event, and the score events of the re-score it caused,
  go to that partner only.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from dossiers.models import Company, Dossier
from riskoffice.audit import Actor, audit_record
from riskoffice.models import ApiClient
from riskoffice.queueing import enqueue, enqueue_on_commit
from scoring.models import CompanyScore, PortfolioRun

from . import events as event_types
from .models import Alert, NegativeEvent, WatchedCompany
from .selectors import alert_dossiers, interested_partners, open_exposure_dossiers, open_exposure_score_ids
from .services import events_publish

logger = logging.getLogger(__name__)

Kind = NegativeEvent.Kind
DAILY_SYSTEM = "monitoring"  # the beat task: its runs' events say trigger "daily"
EVENT_SYSTEM = "monitoring_event"
# Negative events analysts are alerted to (critical); accounts published is news, not an alert.
ALERTED_KINDS = frozenset({Kind.INSOLVENCY_PROCEEDING, Kind.PAYMENT_DELAY, Kind.SEPA_INCIDENT, Kind.DEBT_COLLECTION})
RESCORED_KINDS = ALERTED_KINDS


# --- re-score runs ------------------------------------------------------------------------------------


def monitoring_run_start(*, user: AbstractBaseUser | None = None, system: str = DAILY_SYSTEM) -> PortfolioRun:
    """Start a re-score of the monitored companies (chunks enqueued after commit).

    Raises ``PortfolioUnavailable`` when no champion exists or a portfolio/monitored run is going.
    """
    from scoring.portfolio.runs import portfolio_run_start

    return portfolio_run_start(scope=PortfolioRun.Scope.MONITORED, user=user, system=system)


def monitoring_daily() -> PortfolioRun | None:
    """The beat's daily run; a run already going (or no champion) is logged and the day is skipped."""
    from scoring.portfolio.runs import PortfolioUnavailable

    try:
        run = monitoring_run_start()
    except PortfolioUnavailable as exc:
        logger.warning("Daily monitoring re-score skipped: %s", exc)
        return None
    logger.info("Daily monitoring re-score: run %s, %s companies", run.pk, run.companies_total)
    return run


def company_rescore(
    *,
    company: Company,
    event: NegativeEvent | None = None,
    user: AbstractBaseUser | None = None,
    system: str = EVENT_SYSTEM,
) -> PortfolioRun | None:
    """Re-score one company now, in this process, in a run of its own (scope event); None if it cannot be.

    A company without a scored dossier has no features to be re-scored from: logged, None. The run may go
    alongside a daily run. Its chunk is processed here; were this process to die, the sweep takes it over.
    """
    from scoring.portfolio.runs import PortfolioUnavailable, portfolio_chunk_process, portfolio_run_start

    try:
        run = portfolio_run_start(
            scope=PortfolioRun.Scope.EVENT,
            company_id=company.pk,
            trigger_event=event,
            user=user,
            system=system,
            enqueue_chunks=False,
        )
    except PortfolioUnavailable as exc:
        logger.info("Company %s not re-scored: %s", company.siren, exc)
        return None
    for chunk_id in run.chunks.values_list("pk", flat=True):
        portfolio_chunk_process(chunk_id=chunk_id)
    run.refresh_from_db()
    return run


def event_rescore(*, event_id: int) -> PortfolioRun | None:
    """The re-score a negative event asked for (a task, after commit); a second call finds the first run."""
    event = NegativeEvent.objects.select_related("company").filter(pk=event_id).first()
    if event is None or event.company is None:
        return None
    done = PortfolioRun.objects.filter(trigger_event=event).first()
    if done is not None:
        return done
    return company_rescore(company=event.company, event=event)


def event_rescores_requeue(*, now: Any = None) -> list[int]:
    """Periodic: re-send the re-score of a recent negative event whose message never arrived (broker down).

    An event of a kind that re-scores, on a monitored company with a scored dossier, recorded between a day
    and two minutes ago, and no run of scope event names it. A duplicate message finds the first run.
    """
    from django.db.models import Exists, OuterRef

    from .monitoring_tasks import rescore_after_event
    from .selectors import monitored_companies

    now = now or timezone.now()
    scored = Dossier.objects.filter(company_id=OuterRef("company_id"), status=Dossier.Status.SCORED, segment="b2b")
    due = (
        NegativeEvent.objects.filter(
            kind__in=RESCORED_KINDS,
            company__in=monitored_companies(),
            created_at__gte=now - timedelta(days=1),
            created_at__lt=now - timedelta(minutes=2),
        )
        .filter(Exists(scored))
        .exclude(Exists(PortfolioRun.objects.filter(trigger_event=OuterRef("pk"))))
        .order_by("created_at")
        .values_list("pk", flat=True)[:100]
    )
    sent = []
    for event_id in due:
        if not enqueue(rescore_after_event, event_id):
            break
        sent.append(event_id)
    return sent


# --- detection on a re-score ---------------------------------------------------------------------------

SCORE_ALERTS = {
    event_types.SCORE_DROPPED: (Alert.Kind.SCORE_DROPPED, Alert.Severity.CRITICAL),
    event_types.SCORE_BAND_CHANGED: (Alert.Kind.BAND_CHANGED, Alert.Severity.WARNING),
}


def score_change_type(*, score: int, previous_score: int | None, band: str, previous_band: str) -> str | None:
    """The event a re-score's move is: score.dropped, score.band_changed, score.changed, or None (no news)."""
    if previous_score is None:
        return None
    delta = score - previous_score
    if -delta >= settings.MONITORING_DROP_POINTS:
        return event_types.SCORE_DROPPED
    if previous_band and band != previous_band:
        return event_types.SCORE_BAND_CHANGED
    if abs(delta) >= settings.MONITORING_CHANGE_POINTS:
        return event_types.SCORE_CHANGED
    return None


def rescore_detect(*, run_id: int, rows: list[Any]) -> list[int]:
    """Alerts and events for a stored chunk's monitored companies whose score moved; in the caller's transaction.

    Bulk: one query for the interested partners, one for the rows' ids, one for the companies, one for the
    partners' dossier ids, one insert of alerts, one ``events_publish``. Returns the new alerts' ids.
    """
    moved = {}
    for row in rows:
        kind = score_change_type(
            score=row.score, previous_score=row.previous_score, band=row.band, previous_band=row.previous_band
        )
        if kind is not None:
            moved[row.company_id] = (row, kind)
    # A company a later run has already scored (an event re-score beside the daily run) was reported by it.
    later = CompanyScore.objects.filter(company_id__in=list(moved), run_id__gt=run_id).values_list("company_id")
    for (company_id,) in later if moved else ():
        moved.pop(company_id, None)
    if not moved:
        return []
    interested = interested_partners(moved)
    if not interested:
        return []
    run = PortfolioRun.objects.select_related("trigger_event__reported_by").get(pk=run_id)
    trigger = _run_trigger(run)
    # A re-score caused by a partner's confidential report tells that partner only.
    reporter = run.trigger_event.reported_by.partner_id if run.trigger_event and run.trigger_event.reported_by else None
    score_ids = dict(
        CompanyScore.objects.filter(run_id=run_id, company_id__in=interested).values_list("company_id", "pk")
    )
    companies = {
        pk: (siren, name)
        for pk, siren, name in Company.objects.filter(pk__in=interested).values_list("pk", "siren", "name")
    }
    dossier_ids = open_exposure_score_ids(interested)
    alerting = [company_id for company_id in interested if moved[company_id][1] in SCORE_ALERTS]
    alert_dossier = alert_dossiers(alerting)
    scored_at = timezone.now().isoformat()
    alerts, drops, events = [], [], []
    for company_id in sorted(interested):
        row, event_type = moved[company_id]
        cscore_id = score_ids[company_id]
        if event_type in SCORE_ALERTS:
            kind, severity = SCORE_ALERTS[event_type]
            alerts.append(
                Alert(
                    kind=kind,
                    severity=severity,
                    dedup_key=f"cscore:{cscore_id}",
                    company_id=company_id,
                    dossier_id=alert_dossier.get(company_id),
                    company_score_id=cscore_id,
                    previous_score=row.previous_score,
                    score=row.score,
                    previous_band=row.previous_band,
                    band=row.band,
                )
            )
        if event_type == event_types.SCORE_DROPPED:
            # The company's history shows the drop beside its other events (scoring never counts this kind).
            drops.append(
                NegativeEvent(
                    company_id=company_id,
                    kind=Kind.SCORE_DROP,
                    occurred_on=timezone.localdate(),
                    source="monitoring",
                    external_id=f"cscore:{cscore_id}",
                    details={"score": row.score, "previous_score": row.previous_score, "run_id": run_id},
                )
            )
        siren, name = companies[company_id]
        recipients = interested[company_id] if reporter is None else interested[company_id] & {reporter}
        for partner_id in sorted(recipients):
            data = {
                "company": {"siren": siren, "name": name},
                "score": row.score,
                "previous_score": row.previous_score,
                "delta": row.score - row.previous_score,
                "band": row.band,
                "previous_band": row.previous_band,
                "probability_of_default": round(float(row.probability_of_default), 6),
                "factors": row.factors or [],
                "trigger": trigger,
                "run_id": run_id,
                "scored_at": scored_at,
                "score_ids": dossier_ids.get((company_id, partner_id), []),
            }
            events.append((partner_id, event_type, data))
    created = Alert.objects.bulk_create(alerts)
    NegativeEvent.objects.bulk_create(drops)
    events_publish(events)
    alert_ids = [alert.pk for alert in created]
    _alerts_email(alert_ids)
    return alert_ids


def _run_trigger(run: PortfolioRun) -> str:
    if run.scope == PortfolioRun.Scope.EVENT and run.trigger_event_id:
        return "negative_event"
    if run.started_by_id is None and run.started_by_system == DAILY_SYSTEM:
        return "daily"
    return "manual"


def _alerts_email(alert_ids: list[int]) -> None:
    """Analysts hear of new alerts by e-mail, sent after commit (alerts/notify.py)."""
    from .notify import alerts_email_on_commit

    alerts_email_on_commit(alert_ids)


# --- negative events ----------------------------------------------------------------------------------


def negative_event_announce(*, event: NegativeEvent, rescore: bool = True) -> Alert | None:
    """A new negative event on file: the alert, the ``company.*`` event, and (after commit) the re-score.

    In the caller's transaction, which stored the event: a rollback leaves no alert and no delivery.
    - a company nobody monitors: nothing (its next application reads the event);
    - a monitored company: an alert (critical; none for accounts published), the event to the interested
      partners (to the reporting partner only when a partner reported it), a re-score of the company;
    - an individual (B2C) with open exposure: an alert for analysts; no partner event and no re-score (the
      portfolio re-score is B2B only).
    Returns the alert, if one was raised.
    """
    if event.company_id is None:
        return _individual_announce(event)
    interested = interested_partners([event.company_id]).get(event.company_id, set())
    if not interested:
        return None
    alert = None
    if event.kind in ALERTED_KINDS:
        dossier_id = alert_dossiers([event.company_id]).get(event.company_id)
        alert = _event_alert(event, dossier_id=dossier_id, company_id=event.company_id)
    event_type = event_types.NEGATIVE_EVENT_TYPES.get(event.kind)
    if event_type:
        reporter = _reporter_partner_id(event)
        recipients = interested if reporter is None else interested & {reporter}
        score_ids = open_exposure_score_ids([event.company_id])
        company = event.company
        events_publish(
            [
                (
                    partner_id,
                    event_type,
                    negative_event_data(event, company, score_ids.get((company.pk, partner_id), [])),
                )
                for partner_id in sorted(recipients)
            ]
        )
    if rescore and event.kind in RESCORED_KINDS:
        from .monitoring_tasks import rescore_after_event

        enqueue_on_commit(rescore_after_event, event.pk)
    return alert


def _individual_announce(event: NegativeEvent) -> Alert | None:
    if event.kind not in ALERTED_KINDS:
        return None
    exposed = open_exposure_dossiers().filter(individual_id=event.individual_id).order_by("-created_at", "-pk")
    dossier_id = exposed.values_list("pk", flat=True).first()
    if dossier_id is None:
        return None
    return _event_alert(event, dossier_id=dossier_id, individual_id=event.individual_id)


def _event_alert(event: NegativeEvent, *, dossier_id: Any, **subject: Any) -> Alert:
    """The critical alert a negative event raises (once: ``event:<id>``), e-mailed to analysts after commit."""
    alert = Alert.objects.create(
        kind=Alert.Kind.NEGATIVE_EVENT,
        severity=Alert.Severity.CRITICAL,
        dedup_key=f"event:{event.pk}",
        dossier_id=dossier_id,
        negative_event=event,
        event_kind=event.kind,
        **subject,
    )
    _alerts_email([alert.pk])
    return alert


def _reporter_partner_id(event: NegativeEvent) -> int | None:
    if event.reported_by_id is None:
        return None
    return ApiClient.objects.filter(pk=event.reported_by_id).values_list("partner_id", flat=True).first()


def event_source(event: NegativeEvent) -> str:
    """ "partner" for a partner's report (never which partner), else the source as recorded: bodacc, analyst."""
    return "partner" if event.source.startswith("partner:") else event.source


def negative_event_data(event: NegativeEvent, company: Company, score_ids: list[str]) -> dict[str, Any]:
    """A ``company.*`` event's data. An analyst's note stays in the back-office."""
    details = {key: value for key, value in (event.details or {}).items() if key != "note"}
    return {
        "company": {"siren": company.siren, "name": company.name},
        "event": {
            "id": event.pk,
            "kind": event.kind,
            "occurred_on": event.occurred_on.isoformat(),
            "source": event_source(event),
            "amount": None if event.amount is None else str(event.amount),
            "days_late": event.days_late,
            "reason_code": event.reason_code or None,
            "details": details,
        },
        "score_ids": score_ids,
    }


# --- the watch list (/api/v1/monitoring) ---------------------------------------------------------------


class CompanyNotScored(ValidationError):
    """A partner may watch only a company it has scored: a watch must not reveal another partner's applicant."""

    problem_status, problem_slug, problem_title = 422, "company-not-scored", "Company not scored"


class NotWatched(Exception):
    """The partner does not watch this company."""


@transaction.atomic
def watch_add(*, client: ApiClient, siren: str) -> tuple[WatchedCompany, bool]:
    """Watch a company the client's partner has scored; returns the watch and whether it is new."""
    company = Company.objects.filter(siren=siren).first()
    scored = (
        company is not None
        and Dossier.objects.filter(partner_id=client.partner_id, company=company, scores__isnull=False).exists()
    )
    if not scored:
        raise CompanyNotScored(
            {"company": f"You have not scored SIREN {siren}: request a score for it (POST /api/v1/scores) first."}
        )
    watch, created = WatchedCompany.objects.get_or_create(
        partner_id=client.partner_id, company=company, defaults={"created_by": client}
    )
    if created:
        audit_record(actor=Actor(client=client), action="watch.added", obj=watch, after={"siren": siren})
    return watch, created


@transaction.atomic
def watch_remove(*, client: ApiClient, siren: str) -> None:
    """Stop watching; open exposure on the company keeps it monitored. ``NotWatched`` when it was not watched."""
    watch = (
        WatchedCompany.objects.select_for_update().filter(partner_id=client.partner_id, company__siren=siren).first()
    )
    if watch is None:
        raise NotWatched(siren)
    audit_record(actor=Actor(client=client), action="watch.removed", obj=watch, before={"siren": siren})
    watch.delete()
