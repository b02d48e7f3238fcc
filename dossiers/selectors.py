"""Dossier reads, scoped: every lookup a view or endpoint makes starts from one of these.

Turn an id into a dossier with ``riskoffice.scoping.get_or_404(dossiers_for_…(who), pk)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import Avg, Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Floor, TruncMonth
from django.utils import timezone

from alerts.models import NegativeEvent
from riskoffice.models import ApiClient
from riskoffice.roles import CAN_READ_DOSSIERS, has_any_role
from riskoffice.subjects.models import SubjectRequest
from riskoffice.subjects.review import human_reviews_prefetch
from scoring.models import DEFAULT_OUTCOMES, CompanyScore, Score

from .models import Company, Decision, Dossier, Individual, Override


def _scores_with_versions() -> QuerySet[Score]:
    """Scores with the model and policy versions they name, without the model's booster bytes.

    A booster is 100 kB to a few MB: joined into every score row, a page of 50 dossiers read
    megabytes and each poll of GET /api/v1/scores/{id} one booster more, to show a version label.
    """
    return Score.objects.select_related("model_version", "policy_version").defer("model_version__booster_ubj")


def _with_latest_score(queryset: QuerySet[Dossier]) -> QuerySet[Dossier]:
    """Everything the score's representation shows, in two queries whatever the number of dossiers.

    The outcome is joined (a left join on its unique dossier id): GET /api/v1/scores/{id}, which
    partners poll, would otherwise spend a query of its own on it.
    """
    scores = _scores_with_versions().order_by("-created_at")
    return queryset.select_related("company", "individual", "partner", "outcome").prefetch_related(
        Prefetch("scores", queryset=scores, to_attr="scores_newest_first")
    )


def dossiers_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dossier]:
    """Back-office staff with a role see every dossier; anyone else sees none."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return Dossier.objects.none()
    # The human reviews: the page and the API say whether the decision is final (riskoffice/subjects/review.py).
    return _with_latest_score(Dossier.objects.all()).prefetch_related(human_reviews_prefetch())


def dossiers_for_client(client: ApiClient) -> QuerySet[Dossier]:
    """A partner's API client sees its partner's dossiers only."""
    return _with_latest_score(Dossier.objects.filter(partner_id=client.partner_id)).prefetch_related(
        human_reviews_prefetch()
    )


