"""What is already on file about a company: financial statements and negative events.

Statements (balance sheet and income items) come from the partner in the API
payload or from an analyst's upload: the public registry publishes only revenue
and net income. Negative events (payment delays, SEPA incidents, insolvency
proceedings) are recorded by partners, analysts or monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from scoring.sources.base import SourceResult
from scoring.statements import STATEMENT_FIGURES

STATEMENTS = "financial_statements"
EVENTS = "negative_events"


def statements_on_file(dossier: Any) -> SourceResult:
    """The company's latest statement that the dossier's partner may use.

    A statement a partner supplied is that partner's to use: it is confidential
    to the applicant's relationship with that lender, so another partner's dossier
    on the same company does not see it. Analysts' uploads serve every dossier.
    """
    from scoring.models import FinancialStatement

    visible = Q(source=FinancialStatement.Source.ANALYST)
    if dossier.partner_id:
        visible |= Q(source=FinancialStatement.Source.PARTNER, supplied_by_client__partner_id=dossier.partner_id)
    statement = FinancialStatement.objects.filter(visible, company_id=dossier.company_id).first()  # latest first
    return statement_result(statement)


def statement_result(statement: Any) -> SourceResult:
    """A statement on file (or None) as the source result the features are built from."""
    if statement is None:
        return SourceResult(STATEMENTS, "missing", timezone.now(), detail="no financial statements on file")
    figures = {
        name: float(getattr(statement, name)) for name in STATEMENT_FIGURES if getattr(statement, name) is not None
    }
    return SourceResult(
        STATEMENTS,
        "ok",
        statement.created_at,
        data=figures,
        detail=f"fiscal year ending {statement.fiscal_year_end.isoformat()}, {statement.get_source_display()}",
    )


def event_counts_12m(*, partner_id: Any, today: date | None = None, **subject: Any) -> dict[str, Any]:
    """Counts of one subject's negative events of the last 12 months: ``company_id=`` or ``individual_id=``.

    Only the events a dossier of ``partner_id`` may see: those nobody reported (BODACC, analysts)
    and those the partner reported itself, never another partner's reports.
    """
    from alerts.models import NegativeEvent
    from alerts.selectors import negative_events_visible_to

    today = today or timezone.localdate()
    Kind = NegativeEvent.Kind
    last_12_months = Q(occurred_on__gt=today - timedelta(days=365), occurred_on__lte=today)
    events = negative_events_visible_to(partner_id).filter(last_12_months, **subject)
    return events.aggregate(
        delays=Count("pk", filter=Q(kind=Kind.PAYMENT_DELAY)),
        max_delay=Max("days_late", filter=Q(kind=Kind.PAYMENT_DELAY)),
        sepa=Count("pk", filter=Q(kind=Kind.SEPA_INCIDENT)),
        insolvency=Count("pk", filter=Q(kind=Kind.INSOLVENCY_PROCEEDING)),
    )


def events_on_file(company_id: Any, today: date | None = None, *, partner_id: Any) -> SourceResult:
    """Counts of the company's negative events of the last 12 months that ``partner_id``'s dossiers may see."""
    return events_result(event_counts_12m(company_id=company_id, partner_id=partner_id, today=today))


def events_result(counts: dict[str, Any]) -> SourceResult:
    """A company's event counts (``event_counts_12m``) as the source result the features are built from."""
    data = {
        "payment_delays_12m": counts["delays"],
        "max_payment_delay_days": counts["max_delay"] or 0,
        "sepa_incidents_12m": counts["sepa"],
        "insolvency_proceeding": counts["insolvency"] > 0,
    }
    detail = (
        f"{data['payment_delays_12m']} payment delay(s), {data['sepa_incidents_12m']} SEPA incident(s), "
        f"{counts['insolvency']} insolvency proceeding(s) in 12 months"
    )
    return SourceResult(EVENTS, "ok", timezone.now(), data=data, detail=detail)


