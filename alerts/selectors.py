"""Alerts reads, scoped: a partner's API client sees its partner's webhook endpoints and their deliveries only.

Negative events are read for scoring through ``negative_events_visible_to``: what a partner
reported counts only in that partner's dossiers, what nobody reported (BODACC, analysts) in all.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from riskoffice.models import ApiClient
from riskoffice.roles import CAN_READ_DOSSIERS, SENIOR_ANALYST, has_any_role

from .models import Alert, NegativeEvent, WatchedCompany, WebhookDelivery, WebhookEndpoint


def alerts_for_user(user: Any) -> QuerySet[Alert]:
    """The alerts a back-office user may read: the team's inbox, for everyone who reads dossiers; none otherwise.

    A model's drift is for senior analysts, who own the model: others do not see those alerts.
    """
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return Alert.objects.none()
    if not has_any_role(user, {SENIOR_ANALYST}):
        return Alert.objects.exclude(kind=Alert.Kind.MODEL_DRIFT)
    return Alert.objects.all()


def webhook_endpoints_for_client(client: ApiClient) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(partner_id=client.partner_id).order_by("created_at", "pk")


def webhook_deliveries_of(endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    """An endpoint's delivery log, newest first (the id breaks ties); ``prefetch_related("attempt_log")``."""
    return WebhookDelivery.objects.filter(endpoint=endpoint).order_by("-created_at", "-id")


def negative_events_visible_to(partner_id: Any) -> QuerySet[NegativeEvent]:
    """The events a dossier of ``partner_id`` (None: a dossier without a partner) may be scored from.

    A partner's report is confidential to its relationship with the applicant, like the financial
    statements it supplies (scoring.sources.on_file.statements_on_file).
    """
    visible = Q(reported_by__isnull=True)
    if partner_id is not None:
        visible |= Q(reported_by__partner_id=partner_id)
    return NegativeEvent.objects.filter(visible)


def negative_events_reported_by(client: ApiClient) -> QuerySet[NegativeEvent]:
    return NegativeEvent.objects.filter(reported_by=client).select_related("company", "individual")


# --- monitoring ---

# Monitored companies: open exposure (a partner's dossier whose decision in force grants credit, no outcome
# yet) or a partner's watch. Interested partners of a company: those holding that exposure or that watch.


def open_exposure_dossiers() -> QuerySet[Any]:
    """A partner's dossiers that grant credit and are not settled (dossiers.selectors' rule); filter by subject."""
    from dossiers.models import Dossier
    from dossiers.selectors import GRANTED_DECISIONS

    return Dossier.objects.filter(partner__isnull=False, decision__in=GRANTED_DECISIONS, outcome__isnull=True)


def monitored_companies() -> QuerySet[Any]:
    """Every monitored company: two indexed semi-joins, never a scan of the dossiers per company."""
    from django.db.models import Exists, OuterRef

    from dossiers.models import Company

    return Company.objects.filter(
        Exists(open_exposure_dossiers().filter(company_id=OuterRef("pk")))
        | Exists(WatchedCompany.objects.filter(company_id=OuterRef("pk")))
    )


def interested_partners(company_ids: Any) -> dict[int, set[int]]:
    """``{company id: {partner id, …}}`` for the given companies, in one query (exposure ∪ watches).

    A company nobody holds exposure on nor watches is absent: it is not monitored.
    """
    ids = list(company_ids)
    if not ids:
        return {}
    # No ORDER BY in either side: SQLite refuses one in the parts of a UNION (both models have a Meta ordering).
    exposure = open_exposure_dossiers().filter(company_id__in=ids).order_by().values_list("company_id", "partner_id")
    watches = WatchedCompany.objects.filter(company_id__in=ids).order_by().values_list("company_id", "partner_id")
    found: dict[int, set[int]] = {}
    for company_id, partner_id in exposure.union(watches):
        found.setdefault(company_id, set()).add(partner_id)
    return found


def open_exposure_score_ids(company_ids: Any) -> dict[tuple[int, int], list[str]]:
    """``{(company id, partner id): [dossier ids]}``: each partner's own open dossiers, oldest first (one query)."""
    ids = list(company_ids)
    found: dict[tuple[int, int], list[str]] = {}
    if not ids:
        return found
    rows = (
        open_exposure_dossiers()
        .filter(company_id__in=ids)
        .order_by("created_at", "pk")
        .values_list("company_id", "partner_id", "pk")
    )
    for company_id, partner_id, pk in rows:
        found.setdefault((company_id, partner_id), []).append(str(pk))
    return found


def alert_dossiers(company_ids: Any) -> dict[int, Any]:
    """``{company id: dossier id}``: what an alert opens, the latest dossier with open exposure, else the latest."""
    from dossiers.models import Dossier

    ids = list(company_ids)
    chosen: dict[int, tuple[bool, Any, Any]] = {}
    if not ids:
        return {}
    open_ids = set(open_exposure_dossiers().filter(company_id__in=ids).values_list("pk", flat=True))
    for company_id, pk, created_at in Dossier.objects.filter(company_id__in=ids).values_list(
        "company_id", "pk", "created_at"
    ):
        key = (pk in open_ids, created_at)
        if company_id not in chosen or key > chosen[company_id][:2]:
            chosen[company_id] = (pk in open_ids, created_at, pk)
    return {company_id: value[2] for company_id, value in chosen.items()}


def watched_companies_for_client(client: ApiClient) -> QuerySet[WatchedCompany]:
    """The client's partner's watch list, each row annotated with whether the partner holds open exposure."""
    from django.db.models import Exists, OuterRef

    exposure = open_exposure_dossiers().filter(partner_id=client.partner_id, company_id=OuterRef("company_id"))
    return (
        WatchedCompany.objects.filter(partner_id=client.partner_id)
        .select_related("company")
        .annotate(has_open_exposure=Exists(exposure))
    )
