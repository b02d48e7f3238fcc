"""The scheduled BODACC check of the monitored SIRENs: new notices become negative events, once each.

For each monitored company, its BODACC notices published in the last ``MONITORING_BODACC_LOOKBACK_DAYS``
are read (every page first: an outage or a timeout — ``SOURCE_TIMEOUT_SECONDS`` per request — records
nothing for that SIREN, and the next day's check looks again). Then, in one short transaction per SIREN:

- an opening of a collective proceeding (sauvegarde, redressement, liquidation, plan de cession; see
  ``scoring.sources.bodacc``) → ``NegativeEvent(kind=insolvency_proceeding, source="bodacc")``;
- a deposit of accounts (``familleavis="dpc"``) → ``NegativeEvent(kind=accounts_published)``;

each keyed by the notice's BODACC id (``external_id``, unique per source: a notice seen twice is on file
once), and each new one announced (alert, ``company.*`` event, re-score: ``alerts.monitoring``).
Closures and other judgments are not events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from dossiers.models import Company
from riskoffice.audit import Actor, audit_record
from riskoffice.queueing import enqueue
from scoring.sources.base import SourceFailed
from scoring.sources.bodacc import OPENING_KINDS, bodacc_recent_notices

from .models import NegativeEvent
from .monitoring import RESCORED_KINDS, negative_event_announce
from .selectors import monitored_companies

logger = logging.getLogger(__name__)
SOURCE = "bodacc"
SYSTEM = Actor.of_system("bodacc_check")
Kind = NegativeEvent.Kind


@dataclass
class CheckReport:
    companies: int = 0
    recorded: list[int] = field(default_factory=list)  # new NegativeEvent ids
    failed: dict[str, str] = field(default_factory=dict)  # SIREN → why


def bodacc_check_enqueue() -> int:
    """Enqueue one batch task per MONITORING_BODACC_BATCH monitored companies; returns the number of tasks."""
    from .monitoring_tasks import bodacc_check_batch

    ids = list(monitored_companies().order_by("pk").values_list("pk", flat=True))
    size = max(1, settings.MONITORING_BODACC_BATCH)
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    for batch in batches:
        enqueue(bodacc_check_batch, batch)
    logger.info("BODACC check: %s companies in %s tasks", len(ids), len(batches))
    return len(batches)


def bodacc_check_companies(company_ids: list[int], *, today: date | None = None) -> CheckReport:
    """Check each company in turn (still monitored), each SIREN in its own transaction."""
    report = CheckReport()
    for pk, siren in monitored_companies().filter(pk__in=company_ids).order_by("pk").values_list("pk", "siren"):
        report.companies += 1
        try:
            report.recorded.extend(bodacc_check_company(company_id=pk, siren=siren, today=today))
        except SourceFailed as exc:
            logger.warning("BODACC check of %s failed, nothing recorded: %s", siren, exc)
            report.failed[siren] = str(exc)
    return report


def bodacc_check_company(*, company_id: int, siren: str, today: date | None = None) -> list[int]:
    """Read the SIREN's recent notices, then record the new ones in one transaction; their event ids."""
    today = today or timezone.localdate()
    since = (today - timedelta(days=settings.MONITORING_BODACC_LOOKBACK_DAYS)).isoformat()
    notices = bodacc_recent_notices(siren, since=since)  # SourceFailed: nothing read, nothing written
    wanted = [n for n in reversed(notices) if n["kind"] in OPENING_KINDS or n["kind"] == "accounts"]
    if not wanted:
        return []
    return _notices_record(company_id, wanted, today)


@transaction.atomic
def _notices_record(company_id: int, notices: list[dict[str, Any]], today: date) -> list[int]:
    known = set(
        NegativeEvent.objects.filter(source=SOURCE, external_id__in=[n["id"] for n in notices]).values_list(
            "external_id", flat=True
        )
    )
    company = Company.objects.get(pk=company_id)
    created: list[NegativeEvent] = []
    for notice in notices:
        if notice["id"] in known:
            continue
        kind = Kind.ACCOUNTS_PUBLISHED if notice["kind"] == "accounts" else Kind.INSOLVENCY_PROCEEDING
        try:
            with transaction.atomic():  # a concurrent check recorded it first: the constraint says so
                event = NegativeEvent.objects.create(
                    company=company,
                    kind=kind,
                    occurred_on=_date(notice.get("date"), today),
                    source=SOURCE,
                    external_id=notice["id"],
                    details=_details(notice),
                )
        except IntegrityError:
            continue
        known.add(notice["id"])
        audit_record(
            actor=SYSTEM,
            action="negative_event.found",
            obj=event,
            after={"siren": company.siren, "kind": kind, "bodacc_id": notice["id"], **_details(notice)},
        )
        created.append(event)
    rescored = [event for event in created if event.kind in RESCORED_KINDS]
    for event in created:
        # One re-score for the company, after its last new notice that scoring reads.
        negative_event_announce(event=event, rescore=bool(rescored) and event is rescored[-1])
    return [event.pk for event in created]


def _details(notice: dict[str, Any]) -> dict[str, Any]:
    common = {"bodacc_id": notice["id"], "published_on": notice.get("published", "")}
    if notice["kind"] == "accounts":
        return {**common, "deposit": notice.get("nature", ""), "closing_date": notice.get("closing_date", "")}
    return {
        **common,
        "tribunal": notice.get("tribunal", ""),
        "jugement": notice.get("nature", ""),
        "proceeding": notice["kind"],
    }


def _date(value: Any, default: date) -> date:
    try:
        parsed = date.fromisoformat(str(value)[:10])
    except ValueError:
        return default
    return min(parsed, default)  # never in the future