def on_file_for(dossiers: list[Any], today: date | None = None) -> dict[Any, tuple[SourceResult | None, SourceResult]]:
    """What is on file for many dossiers at once, in two queries: {dossier pk: (statements, events)}.

    The same rules as ``statements_on_file`` and ``events_on_file`` / ``individual_events_on_file``
    (a partner's statements and reports serve that partner's dossiers only); statements are None
    for an individual's dossier. The scoring batch reads this instead of two queries per dossier.
    """
    from alerts.models import NegativeEvent
    from scoring.models import FinancialStatement
    from scoring.sources.individuals import individual_events_result

    today = today or timezone.localdate()
    company_ids = {d.company_id for d in dossiers if d.company_id}
    individual_ids = {d.individual_id for d in dossiers if d.individual_id}
    partner_ids = {d.partner_id for d in dossiers if d.partner_id}
    statements: dict[Any, list[Any]] = {}
    if company_ids:
        visible = Q(source=FinancialStatement.Source.ANALYST) | Q(
            source=FinancialStatement.Source.PARTNER, supplied_by_client__partner_id__in=partner_ids
        )
        rows = FinancialStatement.objects.filter(visible, company_id__in=company_ids).select_related(
            "supplied_by_client"
        )
        for statement in rows:  # latest first (the model's ordering), per company
            statements.setdefault(statement.company_id, []).append(statement)
    events: list[dict[str, Any]] = []
    if company_ids or individual_ids:
        events = list(
            NegativeEvent.objects.filter(
                Q(company_id__in=company_ids) | Q(individual_id__in=individual_ids),
                occurred_on__gt=today - timedelta(days=365),
                occurred_on__lte=today,
            ).values("company_id", "individual_id", "kind", "days_late", "reported_by__partner_id")
        )
    found = {}
    for dossier in dossiers:
        counts = _counts_visible(events, dossier)
        if dossier.company_id:
            statement = next(
                (s for s in statements.get(dossier.company_id, []) if _statement_visible(s, dossier.partner_id)), None
            )
            found[dossier.pk] = (statement_result(statement), events_result(counts))
        else:
            found[dossier.pk] = (None, individual_events_result(counts))
    return found


def _statement_visible(statement: Any, partner_id: Any) -> bool:
    if statement.source != statement.Source.PARTNER:
        return True
    return partner_id is not None and statement.supplied_by_client.partner_id == partner_id


def _counts_visible(events: list[dict[str, Any]], dossier: Any) -> dict[str, Any]:
    """``event_counts_12m``'s counts for one dossier, from rows already read (same visibility rule)."""
    from alerts.models import NegativeEvent

    Kind = NegativeEvent.Kind
    subject = ("company_id", dossier.company_id) if dossier.company_id else ("individual_id", dossier.individual_id)
    mine = [
        e
        for e in events
        if e[subject[0]] == subject[1]
        and (e["reported_by__partner_id"] is None or e["reported_by__partner_id"] == dossier.partner_id)
    ]
    delays = [e["days_late"] for e in mine if e["kind"] == Kind.PAYMENT_DELAY]
    return {
        "delays": len(delays),
        "max_delay": max((d for d in delays if d is not None), default=None),
        "sepa": sum(e["kind"] == Kind.SEPA_INCIDENT for e in mine),
        "insolvency": sum(e["kind"] == Kind.INSOLVENCY_PROCEEDING for e in mine),
    }


def has_events(result: SourceResult) -> bool:
    data = result.data or {}
    return bool(data.get("payment_delays_12m") or data.get("sepa_incidents_12m") or data.get("insolvency_proceeding"))


# --- what analysts supplied in a challenge ---------------------------------------------------------

ANALYST = "analyst"


@dataclass(frozen=True)
class AnalystField:
    """A data point an analyst may read off a document and supply: the feature, and where the sources put it."""

    feature: str
    place: str  # the GatheredData attribute: company, bank or events
    key: str
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False


def _fields(*fields: AnalystField) -> dict[str, AnalystField]:
    return {f.feature: f for f in fields}


_BANK = (
    AnalystField("avg_balance_12m", "bank", "avg_balance_12m"),
    AnalystField("min_balance_12m", "bank", "min_balance_12m"),
    AnalystField("months_negative_balance_12m", "bank", "months_negative_balance_12m", 0, 12, integer=True),
    AnalystField("days_overdraft_12m", "bank", "days_overdraft_12m", 0, 366, integer=True),
    AnalystField("rejected_sepa_debits_12m", "bank", "rejected_sepa_debits_12m", 0, 1000, integer=True),
)
# Per segment, the data points a challenge may carry: read off a registry extract (Kbis), bank
# statements, payslips or a creditor's letter. Derived features (ratios) follow from these. A company's
# accounts (revenue and the ratios) are corrected with a whole statement, never figure by figure here.
ANALYST_FIELDS: dict[str, dict[str, AnalystField]] = {
    "b2b": _fields(
        AnalystField("company_age_years", "company", "age_years", 0, 300),
        AnalystField("headcount", "company", "headcount", 0, 1_000_000, integer=True),
        *_BANK,
        AnalystField("payment_delays_12m", "events", "payment_delays_12m", 0, 1000, integer=True),
        AnalystField("max_payment_delay_days", "events", "max_payment_delay_days", 0, 3650, integer=True),
    ),
    "b2c": _fields(
        AnalystField("monthly_income", "bank", "avg_monthly_inflows", 0),
        *_BANK,
        AnalystField("late_repayments_12m", "events", "late_repayments_12m", 0, 1000, integer=True),
        AnalystField("account_history_months", "bank", "oldest_account_months", 0, 1200, integer=True),
    ),
}


