"""Back-testing: did the PDs the decisions stood on come true? And did the analysts' overrides pay off?

The files are the segment's matured outcomes, by the rule of ``scoring.model.registry.decided_outcomes``:
a default or write-off counts whenever it happened; a repayment only once
``OUTCOME_PERFORMANCE_WINDOW_MONTHS`` have passed since the score the decision stood on. That score is the
dossier's latest one created before the outcome was recorded, and no later than the day the outcome
occurred (a re-score after the default is not what the credit was granted on); its PD is the prediction.

``backtest_by_band`` sets, per band of that PD (``scoring.policy.scale.BANDS``) and per calendar quarter of
the application, the mean predicted PD against the observed default rate and its Jeffreys 95 % interval.

``override_analysis`` splits the same files by what the analysts did: an override in force when the outcome
came (final, or approved by a second analyst; made after the score the decision stood on) that grants more
than the policy recommended is "more lenient", one that grants less or the same is "stricter"; the files
nobody overrode are the reference. An override that put back the recommendation counts as none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from dossiers.models import Override
from dossiers.overrides import _EXPOSURE
from scoring.model.comparison import jeffreys_interval
from scoring.model.registry import decided_outcomes
from scoring.models import Score
from scoring.policy.scale import BANDS, band_for

WITHIN, UNDER, OVER = "within", "under-predicted", "over-predicted"
MORE_LENIENT, STRICTER, NOT_OVERRIDDEN = "more lenient", "stricter", "not overridden"


@dataclass(frozen=True)
class _File:
    dossier_id: Any
    pd: float
    defaulted: bool
    applied_at: datetime
    scored_at: datetime
    recommended: str
    outcome_recorded_at: datetime


def backtest_by_band(segment: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Predicted against observed by band, overall and per quarter of application (JSON-able).

    ``{"rows", "defaults", "immature", "without_score", "window_months", "bands": [...], "periods":
    [{"period": "2026-Q1", "rows", "defaults", "bands": [...]}]}``; each band ``{"band", "n", "defaults",
    "mean_pd", "observed_rate", "low", "high", "verdict"}``, the verdict saying whether the mean PD lies
    within the observed rate's interval, below it (under-predicted) or above it (over-predicted).
    """
    return _backtest(segment, *_matured_files(segment, now=now))


def override_analysis(segment: str, *, now: datetime | None = None) -> dict[str, Any]:
    """Observed default rates of overridden files, more lenient or stricter, against the files nobody overrode.

    ``{"rows", "groups": [{"direction", "n", "defaults", "mean_pd", "observed_rate", "low", "high",
    "changes": {"refuse→accept": n, ...}}]}``, groups in the order more lenient, stricter, not overridden.
    """
    return _overrides(segment, *_matured_files(segment, now=now))


def backtest_and_overrides(segment: str, *, now: datetime | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``backtest_by_band`` and ``override_analysis`` from one read of the matured files (the Models page)."""
    files, skipped = _matured_files(segment, now=now)
    return _backtest(segment, files, skipped), _overrides(segment, files, skipped)


def _backtest(segment: str, files: list[_File], skipped: dict[str, int]) -> dict[str, Any]:
    by_period: dict[str, list[_File]] = {}
    for file in files:
        by_period.setdefault(_quarter(file.applied_at), []).append(file)
    return {
        "segment": segment,
        "rows": len(files),
        "defaults": sum(f.defaulted for f in files),
        **skipped,
        "bands": _bands(files),
        "periods": [
            {
                "period": period,
                "rows": len(group),
                "defaults": sum(f.defaulted for f in group),
                "bands": _bands(group),
            }
            for period, group in sorted(by_period.items())
        ],
    }


def _overrides(segment: str, files: list[_File], skipped: dict[str, int]) -> dict[str, Any]:
    by_dossier = {f.dossier_id: f for f in files}
    in_force: dict[Any, tuple[datetime, str]] = {}
    overrides = (
        Override.objects.filter(
            dossier__segment=segment,
            status__in=[Override.Status.FINAL, Override.Status.APPROVED],
            created_at__lt=F("dossier__outcome__created_at"),
        )
        .order_by()
        .values_list("dossier_id", "created_at", "to_decision")
    )
    for dossier_id, created_at, to_decision in overrides:
        file = by_dossier.get(dossier_id)
        if file is None or created_at < file.scored_at:
            continue  # not a matured file, or an override a later re-score replaced
        kept = in_force.get(dossier_id)
        if kept is None or created_at > kept[0]:
            in_force[dossier_id] = (created_at, to_decision)

    groups: dict[str, list[_File]] = {MORE_LENIENT: [], STRICTER: [], NOT_OVERRIDDEN: []}
    changes: dict[str, dict[str, int]] = {MORE_LENIENT: {}, STRICTER: {}, NOT_OVERRIDDEN: {}}
    for file in files:
        to_decision = in_force.get(file.dossier_id, (None, file.recommended))[1]
        if to_decision == file.recommended:
            direction = NOT_OVERRIDDEN
        elif _EXPOSURE.get(to_decision, 0) > _EXPOSURE.get(file.recommended, 0):
            direction = MORE_LENIENT
        else:
            direction = STRICTER
        groups[direction].append(file)
        if direction != NOT_OVERRIDDEN:
            change = f"{file.recommended}→{to_decision}"
            changes[direction][change] = changes[direction].get(change, 0) + 1
    return {
        "segment": segment,
        "rows": len(files),
        **skipped,
        "groups": [
            {"direction": direction, **_figures(group), "changes": dict(sorted(changes[direction].items()))}
            for direction, group in groups.items()
        ],
    }


def _matured_files(segment: str, *, now: datetime | None) -> tuple[list[_File], dict[str, int]]:
    """The matured files with the score their decision stood on (``registry.decided_outcomes``, on scores)."""
    window_months = settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS
    scores = (
        Score.objects.filter(dossier__segment=segment, created_at__lt=F("dossier__outcome__created_at"))
        .order_by()
        .values_list("dossier_id", "created_at", "probability_of_default", "decision")
    )
    decided, immature, without_score = decided_outcomes(segment, scores, now=now, window_months=window_months)
    files = [
        _File(d.dossier_id, d.payload[0], d.defaulted, d.applied_at, d.decided_at, d.payload[1], d.outcome_recorded_at)
        for d in decided
    ]
    return files, {"immature": immature, "without_score": without_score, "window_months": window_months}


def _quarter(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def _figures(files: list[_File]) -> dict[str, Any]:
    n = len(files)
    defaults = sum(f.defaulted for f in files)
    if n == 0:
        return {"n": 0, "defaults": 0, "mean_pd": None, "observed_rate": None, "low": None, "high": None}
    low, high = jeffreys_interval(defaults, n)
    return {
        "n": n,
        "defaults": defaults,
        "mean_pd": round(sum(f.pd for f in files) / n, 5),
        "observed_rate": round(defaults / n, 5),
        "low": round(low, 5),
        "high": round(high, 5),
    }


def _bands(files: list[_File]) -> list[dict[str, Any]]:
    by_band: dict[str, list[_File]] = {}
    for file in files:
        by_band.setdefault(band_for(file.pd), []).append(file)
    table = []
    for band, _, _ in BANDS:
        if band not in by_band:
            continue
        figures = _figures(by_band[band])
        if figures["mean_pd"] < figures["low"]:
            verdict = UNDER
        elif figures["mean_pd"] > figures["high"]:
            verdict = OVER
        else:
            verdict = WITHIN
        table.append({"band": band, **figures, "verdict": verdict})
    return table