def latest_score(dossier: Dossier) -> Score | None:
    prefetched = getattr(dossier, "scores_newest_first", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return _scores_with_versions().filter(dossier=dossier).order_by("-created_at").first()


# --- the queue --------------------------------------------------------------------------------------------

GRANTED_DECISIONS = (Decision.ACCEPT, Decision.GUARANTEE)
# A tab's count stops here: beyond it the tab reads "1000+", and no count ever reads the whole table.
TAB_COUNT_CAP = 1000


def dossiers_readable(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dossier]:
    """The dossiers a user may read, bare: no joins, no prefetch (aggregates and counts start here)."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return Dossier.objects.none()
    return Dossier.objects.all()


def _latest_score_of_dossier(field: str) -> Subquery:
    """One column of the dossier's latest score (score_dossier_latest_idx), for a filter or an ordering."""
    newest = Score.objects.filter(dossier_id=OuterRef("pk")).order_by("-created_at").values(field)[:1]
    return Subquery(newest)


def _awaiting_approval() -> Exists:
    """An override of the dossier waits for a second, senior analyst (override_one_pending_per_dossier)."""
    return Exists(Override.objects.filter(dossier_id=OuterRef("pk"), status=Override.Status.PENDING))


def _human_review_open(field: str) -> Subquery:
    """A column of the dossier's open human review (subjectrequest_one_open_review_per_dossier: at most one)."""
    reviews = SubjectRequest.objects.filter(
        dossier_id=OuterRef("pk"), kind=SubjectRequest.Kind.HUMAN_REVIEW, status=SubjectRequest.Status.OPEN
    )
    return Subquery(reviews.values(field)[:1])


def siren_in(text: str) -> str | None:
    """The SIREN a search names, typed with or without spaces ("552 100 554"), else None."""
    digits = re.sub(r"[\s.]", "", text)
    return digits if re.fullmatch(r"[0-9]{9}", digits) else None


def _search(text: str) -> Q:
    """A SIREN, a name (the applicant's or the company's), an individual's reference or the start of a dossier id."""
    siren = siren_in(text)
    if siren:
        return Q(company__siren=siren)
    condition = (
        Q(applicant_name__icontains=text)
        | Q(company__name__icontains=text)
        # References are encrypted and found by keyed digest, so only whole references match; an analyst's
        # typing is forgiven its case by also trying the text in upper and lower case (references like "C-1042").
        | Q(individual__in=Individual.objects.matching_references({text, text.upper(), text.lower()}))
    )
    # The start of a dossier number as the pages print it (hyphens included): at least four characters.
    id_prefix = text.lower()
    if re.fullmatch(r"[0-9a-f][0-9a-f-]{3,35}", id_prefix):
        condition |= Q(id__startswith=id_prefix)
    return condition


@dataclass(frozen=True)
class QueueFilters:
    """What an analyst narrows the queue to; every field is optional. ``tab`` is one of QUEUE_TABS."""

    search: str = ""
    tab: str = ""
    status: str = ""
    recommendation: str = ""
    decision: str = ""
    band: str = ""
    segment: str = ""
    partner_id: int | None = None
    awaiting_approval: bool = False
    mine: bool = False
    human_review: bool = False  # an open human review (GDPR Art. 22), soonest deadline first
    received_from: date | None = None
    received_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    sort: str = "-received"


QUEUE_TABS = ("all", "pending", "to_decide", "awaiting_approval", "mine", "failed")

# Whitelisted orderings: the key a link carries, the columns it sorts on. The dossier id breaks ties, so
# that a page boundary never shows a dossier twice or skips one.
QUEUE_SORTS: dict[str, tuple] = {
    "-received": (F("created_at").desc(), F("id").desc()),
    "received": (F("created_at").asc(), F("id").asc()),
    # Age is the time since received: the youngest first is the newest first.
    "age": (F("created_at").desc(), F("id").desc()),
    "-age": (F("created_at").asc(), F("id").asc()),
    "amount": (F("requested_amount").asc(), F("created_at").desc(), F("id").desc()),
    "-amount": (F("requested_amount").desc(), F("created_at").desc(), F("id").desc()),
    "score": (F("latest_score").asc(nulls_last=True), F("created_at").desc(), F("id").desc()),
    "-score": (F("latest_score").desc(nulls_last=True), F("created_at").desc(), F("id").desc()),
}


def _tab_condition(tab: str, user: AbstractBaseUser) -> Q | Exists | None:
    if tab == "pending":
        return Q(status=Dossier.Status.PENDING)
    if tab == "failed":
        return Q(status=Dossier.Status.FAILED)
    if tab == "awaiting_approval":
        return _awaiting_approval()
    if tab == "to_decide":
        return Q(decision=Decision.REFER) | Q(_awaiting_approval())
    if tab == "mine":
        return Q(assigned_to_id=user.pk)
    return None


def _queue_base(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Dossier]:
    """The queue holds live requests: the historical book (origin "history") is for training, not for work."""
    return dossiers_readable(user).exclude(origin=Dossier.Origin.HISTORY)


def queue_dossiers(user: AbstractBaseUser | AnonymousUser, filters: QueueFilters) -> QuerySet[Dossier]:
    """The user's queue narrowed by ``filters`` and in their order, with everything a row shows joined or prefetched."""
    dossiers = _with_latest_score(_queue_base(user)).select_related("assigned_to")
    conditions: list[Q | Exists] = []
    if filters.search:
        conditions.append(_search(filters.search))
    tab = _tab_condition(filters.tab, user)
    if tab is not None:
        conditions.append(tab)
    if filters.status:
        conditions.append(Q(status=filters.status))
    if filters.decision:
        conditions.append(Q(decision=filters.decision))
    if filters.segment:
        conditions.append(Q(segment=filters.segment))
    if filters.partner_id is not None:
        conditions.append(Q(partner_id=filters.partner_id))
    if filters.awaiting_approval:
        conditions.append(_awaiting_approval())
    if filters.mine:
        conditions.append(Q(assigned_to_id=user.pk))
    if filters.received_from:
        conditions.append(Q(created_at__gte=_start_of_day(filters.received_from)))
    if filters.received_to:
        conditions.append(Q(created_at__lt=_start_of_day(filters.received_to + timedelta(days=1))))
    if filters.amount_min is not None:
        conditions.append(Q(requested_amount__gte=filters.amount_min))
    if filters.amount_max is not None:
        conditions.append(Q(requested_amount__lte=filters.amount_max))
    if filters.recommendation:
        dossiers = dossiers.annotate(latest_decision=_latest_score_of_dossier("decision"))
        conditions.append(Q(latest_decision=filters.recommendation))
    if filters.band:
        dossiers = dossiers.annotate(latest_band=_latest_score_of_dossier("band"))
        conditions.append(Q(latest_band=filters.band))
    sort = filters.sort if filters.sort in QUEUE_SORTS else "-received"
    if sort.endswith("score"):
        dossiers = dossiers.annotate(latest_score=_latest_score_of_dossier("score"))
    ordering = QUEUE_SORTS[sort]
    if filters.human_review:  # the deadline first: the review due soonest leads, the chosen sort breaks ties
        dossiers = dossiers.annotate(review_due_at=_human_review_open("due_at"))
        conditions.append(Q(review_due_at__isnull=False))
        ordering = (F("review_due_at").asc(), *ordering)
    return dossiers.filter(*conditions).order_by(*ordering)


def queue_tab_counts(user: AbstractBaseUser | AnonymousUser, *, cap: int | None = None) -> dict[str, int]:
    """How many dossiers each tab holds, up to ``cap`` (``cap + 1`` means "more than cap"), in one query.

    ``cap`` defaults to TAB_COUNT_CAP.

    Each tab is counted over at most ``cap + 1`` of its rows (a LIMIT inside a scalar subquery), so the
    cost is bounded by the cap whatever the size of the book, where COUNT(*) would read every dossier.
    """
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return dict.fromkeys(QUEUE_TABS, 0)
    cap = cap or TAB_COUNT_CAP
    base = _queue_base(user)
    parts, params = [], []
    for tab in QUEUE_TABS:
        condition = _tab_condition(tab, user)
        rows = (base if condition is None else base.filter(condition)).order_by().values("pk")[: cap + 1]
        sql, tab_params = rows.query.sql_with_params()
        # The ORM's own SQL with its parameters kept apart, and a tab name from QUEUE_TABS: nothing of the request.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS tab_{tab})")  # noqa: S608
        params.extend(tab_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        counts = cursor.fetchone()
    return dict(zip(QUEUE_TABS, counts, strict=True))


def _start_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


# --- a company ----------------------------------------------------------------------------------------------


def companies_for_user(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Company]:
    """Companies are seen by back-office staff (who read every dossier); by no one else."""
    if not has_any_role(user, CAN_READ_DOSSIERS):
        return Company.objects.none()
    return Company.objects.all()


def company_dossiers(user: AbstractBaseUser | AnonymousUser, company: Company) -> QuerySet[Dossier]:
    """Every dossier of the company the user may read, newest first, the historical book included."""
    return dossiers_for_user(user).filter(company=company).order_by("-created_at", "-id")


@dataclass(frozen=True)
class Exposure:
    """What is granted to a company and not yet settled: requests whose decision in force granted credit, no outcome."""

    siren: str
    amount: Decimal
    open_requests: int


def company_exposure(user: AbstractBaseUser | AnonymousUser, company: Company | None) -> Exposure | None:
    """The open exposure on a company, in one aggregate query (dossier_company_created_idx); None for no company.

    An outcome closes the exposure (repaid, defaulted or written off): the loss then lives in the outcome's
    amounts. Until then the amount granted is the amount requested, the only one on file.
    """
    if company is None:
        return None
    totals = (
        dossiers_readable(user)
        .filter(company=company, decision__in=GRANTED_DECISIONS, outcome__isnull=True)
        .aggregate(amount=Sum("requested_amount"), open_requests=Count("pk"))
    )
    return Exposure(siren=company.siren, amount=totals["amount"] or Decimal(0), open_requests=totals["open_requests"])


def company_portfolio_scores(company: Company, *, limit: int = 50) -> list[CompanyScore]:
    """The company's scores in portfolio re-scores, newest run first (cscore_company_latest_idx)."""
    return list(
        CompanyScore.objects.filter(company=company)
        .select_related("run")
        .only("score", "band", "probability_of_default", "run__started_at", "run__finished_at")
        .order_by("-run_id")[:limit]
    )


def company_negative_events(company: Company, *, limit: int = 100) -> list[NegativeEvent]:
    """Negative events on file about the company, most recent first."""
    return list(NegativeEvent.objects.filter(company=company).order_by("-occurred_on", "-id")[:limit])


def company_overrides(company: Company, *, limit: int = 200) -> list[Override]:
    """Overrides of the company's dossiers, with who made and reviewed them, newest first."""
    return list(
        Override.objects.filter(dossier__company=company)
        .select_related("decided_by", "reviewed_by")
        .order_by("-created_at")[:limit]
    )


# --- the portfolio ------------------------------------------------------------------------------------------


def _latest_scores() -> QuerySet[Score]:
    """Each dossier's latest score: no later version of the same dossier (score_unique_version_per_dossier)."""
    newer = Score.objects.filter(dossier_id=OuterRef("dossier_id"), version__gt=OuterRef("version"))
    return Score.objects.filter(~Exists(newer))


def _portfolio_dossiers(user: AbstractBaseUser | AnonymousUser, since: datetime, segment: str) -> QuerySet[Dossier]:
    dossiers = dossiers_readable(user).filter(origin=Dossier.Origin.API, created_at__gte=since)
    return dossiers.filter(segment=segment) if segment else dossiers


def portfolio_decisions_by_month(
    user: AbstractBaseUser | AnonymousUser, *, since: datetime, segment: str = ""
) -> list[dict[str, Any]]:
    """Live dossiers received since ``since``, counted by month, status, decision in force and override."""
    return list(
        _portfolio_dossiers(user, since, segment)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "status", "decision", "decision_overridden")
        .annotate(n=Count("pk"))
        .order_by("month")
    )


def portfolio_recommendations_by_month(
    user: AbstractBaseUser | AnonymousUser, *, since: datetime, segment: str = ""
) -> list[dict[str, Any]]:
    """The latest score's recommendation of live dossiers received since ``since``, counted by month."""
    dossiers = _portfolio_dossiers(user, since, segment)
    return list(
        _latest_scores()
        .filter(dossier__in=dossiers.values("pk"))
        .annotate(month=TruncMonth("dossier__created_at"))
        .values("month", "decision")
        .annotate(n=Count("pk"))
        .order_by("month")
    )


SCORE_BUCKET = 50


def portfolio_score_distribution(
    user: AbstractBaseUser | AnonymousUser, *, since: datetime, segment: str = ""
) -> list[dict[str, Any]]:
    """Latest scores of live dossiers received since ``since``, counted by band and 50-point bucket."""
    dossiers = _portfolio_dossiers(user, since, segment)
    return list(
        _latest_scores()
        .filter(dossier__in=dossiers.values("pk"))
        .annotate(bucket=Floor(F("score") / SCORE_BUCKET) * SCORE_BUCKET)
        .values("band", "bucket")
        .annotate(n=Count("pk"), pd_sum=Sum("probability_of_default"))
        .order_by("bucket", "band")
    )


def portfolio_defaults_by_band(user: AbstractBaseUser | AnonymousUser, *, segment: str = "") -> dict[str, Any]:
    """Outcomes known, defaults and the average predicted PD by band of the latest score, every origin included.

    The historical book (origin "history") is where most outcomes are: it is counted, and its share shown.
    Dossiers with an outcome but no score (the seeded book has none) are counted apart, without a band.
    """
    dossiers = dossiers_readable(user).filter(outcome__isnull=False)
    if segment:
        dossiers = dossiers.filter(segment=segment)
    defaulted = Q(dossier__outcome__status__in=DEFAULT_OUTCOMES)
    by_band = list(
        _latest_scores()
        .filter(dossier__in=dossiers.values("pk"))
        .values("band")
        .annotate(
            known=Count("pk"),
            defaults=Count("pk", filter=defaulted),
            predicted_pd=Avg("probability_of_default"),
            history=Count("pk", filter=Q(dossier__origin=Dossier.Origin.HISTORY)),
        )
        .order_by("band")
    )
    unscored = dossiers.filter(~Exists(Score.objects.filter(dossier_id=OuterRef("pk")))).aggregate(
        known=Count("pk"),
        defaults=Count("pk", filter=Q(outcome__status__in=DEFAULT_OUTCOMES)),
        history=Count("pk", filter=Q(origin=Dossier.Origin.HISTORY)),
    )
    return {"by_band": by_band, "unscored": unscored}