def analyst_value_error(field: AnalystField, value: Any) -> str:
    """What is wrong with a value an analyst supplied for ``field`` (empty when nothing is)."""
    from django.utils.translation import gettext as _

    try:
        number = float(value)
    except (TypeError, ValueError):
        return _("Enter a number.")
    if number != number or number in (float("inf"), float("-inf")):
        return _("Enter a number.")
    if field.integer and number != int(number):
        return _("Enter a whole number.")
    if field.minimum is not None and number < field.minimum:
        return _("Cannot be below %(minimum)s.") % {"minimum": f"{field.minimum:g}"}
    if field.maximum is not None and number > field.maximum:
        return _("Cannot be above %(maximum)s.") % {"maximum": f"{field.maximum:g}"}
    return ""


@dataclass(frozen=True)
class AnalystSupplied:
    """The data points a dossier's challenges supplied, the latest value of each, and the challenges they came from."""

    values: dict[str, Any]
    references: list[str]
    at: Any


def analyst_values_for(dossiers: list[Any]) -> dict[Any, AnalystSupplied]:
    """What the dossiers' challenges supplied, in one query: {dossier pk: supplied} for those that supplied any."""
    from dossiers.models import Challenge

    rows = (
        Challenge.objects.filter(dossier_id__in=[d.pk for d in dossiers])
        .exclude(feature_values={})
        .order_by("created_at", "pk")  # a later challenge's value replaces an earlier one's
        .values_list("dossier_id", "feature_values", "source_reference", "created_at")
    )
    merged: dict[Any, dict[str, Any]] = {}
    for dossier_id, values, reference, at in rows:
        entry = merged.setdefault(dossier_id, {"values": {}, "references": [], "at": at})
        entry["values"].update(values)
        entry["references"].append(reference)
        entry["at"] = at
    return {pk: AnalystSupplied(**entry) for pk, entry in merged.items()}


def analyst_values_apply(gathered: Any, segment: str, supplied: AnalystSupplied | None) -> None:
    """What analysts put on file, over what the sources gathered (provenance ``analyst``).

    A statement on file answers for the sandbox's "no published accounts": that flag goes.
    """
    if any(r.source == STATEMENTS and r.status == "ok" for r in gathered.results):
        gathered.results = [r for r in gathered.results if r.source != f"sandbox.{STATEMENTS}" or r.status == "ok"]
    fields = ANALYST_FIELDS.get(segment, {})
    values = {name: value for name, value in (supplied.values if supplied else {}).items() if name in fields}
    if not values:
        return
    for name, value in values.items():
        field = fields[name]
        setattr(gathered, field.place, {**(getattr(gathered, field.place) or {}), field.key: value})
    gathered.results.append(
        SourceResult(
            ANALYST,
            "ok",
            supplied.at,
            data=values,
            detail=f"{', '.join(sorted(values))} supplied by an analyst ({'; '.join(supplied.references)})"[:300],
        )
    )


# A source's flag as the catalogue names its features' source.
_CATALOGUE_SOURCE = {
    "registry": "company registry",
    "bodacc": "BODACC",
    "open_banking": "open banking",
    "financial_statements": "financial statements",
    "negative_events": "negative events",
    "events": "negative events",
}


def analyst_flags(
    flags: list[str], features: dict[str, Any], segment: str, supplied: AnalystSupplied | None
) -> list[str]:
    """The data flags left once the analyst filled a source's gaps: a source none of whose features is missing
    any more, the analyst having supplied some of them, is no longer reported missing."""
    from scoring.model.features import catalogue_for, is_missing

    names = set(supplied.values) & set(ANALYST_FIELDS.get(segment, {})) if supplied else set()
    if not names:
        return flags
    kept = []
    for flag in flags:
        label = _CATALOGUE_SOURCE.get(flag.partition(":")[2].removeprefix("sandbox."))
        fed = {f.name for f in catalogue_for(segment) if f.source == label}
        if fed & names and not any(is_missing(features.get(name)) for name in fed):
            continue
        kept.append(flag)
    return kept
