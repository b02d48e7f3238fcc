"""Monthly usage per API client: what partners requested, what was scored, and what is billable.

Counted from the dossiers and scores themselves rather than from counters, so the figures cannot drift
from what happened. A billable score is a score computed for a live (non-sandbox) partner's client;
idempotent replays create nothing and so count nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from riskoffice.models import ApiClient
from scoring.models import Score

from .models import Dossier


@dataclass
class UsageRow:
    month: date
    partner: str
    client_id: str
    sandbox: bool
    requested: int = 0
    failed: int = 0
    scores: int = 0

    @property
    def billable(self) -> int:
        return 0 if self.sandbox else self.scores


def _month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=timezone.get_current_timezone())


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def monthly_usage(first_month: date, last_month: date) -> list[UsageRow]:
    """One row per client and month from ``first_month`` to ``last_month`` (both included), months in order."""
    start, end = _month_start(first_month), _month_start(_next_month(last_month))
    requests = (
        Dossier.objects.filter(api_client__isnull=False, created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "api_client")
        .annotate(requested=Count("id"), failed=Count("id", filter=Q(status=Dossier.Status.FAILED)))
    )
    scores = (
        Score.objects.filter(dossier__api_client__isnull=False, created_at__gte=start, created_at__lt=end)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "dossier__api_client")
        .annotate(scores=Count("id"))
    )
    clients = {
        client.pk: client
        for client in ApiClient.objects.select_related("partner", "application").filter(
            pk__in={r["api_client"] for r in requests} | {s["dossier__api_client"] for s in scores}
        )
    }
    rows: dict[tuple[date, int], UsageRow] = {}

    def row(month: datetime, client_pk: int) -> UsageRow:
        key = (timezone.localtime(month).date(), client_pk)
        if key not in rows:
            client = clients[client_pk]
            rows[key] = UsageRow(
                month=key[0],
                partner=client.partner.name,
                client_id=client.application.client_id,
                sandbox=client.partner.is_sandbox,
            )
        return rows[key]

    for entry in requests:
        target = row(entry["month"], entry["api_client"])
        target.requested, target.failed = entry["requested"], entry["failed"]
    for entry in scores:
        row(entry["month"], entry["dossier__api_client"]).scores = entry["scores"]
    return sorted(rows.values(), key=lambda r: (r.month, r.partner, r.client_id))


USAGE_CSV_COLUMNS = ["month", "partner", "client_id", "mode", "requested", "scored", "failed", "billable_scores"]


def _as_text(value: str) -> str:
    """A name a spreadsheet must show, not run: a leading = + - @ would start a formula (CSV injection)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value


def usage_csv_row(row: UsageRow) -> list[str]:
    return [
        row.month.strftime("%Y-%m"),
        _as_text(row.partner),
        _as_text(row.client_id),
        "sandbox" if row.sandbox else "live",
        str(row.requested),
        str(row.scores),
        str(row.failed),
        str(row.billable),
    ]
