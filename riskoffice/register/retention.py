"""Retention as the register sets it: each active data category's period applied by the handler for its code.

A handler finds the rows (or files) older than the category's cutoff, counts them, and unless it is a dry run
deletes or anonymises them. Each real run writes one audit row per category with its counts. Handlers that
live in other parts of the product are imported when they run, so a missing one is reported, not fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from riskoffice.audit import Actor, audit_record

from .models import DataCategory

logger = logging.getLogger(__name__)

BATCH = 2000
GRANTED = ("accept", "guarantee")
# A credit is closed once repaid or written off; a defaulted credit is still being recovered.
CLOSED_OUTCOMES = ("repaid", "written_off")


@dataclass(frozen=True)
class Run:
    """What a handler needs: the category, its cutoff, the time of the run, whether it only counts, who acts."""

    category: DataCategory
    cutoff: datetime
    now: datetime
    dry_run: bool
    actor: Actor


@dataclass
class CategoryReport:
    code: str
    name: str
    action: str
    retention_days: int
    cutoff: datetime
    eligible: int = 0
    applied: int = 0
    note: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "retention_days": self.retention_days,
            "cutoff": self.cutoff.isoformat(),
            "action": self.action,
            "eligible": self.eligible,
            "applied": self.applied,
            "note": self.note,
            "error": self.error,
        }


Handler = Callable[[Run], tuple[int, int]]  # (eligible, applied)


def _delete_in_batches(queryset: models.QuerySet, *, dry_run: bool) -> tuple[int, int]:
    eligible = queryset.count()
    if dry_run or not eligible:
        return eligible, 0
    model = queryset.model
    deleted = 0
    while ids := list(queryset.values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return eligible, deleted


# --- handlers this app implements ----------------------------------------------------------------------


def bank_tokens(run: Run) -> tuple[int, int]:
    """Open-banking tokens of dossiers created before the cutoff: cleared to an empty list.

    The column is encrypted, so an empty list cannot be told apart in SQL: the dossiers are read, and only
    those since the last run's cutoff (older ones were cleared then).
    """
    from dossiers.models import Dossier

    dossiers = Dossier.objects.filter(created_at__lt=run.cutoff)
    if run.category.last_cutoff is not None:
        dossiers = dossiers.filter(created_at__gte=run.category.last_cutoff)
    holding = [dossier.pk for dossier in dossiers.only("pk", "bank_tokens_json").iterator(BATCH) if dossier.bank_tokens]
    if run.dry_run:
        return len(holding), 0
    for start in range(0, len(holding), BATCH):
        with transaction.atomic():
            Dossier.objects.filter(pk__in=holding[start : start + BATCH]).update(bank_tokens_json="[]")
    return len(holding), len(holding)


def webhook_deliveries(run: Run) -> tuple[int, int]:
    """Deliveries done before the cutoff: delivered, sent in a digest, or abandoned (failed, cancelled): deleted.

    Pending ones and events held for a digest are still to be sent: kept whatever their age.
    """
    from alerts.models import WebhookDelivery

    Status = WebhookDelivery.Status
    done = (Status.DELIVERED, Status.DIGESTED, Status.FAILED, Status.CANCELLED)
    return _delete_in_batches(
        WebhookDelivery.objects.filter(status__in=done, created_at__lt=run.cutoff), dry_run=run.dry_run
    )


def idempotency_keys(run: Run) -> tuple[int, int]:
    """Keys created before the cutoff and already expired (an unexpired key still guards a retry): deleted."""
    from riskoffice.models import IdempotencyKey

    return _delete_in_batches(
        IdempotencyKey.objects.filter(created_at__lt=run.cutoff, expires_at__lte=run.now), dry_run=run.dry_run
    )


def source_cache(run: Run) -> tuple[int, int]:
    """Cached source answers fetched before the cutoff and expired: deleted."""
    from scoring.models import SourceCache

    return _delete_in_batches(
        SourceCache.objects.filter(fetched_at__lt=run.cutoff, expires_at__lte=run.now), dry_run=run.dry_run
    )


def negative_events(run: Run) -> tuple[int, int]:
    """Negative events that occurred before the cutoff's date: deleted (scoring reads the last 12 months)."""
    from alerts.models import NegativeEvent

    return _delete_in_batches(
        NegativeEvent.objects.filter(occurred_on__lt=timezone.localdate(run.cutoff)), dry_run=run.dry_run
    )


# --- handlers that call other parts of the product ------------------------------------------------------


def _not_anonymised(dossiers: models.QuerySet) -> models.QuerySet:
    fields = {field.name for field in dossiers.model._meta.get_fields()}
    return dossiers.filter(anonymised_at__isnull=True) if "anonymised_at" in fields else dossiers


