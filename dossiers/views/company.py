"""A company's page: every dossier of a SIREN, the open exposure, its scores over time, its events, its accounts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from alerts.views import NegativeEventForm
from riskoffice.roles import CAN_DECIDE, CAN_READ_DOSSIERS, has_any_role
from riskoffice.web import require_role
from scoring.models import CompanyScore, Score
from scoring.selectors import statements_for_user

from .. import limits, selectors
from ..models import Company, Dossier, Override

# A company with more dossiers than this shows its newest ones and says so; the exposure counts them all.
DOSSIERS_SHOWN = 100
TIMELINE_SHOWN = 200


# --- the score history chart ----------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34
SCALE_LOW, SCALE_HIGH = 0, 1000  # a company is scored on the B2B scale


@dataclass
class ChartPoint:
    x: str
    y: str
    when: datetime
    score: int
    band: str
    probability_of_default: float
    source: str
    version: int | None = None
    dossier: Dossier | None = None


@dataclass
class ChartSeries:
    name: str
    kind: str  # "dossier" or "portfolio"
    points: list[ChartPoint] = field(default_factory=list)

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass
class ScoreChart:
    series: list[ChartSeries]
    gridlines: list[dict[str, str]]
    ticks: list[dict[str, str]]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def points(self) -> list[ChartPoint]:
        return sorted((p for s in self.series for p in s.points), key=lambda p: p.when)


def _coordinate(value: float) -> str:
    # Attributes of an SVG take a dot, whatever the locale of the page.
    return f"{value:.1f}"


def score_chart(dossiers: list[Dossier], portfolio_scores: list[CompanyScore]) -> ScoreChart | None:
    """Each dossier's score versions over time, and the company's scores in portfolio re-scores, as SVG geometry."""
    raw: list[tuple[str, str, list[tuple[datetime, Score | CompanyScore, Dossier | None]]]] = []
    for dossier in reversed(dossiers):  # oldest first: the legend reads in the order things happened
        scores = sorted(getattr(dossier, "scores_newest_first", []), key=lambda s: s.created_at)
        if scores:
            name = _("Dossier %(id)s") % {"id": dossier.short_id}
            raw.append((name, "dossier", [(s.created_at, s, dossier) for s in scores]))
    runs = [(cs.run.finished_at or cs.run.started_at, cs, None) for cs in reversed(portfolio_scores)]
    if runs:
        raw.append((_("Portfolio re-scores"), "portfolio", runs))
    moments = [when for _name, _kind, points in raw for when, _s, _d in points]
    if not moments:
        return None
    first, last = min(moments), max(moments)
    span = (last - first).total_seconds()
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(when: datetime) -> float:
        # A single moment sits in the middle rather than on the axis.
        return LEFT + (plot_w / 2 if not span else plot_w * (when - first).total_seconds() / span)

    def y_of(score: int) -> float:
        clamped = min(max(score, SCALE_LOW), SCALE_HIGH)
        return TOP + plot_h * (1 - (clamped - SCALE_LOW) / (SCALE_HIGH - SCALE_LOW))

    series = []
    for name, kind, points in raw:
        series.append(
            ChartSeries(
                name=name,
                kind=kind,
                points=[
                    ChartPoint(
                        x=_coordinate(x_of(when)),
                        y=_coordinate(y_of(s.score)),
                        when=when,
                        score=s.score,
                        band=s.band,
                        probability_of_default=s.probability_of_default,
                        source=name,
                        version=getattr(s, "version", None) if kind == "dossier" else None,
                        dossier=dossier,
                    )
                    for when, s, dossier in points
                ],
            )
        )
    gridlines = [
        {"y": _coordinate(y_of(value)), "label": str(value), "label_y": _coordinate(y_of(value) + 4)}
        for value in range(SCALE_LOW, SCALE_HIGH + 1, 200)
    ]
    # The first and last days (and the middle one) under the axis, each day once; one day alone sits in the middle.
    ticks, seen = [], set()
    for when, anchor in ((first, "start"), (first + (last - first) / 2, "middle"), (last, "end")):
        label = date_format(timezone.localtime(when), "SHORT_DATE_FORMAT")
        if label not in seen:
            seen.add(label)
            ticks.append({"x": _coordinate(x_of(when)), "label": label, "anchor": anchor})
    if len(ticks) == 1:
        ticks = [{"x": _coordinate(LEFT + plot_w / 2), "label": ticks[0]["label"], "anchor": "middle"}]
    return ScoreChart(series=series, gridlines=gridlines, ticks=ticks)


# --- the events timeline --------------------------------------------------------------------------------------


@dataclass
class TimelineEvent:
    when: datetime
    kind: str  # received, scored, override, outcome, negative
    title: str
    detail: str = ""
    amount: Decimal | None = None
    dossier: Dossier | None = None

    @property
    def is_date_only(self) -> bool:
        return self.kind in {"outcome", "negative"}


def _moment(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _override_title(override: Override) -> str:
    change = {"from": override.get_from_decision_display(), "to": override.get_to_decision_display()}
    if override.status == Override.Status.PENDING:
        return _("Override awaiting approval: %(from)s → %(to)s") % change
    if override.status == Override.Status.REJECTED:
        return _("Override rejected: %(from)s → %(to)s") % change
    if override.status == Override.Status.WITHDRAWN:
        return _("Override withdrawn: %(from)s → %(to)s") % change
    return _("Decision overridden: %(from)s → %(to)s") % change


def timeline(dossiers: list[Dossier], overrides: list[Override], events: list[Any]) -> list[TimelineEvent]:
    """What happened to the company, newest first: requests, scores, overrides, outcomes, negative events."""
    by_id = {dossier.pk: dossier for dossier in dossiers}
    items: list[TimelineEvent] = []
    for dossier in dossiers:
        received = _("Request received") if dossier.origin == Dossier.Origin.API else _("Historical file")
        partner = str(dossier.partner) if dossier.partner_id else ""
        items.append(
            TimelineEvent(dossier.created_at, "received", received, partner, dossier.requested_amount, dossier)
        )
        for score in getattr(dossier, "scores_newest_first", []):
            items.append(
                TimelineEvent(
                    score.created_at,
                    "scored",
                    _("Scored (version %(version)s): %(score)s, band %(band)s, %(decision)s")
                    % {
                        "version": score.version,
                        "score": score.score,
                        "band": score.band,
                        "decision": score.get_decision_display(),
                    },
                    score.get_trigger_display(),
                    dossier=dossier,
                )
            )
        outcome = getattr(dossier, "outcome", None)
        if outcome is not None:
            items.append(
                TimelineEvent(
                    _moment(outcome.occurred_on),
                    "outcome",
                    _("Outcome: %(status)s") % {"status": outcome.get_status_display()},
                    dossier=dossier,
                )
            )
    for override in overrides:
        items.append(
            TimelineEvent(
                override.created_at,
                "override",
                _override_title(override),
                override.decided_by.get_username(),
                dossier=by_id.get(override.dossier_id),
            )
        )
    for event in events:
        details = []
        if event.days_late:
            details.append(_("%(days)s days late") % {"days": event.days_late})
        if event.reason_code:
            details.append(event.reason_code)
        if event.source:
            details.append(event.source)
        items.append(
            TimelineEvent(
                _moment(event.occurred_on), "negative", event.get_kind_display(), " · ".join(details), event.amount
            )
        )
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:TIMELINE_SHOWN]


# --- the page -------------------------------------------------------------------------------------------------


def _company_or_404(user: Any, siren: str) -> Company:
    company = selectors.companies_for_user(user).filter(siren=siren).first() if siren.isdigit() else None
    if company is None:
        raise Http404(_("No company with this SIREN is on file."))
    return company


@login_required
@require_safe
def company_detail(request: HttpRequest, siren: str) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    company = _company_or_404(request.user, siren)
    fetched = list(selectors.company_dossiers(request.user, company)[: DOSSIERS_SHOWN + 1])
    dossiers, more = fetched[:DOSSIERS_SHOWN], len(fetched) > DOSSIERS_SHOWN
    portfolio_scores = selectors.company_portfolio_scores(company)
    chart = score_chart(dossiers, portfolio_scores)
    rows = [(dossier, selectors.latest_score(dossier)) for dossier in dossiers]
    name = company.name or next((d.applicant_name for d in dossiers if d.applicant_name), "")
    return render(
        request,
        "dossiers/company.html",
        {
            "company": company,
            "name": name,
            "rows": rows,
            "more": more,
            "shown": DOSSIERS_SHOWN,
            "exposure": selectors.company_exposure(request.user, company),
            "chart": chart,
            "latest_portfolio_score": portfolio_scores[0] if portfolio_scores else None,
            "timeline": timeline(
                dossiers, selectors.company_overrides(company), selectors.company_negative_events(company)
            ),
            "statements": statements_for_user(request.user).filter(company=company)[:20],
            # Issue 11: the recommended limit's changes, and the analysts' form to record a negative event.
            "limit_history": limits.company_limit_history(company, limit=5),
            "event_form": NegativeEventForm() if has_any_role(request.user, CAN_DECIDE) else None,
        },
    )
