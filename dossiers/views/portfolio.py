"""The portfolio page: volumes, decision mix, approval and override rates, scores, and defaults against predicted PD.

Every figure comes from a handful of aggregate queries (``dossiers.selectors.portfolio_*``), whatever the size of
the book. Charts are inline SVG drawn here as geometry (no script, no chart library), each with its table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from riskoffice.roles import CAN_READ_DOSSIERS
from riskoffice.web import require_role
from scoring.models import Decision, Segment
from scoring.policy.scale import BANDS

from .. import selectors
from ..models import Dossier

MONTHS = 12
GRANTED = {Decision.ACCEPT, Decision.GUARANTEE}
DECIDED = GRANTED | {Decision.REFUSE}  # "refer" hands the dossier to an analyst: nothing is decided yet

# Fills with at least 3:1 contrast on white (WCAG 1.4.11); the legend and each table say the same in words.
COLOURS = {
    Decision.ACCEPT: "#1a7f4b",
    Decision.GUARANTEE: "#8a5a00",
    Decision.REFUSE: "#b3261e",
    Decision.REFER: "#3730a3",
    "none": "#5b6477",
    "volume": "#1f5eff",
    "override": "#7c3aed",
    "predicted": "#5b6477",
}


# --- charts -----------------------------------------------------------------------------------------------------

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 40


def _c(value: float) -> str:
    # SVG attributes take a dot whatever the page's locale: formatted here, never by the template.
    return f"{value:.1f}"


@dataclass
class Bar:
    x: str
    y: str
    width: str
    height: str
    fill: str
    category: str
    series: str
    value: float | None
    percent: bool


@dataclass
class BarChart:
    key: str
    title: str
    desc: str
    bars: list[Bar]
    labels: list[dict[str, str]]
    gridlines: list[dict[str, str]]
    legend: list[tuple[str, str]]
    width: int = WIDTH
    height: int = HEIGHT


GRIDLINES = 4


def _nice_ceiling(value: float, percent: bool) -> float:
    """The top of the axis: the next 5 % for a rate; for a count, four round whole steps (1, 2, 5 × 10ⁿ)."""
    if percent:
        return min(1.0, max(math.ceil(value * 20) / 20, 0.05))
    step_wanted = max(value / GRIDLINES, 1)
    magnitude = 10 ** math.floor(math.log10(step_wanted))
    step = next(m * magnitude for m in (1, 2, 5, 10) if step_wanted <= m * magnitude)
    return GRIDLINES * step


def bar_chart(
    *,
    key: str,
    title: str,
    desc: str,
    categories: list[str],
    series: list[tuple[str, str, list[float | None]]],
    stacked: bool = False,
    percent: bool = False,
) -> BarChart:
    """Bars per category, one per series side by side (or stacked), scaled to a round maximum."""
    if stacked:
        top = max((sum(v or 0 for v in column) for column in zip(*(s[2] for s in series), strict=True)), default=0)
    else:
        top = max((v or 0 for s in series for v in s[2]), default=0)
    ceiling = _nice_ceiling(top, percent)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(categories), 1)
    gap = slot * 0.2
    bars: list[Bar] = []
    for i, category in enumerate(categories):
        base = 0.0
        for j, (name, fill, values) in enumerate(series):
            value = values[i]
            height = plot_h * (value or 0) / ceiling
            if stacked:
                x, width, y = LEFT + i * slot + gap / 2, slot - gap, TOP + plot_h - base - height
                base += height
            else:
                width = (slot - gap) / len(series)
                x, y = LEFT + i * slot + gap / 2 + j * width, TOP + plot_h - height
            bars.append(Bar(_c(x), _c(y), _c(width), _c(height), fill, category, name, value, percent))
    gridlines = []
    for step in range(GRIDLINES + 1):
        value = ceiling * step / GRIDLINES
        y = TOP + plot_h * (1 - step / GRIDLINES)
        label = f"{round(100 * value)} %" if percent else str(round(value))
        gridlines.append({"y": _c(y), "label_y": _c(y + 4), "label": label})
    labels = [{"x": _c(LEFT + (i + 0.5) * slot), "label": category} for i, category in enumerate(categories)]
    return BarChart(
        key=key,
        title=title,
        desc=desc,
        bars=bars,
        labels=labels,
        gridlines=gridlines,
        legend=[(name, fill) for name, fill, _values in series],
    )


# --- tables -----------------------------------------------------------------------------------------------------


@dataclass
class Cell:
    value: Any
    kind: str = "int"  # int, pct, text


@dataclass
class Section:
    key: str
    title: str
    intro: str
    charts: list[BarChart]
    caption: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _last_months(now: datetime) -> list[datetime]:
    """The first moment of each of the last MONTHS months, the current one last, in the current time zone."""
    local = timezone.localtime(now)
    year, month = local.year, local.month
    firsts = []
    for _i in range(MONTHS):
        firsts.append(local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(firsts))


def _month_key(moment: datetime) -> tuple[int, int]:
    local = timezone.localtime(moment)
    return local.year, local.month


def _monthly(months: list[datetime], decisions: list[dict], recommendations: list[dict]) -> list[dict[str, Any]]:
    rows = {
        _month_key(m): {
            "month": m,
            "received": 0,
            "failed": 0,
            "overridden": 0,
            "decision": dict.fromkeys([*Decision.values, "none"], 0),
            "recommendation": dict.fromkeys(Decision.values, 0),
        }
        for m in months
    }
    for item in decisions:
        row = rows.get(_month_key(item["month"]))
        if row is None:
            continue
        row["received"] += item["n"]
        row["failed"] += item["n"] if item["status"] == Dossier.Status.FAILED else 0
        row["decision"][item["decision"] or "none"] += item["n"]
        if item["decision_overridden"] and item["decision"] in DECIDED:
            row["overridden"] += item["n"]
    for item in recommendations:
        row = rows.get(_month_key(item["month"]))
        if row is not None and item["decision"] in row["recommendation"]:
            row["recommendation"][item["decision"]] += item["n"]
    for row in rows.values():
        decided = sum(row["decision"][d] for d in DECIDED)
        granted = sum(row["decision"][d] for d in GRANTED)
        row["decided"], row["granted"] = decided, granted
        row["approval_rate"] = _rate(granted, decided)
        row["override_rate"] = _rate(row["overridden"], decided)
    return list(rows.values())


def _decision_names() -> dict[str, str]:
    return {**dict(Decision.choices), "none": _("Not decided")}


def _activity_section(monthly: list[dict[str, Any]]) -> Section:
    labels = [date_format(row["month"], "M y") for row in monthly]
    names = _decision_names()
    volume = bar_chart(
        key="volumes",
        title=_("Dossiers received by month"),
        desc=_("One bar per month: the live requests received. The table below gives the figures."),
        categories=labels,
        series=[(_("Received"), COLOURS["volume"], [row["received"] for row in monthly])],
    )
    recommendation = bar_chart(
        key="recommendations",
        title=_("Recommendation mix by month"),
        desc=_("Stacked bars: the latest score's recommendation of each month's dossiers. The table gives the counts."),
        categories=labels,
        series=[(names[d], COLOURS[d], [row["recommendation"][d] for row in monthly]) for d in Decision.values],
        stacked=True,
    )
    final = bar_chart(
        key="decisions",
        title=_("Decision in force by month"),
        desc=_(
            "Stacked bars: the decision in force on each month's dossiers, overrides included. "
            "The table gives the counts."
        ),
        categories=labels,
        series=[(names[d], COLOURS[d], [row["decision"][d] for row in monthly]) for d in [*Decision.values, "none"]],
        stacked=True,
    )
    rates = bar_chart(
        key="rates",
        title=_("Approval and override rates by month"),
        desc=_("Two bars per month: credit granted over dossiers decided, and overrides over dossiers decided."),
        categories=labels,
        series=[
            (_("Approval rate"), COLOURS[Decision.ACCEPT], [row["approval_rate"] for row in monthly]),
            (_("Override rate"), COLOURS["override"], [row["override_rate"] for row in monthly]),
        ],
        percent=True,
    )
    headers = [
        _("Month"),
        _("Received"),
        *[_("Recommended: %(decision)s") % {"decision": names[d]} for d in Decision.values],
        *[_("In force: %(decision)s") % {"decision": names[d]} for d in [*Decision.values, "none"]],
        _("Failed"),
        _("Approval rate"),
        _("Override rate"),
    ]
    rows = [
        [
            Cell(date_format(row["month"], "YEAR_MONTH_FORMAT"), "text"),
            Cell(row["received"]),
            *[Cell(row["recommendation"][d]) for d in Decision.values],
            *[Cell(row["decision"][d]) for d in [*Decision.values, "none"]],
            Cell(row["failed"]),
            Cell(row["approval_rate"], "pct"),
            Cell(row["override_rate"], "pct"),
        ]
        for row in monthly
    ]
    return Section(
        key="activity",
        title=_("Activity by month"),
        intro=_(
            "Live requests (the historical book excluded) by the month they were received. Approval rate: "
            "credit granted (accept or guarantee) over dossiers decided (accept, guarantee or refuse); "
            "override rate: overridden over decided."
        ),
        charts=[volume, recommendation, final, rates],
        caption=_("Activity by month, the last 12 months"),
        headers=headers,
        rows=rows,
    )


def _distribution_section(distribution: list[dict[str, Any]]) -> Section:
    buckets: dict[int, int] = {}
    bands: dict[str, dict[str, float]] = {band: {"n": 0, "pd_sum": 0.0} for band, _u, _q in BANDS}
    for item in distribution:
        bucket = int(item["bucket"])
        buckets[bucket] = buckets.get(bucket, 0) + item["n"]
        band = bands.setdefault(item["band"], {"n": 0, "pd_sum": 0.0})
        band["n"] += item["n"]
        band["pd_sum"] += item["pd_sum"] or 0.0
    total = sum(buckets.values())
    bucket_keys = list(range(min(buckets), max(buckets) + 1, selectors.SCORE_BUCKET)) if buckets else []
    bucket_labels = [f"{b}–{b + selectors.SCORE_BUCKET - 1}" for b in bucket_keys]
    histogram = bar_chart(
        key="histogram",
        title=_("Score distribution"),
        desc=_("One bar per 50-point bucket: how many dossiers' latest score falls in it. The table gives the counts."),
        categories=bucket_labels,
        series=[(_("Dossiers"), COLOURS["volume"], [buckets.get(b, 0) for b in bucket_keys])],
    )
    band_chart = bar_chart(
        key="bands",
        title=_("Dossiers by band"),
        desc=_("One bar per band of the latest score. The table gives the counts, shares and average PD."),
        categories=list(bands),
        series=[(_("Dossiers"), COLOURS["volume"], [b["n"] for b in bands.values()])],
    )
    rows = [
        [Cell(band, "text"), Cell(b["n"]), Cell(_rate(b["n"], total), "pct"), Cell(_rate(b["pd_sum"], b["n"]), "pct")]
        for band, b in bands.items()
    ]
    rows += [
        [Cell(label, "text"), Cell(buckets.get(b, 0)), Cell(_rate(buckets.get(b, 0), total), "pct"), Cell(None, "text")]
        for b, label in zip(bucket_keys, bucket_labels, strict=True)
    ]
    return Section(
        key="scores",
        title=_("Scores"),
        intro=_("The latest score of each live dossier received in the last 12 months."),
        charts=[band_chart, histogram] if total else [],
        caption=_("Dossiers by band, then by 50-point score bucket"),
        headers=[_("Band or bucket"), _("Dossiers"), _("Share"), _("Average PD")],
        rows=rows,
    )


def _defaults_section(defaults: dict[str, Any]) -> Section:
    by_band = {item["band"]: item for item in defaults["by_band"]}
    bands = [band for band, _u, _q in BANDS] + sorted(set(by_band) - {b for b, _u, _q in BANDS})
    observed = [_rate(by_band[b]["defaults"], by_band[b]["known"]) if b in by_band else None for b in bands]
    predicted = [by_band[b]["predicted_pd"] if b in by_band else None for b in bands]
    chart = bar_chart(
        key="defaults",
        title=_("Default rate against predicted PD, by band"),
        desc=_(
            "Two bars per band: the share of known outcomes that defaulted or were written off, and the average "
            "PD the latest score predicted for the same dossiers. The table gives the counts."
        ),
        categories=bands,
        series=[
            (_("Observed default rate"), COLOURS[Decision.REFUSE], observed),
            (_("Average predicted PD"), COLOURS["predicted"], predicted),
        ],
        percent=True,
    )
    rows = []
    for band, rate in zip(bands, observed, strict=True):
        item = by_band.get(band, {"known": 0, "defaults": 0, "history": 0, "predicted_pd": None})
        rows.append(
            [
                Cell(band, "text"),
                Cell(item["known"]),
                Cell(item["history"]),
                Cell(item["defaults"]),
                Cell(rate, "pct"),
                Cell(item["predicted_pd"], "pct"),
            ]
        )
    unscored = defaults["unscored"]
    if unscored["known"]:
        rows.append(
            [
                Cell(_("No score (historical book)") if unscored["history"] else _("No score"), "text"),
                Cell(unscored["known"]),
                Cell(unscored["history"]),
                Cell(unscored["defaults"]),
                Cell(_rate(unscored["defaults"], unscored["known"]), "pct"),
                Cell(None, "text"),
            ]
        )
    known = sum(item["known"] for item in by_band.values())
    return Section(
        key="defaults",
        title=_("Defaults by band"),
        intro=_(
            "Every dossier with a known outcome, whenever it was received, the historical book included (its "
            "count is shown apart): defaulted or written off over outcomes known. Refused applicants have no "
            "outcome, so these rates describe credit that was granted."
        ),
        charts=[chart] if known else [],
        caption=_("Outcomes known, defaults and predicted PD by band of the latest score"),
        headers=[
            _("Band"),
            _("Outcomes known"),
            _("Of which historical book"),
            _("Defaults"),
            _("Default rate"),
            _("Average predicted PD"),
        ],
        rows=rows,
    )


@login_required
@require_safe
def portfolio(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    segment = request.GET.get("segment", "")
    segment = segment if segment in Segment.values else ""
    months = _last_months(timezone.now())
    since = months[0]
    user = request.user
    monthly = _monthly(
        months,
        selectors.portfolio_decisions_by_month(user, since=since, segment=segment),
        selectors.portfolio_recommendations_by_month(user, since=since, segment=segment),
    )
    sections = [
        _activity_section(monthly),
        _distribution_section(selectors.portfolio_score_distribution(user, since=since, segment=segment)),
        _defaults_section(selectors.portfolio_defaults_by_band(user, segment=segment)),
    ]
    return render(
        request,
        "dossiers/portfolio.html",
        {
            "sections": sections,
            "segment": segment,
            "segments": Segment.choices,
            "since": since,
            "received": sum(row["received"] for row in monthly),
        },
    )