def _anonymise(run: Run, dossiers: models.QuerySet) -> tuple[int, int]:
    from riskoffice.subjects.erasure import anonymise_dossier

    dossiers = _not_anonymised(dossiers).order_by("created_at")
    eligible = dossiers.count()
    if run.dry_run or not eligible:
        return eligible, 0
    anonymised = 0
    for dossier in dossiers.iterator(BATCH):
        # Each dossier in its own transaction (anonymise_dossier's): a long run keeps what it did.
        if anonymise_dossier(dossier, actor=run.actor, reason=f"retention:{run.category.code}"):
            anonymised += 1
    return eligible, anonymised


def refused_applications(run: Run) -> tuple[int, int]:
    """Applications never granted (refused, referred and never decided, failed) created before the cutoff."""
    from dossiers.models import Dossier

    never_granted = Dossier.objects.filter(created_at__lt=run.cutoff, outcome__isnull=True).exclude(
        decision__in=GRANTED
    )
    return _anonymise(run, never_granted)


def credit_files(run: Run) -> tuple[int, int]:
    """Granted credits closed (repaid, written off) before the cutoff: the period runs from the last outcome."""
    from dossiers.models import Dossier

    closed = Dossier.objects.filter(
        Q(decision__in=GRANTED),
        outcome__status__in=CLOSED_OUTCOMES,
        outcome__occurred_on__lt=timezone.localdate(run.cutoff),
    )
    return _anonymise(run, closed)


def access_log(run: Run) -> tuple[int, int]:
    from riskoffice.accesslog.services import accesslog_purge_before

    count = accesslog_purge_before(run.cutoff, dry_run=run.dry_run)
    return count, 0 if run.dry_run else count


def bulk_files(run: Run) -> tuple[int, int]:
    from scoring.bulk.retention import expire_bulk_files

    count = expire_bulk_files(older_than=run.cutoff, dry_run=run.dry_run)
    return count, 0 if run.dry_run else count


HANDLERS: dict[str, Handler] = {
    "bank_tokens": bank_tokens,
    "webhook_deliveries": webhook_deliveries,
    "idempotency_keys": idempotency_keys,
    "source_cache": source_cache,
    "negative_events": negative_events,
    "refused_applications": refused_applications,
    "credit_files": credit_files,
    "access_log": access_log,
    "bulk_files": bulk_files,
}
# Categories stored inside another's rows: applied when those are (a dossier's aggregates go with the dossier).
APPLIED_WITH: dict[str, tuple[str, ...]] = {"bank_aggregates": ("refused_applications", "credit_files")}


def is_enforced(category: DataCategory) -> bool:
    """Whether the retention task applies the category's period (or the category asks for no action)."""
    code = category.code
    return category.action == DataCategory.Action.KEEP or code in HANDLERS or code in APPLIED_WITH


def _category_apply(category: DataCategory, *, now: datetime, dry_run: bool, actor: Actor) -> CategoryReport:
    cutoff = now - timedelta(days=category.retention_days)
    report = CategoryReport(category.code, category.name, category.action, category.retention_days, cutoff)
    handler = HANDLERS.get(category.code)
    if category.action == DataCategory.Action.KEEP:
        report.note = "kept: no automatic action"
    elif category.code in APPLIED_WITH:
        report.note = "applied with " + ", ".join(APPLIED_WITH[category.code])
    elif handler is None:
        report.error = f"no retention handler for the code {category.code!r}"
    else:
        try:
            report.eligible, report.applied = handler(
                Run(category=category, cutoff=cutoff, now=now, dry_run=dry_run, actor=actor)
            )
        except ImportError as exc:  # another part of the product has not provided its function
            report.error = f"handler unavailable: {exc}"
        except Exception as exc:  # one failing category must not stop the others
            logger.exception("retention of %s failed", category.code)
            report.error = f"{type(exc).__name__}: {exc}"
    if not dry_run:
        with transaction.atomic():
            audit_record(actor=actor, action="retention.applied", obj=category, after=report.as_dict())
            if not report.error:
                last = category.last_cutoff
                category.last_cutoff = cutoff if last is None else max(last, cutoff)
            category.last_applied_at = now
            category.save(update_fields=["last_cutoff", "last_applied_at"])
    return report


def retention_apply(
    *, dry_run: bool = False, actor: Actor | None = None, codes: list[str] | None = None
) -> list[CategoryReport]:
    """Apply every active category's period (or, on a dry run, only count); one report per category.

    ``codes`` limits the run to those categories (the command's ``--category``).
    """
    actor = actor or Actor.of_system("retention")
    now = timezone.now()
    categories = DataCategory.objects.filter(is_active=True).order_by("code")
    if codes:
        categories = categories.filter(code__in=codes)
    return [_category_apply(category, now=now, dry_run=dry_run, actor=actor) for category in categories]
