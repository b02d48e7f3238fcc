"""Champion against challenger on the same out-of-time holdout, with bootstrap intervals and promotion gates.

Both models predict the PD of the same holdout files (the latest share of the labelled set, which the
challenger never trained on). Discrimination (AUC, Gini, KS), accuracy (Brier) and level (mean PD) come
with 95 % percentile-bootstrap intervals, and their differences (challenger - champion) with *paired*
intervals: each resample draws the same files for both models, so what the two have in common cancels
and only their difference varies. All resamples are computed at once, as bootstrap weights (how many
times each file is drawn), the AUC by ranks (``evaluation._weighted_auc``).

Calibration is read by band (``scoring.policy.scale.BANDS``). The rows are banded by the *challenger's*
PD, since it is the challenger whose calibration the gate judges; the champion's mean PD over the same
rows is shown beside it for comparison. Each band's observed default rate comes with a Jeffreys 95 %
interval (Beta(d + 1/2, n - d + 1/2) quantiles; 0 below when no default, 1 above when all defaulted).

The gates (``gates_evaluate``) decide whether the challenger may be approved; the settings they read
(``MODEL_GATE_*``) are stored with the result.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _
from scipy.sparse import csr_matrix
from scipy.stats import beta

from scoring.model import engine
from scoring.model.evaluation import _weighted_auc
from scoring.policy.scale import BANDS, band_for

METRICS = ("auc", "gini", "ks", "brier", "mean_pd")
# A band with fewer files than this is shown but not judged by the calibration gate: its interval is too wide.
CALIBRATION_MIN_FILES = 30
_DIGITS = {"auc": 4, "gini": 4, "ks": 4, "brier": 6, "mean_pd": 5}


def compare_on_holdout(
    *,
    champion: engine.LoadedModel | None,
    challenger: engine.LoadedModel,
    rows: list[dict],
    labels: list[int],
    dates: list[str],
    segment: str,
    champion_label: str | None = None,
    champion_trained_to: str | None = None,
    resamples: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The comparison stored in ``ModelVersion.comparison``: figures, intervals, calibration, gates (JSON-able).

    ``dates`` and ``champion_trained_to`` are ISO strings in the same time zone (``labelled_history`` gives
    UTC ``isoformat()``), so that they compare as strings: ``champion_saw`` counts the holdout files dated
    on or before the end of the champion's training window, files the champion learnt from, which flatter it.
    """
    if not (len(rows) == len(labels) == len(dates)):
        raise ValueError("rows, labels and dates must have the same length")
    if not rows:
        raise ValueError("an empty holdout cannot compare models")
    resamples = settings.MODEL_BOOTSTRAP_RESAMPLES if resamples is None else resamples
    y = np.asarray(labels, dtype=np.float64)
    n = len(y)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=max(resamples, 1))
    weights = weights.astype(np.float64)

    challenger_pd = engine.predict_pd(challenger, rows)
    challenger_point, challenger_boot = _metrics(y, challenger_pd, weights)
    champion_pd = champion_point = champion_boot = None
    if champion is not None:
        champion_pd = engine.predict_pd(champion, rows)
        champion_point, champion_boot = _metrics(y, champion_pd, weights)

    comparison: dict[str, Any] = {
        "segment": segment,
        "holdout": {
            "rows": n,
            "defaults": int(y.sum()),
            "from": min(dates),
            "to": max(dates),
            "champion_saw": (
                sum(1 for d in dates if str(d) <= str(champion_trained_to))
                if champion is not None and champion_trained_to
                else None
            ),
        },
        "champion": (
            None if champion is None else {"label": champion_label, **_summary(champion_point, champion_boot)}  # type: ignore[arg-type]
        ),
        "challenger": {"label": None, **_summary(challenger_point, challenger_boot)},
        "difference": {},
        "calibration": calibration_by_band(y, challenger_pd, champion_pd),
        "resamples": int(resamples),
        "seed": seed,
    }
    if champion is not None:
        comparison["difference"] = {
            metric: _interval_of_difference(
                challenger_point[metric], champion_point[metric], challenger_boot, champion_boot, metric
            )  # type: ignore[index]
            for metric in METRICS
        }
    comparison["settings"] = gate_settings()
    comparison["gates"] = gates_evaluate(comparison)
    comparison["passed"] = all(gate["passed"] for gate in comparison["gates"])
    return comparison


def gate_settings() -> dict[str, Any]:
    return {
        "min_defaults": settings.MODEL_GATE_MIN_DEFAULTS,
        "auc_tolerance": settings.MODEL_GATE_AUC_TOLERANCE,
        "brier_tolerance": settings.MODEL_GATE_BRIER_TOLERANCE,
        "calibration_tolerance": settings.MODEL_GATE_CALIBRATION_TOLERANCE,
        "calibration_min_files": CALIBRATION_MIN_FILES,
        "resamples": settings.MODEL_BOOTSTRAP_RESAMPLES,
    }


def gates_evaluate(comparison: dict[str, Any], config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The promotion gates of a comparison, under ``config`` (stored ``comparison["settings"]``) or the current
    ``MODEL_GATE_*`` settings; each gate's sentence in the active language.

    (a) ``holdout_defaults``: enough defaults in the holdout for any figure to mean something;
    (b) ``auc_not_worse``: the challenger's AUC is not worse beyond noise (the high end of the paired
        interval of the difference reaches -tolerance); passes when there is no champion;
    (c) ``brier_not_worse``: its Brier score is not worse beyond noise (the low end of the paired interval
        stays under +tolerance); passes when there is no champion;
    (d) ``calibration``: in every band with at least ``CALIBRATION_MIN_FILES`` files, the challenger's mean
        PD lies within the tolerance of the band's interval of the observed default rate, or no further
        outside it than the champion's mean PD over the same files.
    """
    config = {**gate_settings(), **(config or {})}
    min_defaults = config["min_defaults"]
    auc_tolerance = config["auc_tolerance"]
    brier_tolerance = config["brier_tolerance"]
    calibration_tolerance = config["calibration_tolerance"]
    min_files = config["calibration_min_files"]
    holdout = comparison["holdout"]
    difference = comparison.get("difference") or {}
    has_champion = comparison.get("champion") is not None
    champion_label = (comparison.get("champion") or {}).get("label") or _("the champion")
    gates = []

    defaults = holdout["defaults"]
    gates.append(
        _gate(
            "holdout_defaults",
            defaults >= min_defaults,
            _("The holdout of %(rows)s files holds %(defaults)s defaults; at least %(min)s are needed.")
            % {"rows": holdout["rows"], "defaults": defaults, "min": min_defaults},
        )
    )

    if not has_champion:
        gates.append(_gate("auc_not_worse", True, _("No champion to compare with: the AUC gate does not apply.")))
        gates.append(_gate("brier_not_worse", True, _("No champion to compare with: the Brier gate does not apply.")))
    else:
        auc = difference.get("auc") or {}
        if auc.get("high") is None:
            gates.append(
                _gate(
                    "auc_not_worse",
                    False,
                    _("The AUC difference cannot be measured: the holdout needs both defaults and repaid files."),
                )
            )
        else:
            passed = auc["high"] >= -auc_tolerance
            figures = {
                "champion": champion_label,
                "value": f"{auc['value']:+.4f}",
                "low": f"{auc['low']:+.4f}",
                "high": f"{auc['high']:+.4f}",
                "bound": f"{0.0 - auc_tolerance:+.4f}",
            }
            detail = (
                _(
                    "Challenger minus %(champion)s AUC: %(value)s (95 %% interval %(low)s to %(high)s); the high end "
                    "must reach %(bound)s: not worse beyond noise."
                )
                if passed
                else _(
                    "Challenger minus %(champion)s AUC: %(value)s (95 %% interval %(low)s to %(high)s); the high end "
                    "must reach %(bound)s: worse beyond noise."
                )
            )
            gates.append(_gate("auc_not_worse", passed, detail % figures))
        brier = difference.get("brier") or {}
        passed = brier["low"] <= brier_tolerance
        figures = {
            "champion": champion_label,
            "value": f"{brier['value']:+.6f}",
            "low": f"{brier['low']:+.6f}",
            "high": f"{brier['high']:+.6f}",
            "bound": f"{brier_tolerance:+.6f}",
        }
        detail = (
            _(
                "Challenger minus %(champion)s Brier score: %(value)s (95 %% interval %(low)s to %(high)s); the low "
                "end must stay at or under %(bound)s: not worse beyond noise."
            )
            if passed
            else _(
                "Challenger minus %(champion)s Brier score: %(value)s (95 %% interval %(low)s to %(high)s); the low "
                "end must stay at or under %(bound)s: worse beyond noise."
            )
        )
        gates.append(_gate("brier_not_worse", passed, detail % figures))

    judged = [band for band in comparison.get("calibration", []) if band["n"] >= min_files]

    def miss(band: dict[str, Any], mean_pd: float) -> float:
        """How far a mean PD lies outside the band's observed interval widened by the tolerance (0 inside)."""
        return max(
            band["observed_low"] - calibration_tolerance - mean_pd,
            mean_pd - band["observed_high"] - calibration_tolerance,
            0.0,
        )

    outside = [band for band in judged if miss(band, band["challenger_mean_pd"]) > 0]
    # A band the champion misses by as much or more does not hold the challenger back: after a drift both
    # models are off, and blocking the one that is less off would keep the worse calibration in production.
    no_worse = [
        band
        for band in outside
        if band["champion_mean_pd"] is not None
        and miss(band, band["challenger_mean_pd"]) <= miss(band, band["champion_mean_pd"])
    ]
    outside = [band for band in outside if band not in no_worse]
    tolerance = f"{calibration_tolerance:.3f}"
    if not judged:
        detail = _("No band holds %(min)s files or more: calibration by band is not judged.") % {"min": min_files}
    elif not outside:
        detail = _(
            "In each of the %(count)s bands with at least %(min)s files (%(bands)s) the challenger's mean PD lies "
            "within %(tolerance)s of the observed default rate's 95 %% interval."
        ) % {
            "count": len(judged),
            "min": min_files,
            "bands": ", ".join(b["band"] for b in judged),
            "tolerance": tolerance,
        }
        if no_worse:
            detail += " " + _("Where it does not, it is no further from it than the champion's: %(bands)s.") % {
                "bands": "; ".join(
                    _(
                        "band %(band)s, mean PD %(challenger)s against the champion's %(champion)s, observed "
                        "%(observed)s (%(low)s to %(high)s)"
                    )
                    % {
                        "band": b["band"],
                        "challenger": f"{b['challenger_mean_pd']:.4f}",
                        "champion": f"{b['champion_mean_pd']:.4f}",
                        "observed": f"{b['observed_rate']:.4f}",
                        "low": f"{b['observed_low']:.4f}",
                        "high": f"{b['observed_high']:.4f}",
                    }
                    for b in no_worse
                )
            }
    else:
        detail = _(
            "Mean PD outside the observed rate's 95 %% interval widened by %(tolerance)s, and further from it than "
            "the champion's: %(bands)s."
        ) % {
            "tolerance": tolerance,
            "bands": "; ".join(
                _(
                    "band %(band)s, %(n)s files, mean PD %(challenger)s against observed %(observed)s "
                    "(%(low)s to %(high)s)"
                )
                % {
                    "band": b["band"],
                    "n": b["n"],
                    "challenger": f"{b['challenger_mean_pd']:.4f}",
                    "observed": f"{b['observed_rate']:.4f}",
                    "low": f"{b['observed_low']:.4f}",
                    "high": f"{b['observed_high']:.4f}",
                }
                + (
                    ""
                    if b["champion_mean_pd"] is None
                    else _(", the champion's %(champion)s") % {"champion": f"{b['champion_mean_pd']:.4f}"}
                )
                for b in outside
            ),
        }
    gates.append(_gate("calibration", not outside, detail))
    return gates


def gates_in_language(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored gates with their sentences in the active language (the stored ones are in the language the
    retraining ran in): recomputed under the settings stored with the comparison, verdicts kept as stored."""
    stored = comparison.get("gates") or []
    if not stored or "settings" not in comparison:
        return list(stored)
    fresh = {gate["name"]: gate["detail"] for gate in gates_evaluate(comparison, comparison["settings"])}
    return [{**gate, "detail": fresh.get(gate["name"], gate["detail"])} for gate in stored]


def calibration_by_band(
    y: np.ndarray, challenger_pd: np.ndarray, champion_pd: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Per band of the challenger's PD: files, defaults, observed rate with its Jeffreys 95 % interval, mean PDs."""
    bands = np.array([band_for(float(p)) for p in challenger_pd])
    table = []
    for band, *_bounds in BANDS:
        mask = bands == band
        n = int(mask.sum())
        if n == 0:
            continue
        defaults = int(y[mask].sum())
        low, high = jeffreys_interval(defaults, n)
        table.append(
            {
                "band": band,
                "n": n,
                "defaults": defaults,
                "observed_rate": round(defaults / n, 5),
                "observed_low": round(low, 5),
                "observed_high": round(high, 5),
                "champion_mean_pd": None if champion_pd is None else round(float(champion_pd[mask].mean()), 5),
                "challenger_mean_pd": round(float(challenger_pd[mask].mean()), 5),
            }
        )
    return table


def jeffreys_interval(defaults: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Jeffreys interval of a default rate: Beta(d + 1/2, n - d + 1/2) quantiles, clamped to 0 and 1 at the ends."""
    if n <= 0:
        return 0.0, 1.0
    alpha = (1 - level) / 2
    low = 0.0 if defaults == 0 else float(beta.ppf(alpha, defaults + 0.5, n - defaults + 0.5))
    high = 1.0 if defaults == n else float(beta.ppf(1 - alpha, defaults + 0.5, n - defaults + 0.5))
    return low, high


def _gate(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail}


def _metrics(
    y: np.ndarray, pd: np.ndarray, weights: np.ndarray
) -> tuple[dict[str, float | None], dict[str, np.ndarray]]:
    """Point figures on the holdout as it is, and the same figures under every bootstrap weighting."""
    ones = np.ones((1, len(y)))
    point = {metric: values[0] for metric, values in _weighted_metrics(y, pd, ones).items()}
    return {k: (None if np.isnan(v) else float(v)) for k, v in point.items()}, _weighted_metrics(y, pd, weights)


def _weighted_metrics(y: np.ndarray, pd: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """AUC, Gini, KS, Brier and mean PD under each row of ``weights`` (replicates × files); NaN where undefined."""
    levels, inverse = np.unique(pd, return_inverse=True)
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = _weighted_auc(y, inverse, len(levels), weights)
        # KS: the largest gap between the cumulative shares of repaid and defaulted files below each PD.
        by_level = csr_matrix((np.ones(len(y)), (inverse, np.arange(len(y)))), shape=(len(levels), len(y)))
        positive = np.asarray(by_level @ (weights * y).T).T
        negative = np.asarray(by_level @ (weights * (1 - y)).T).T
        cum_pos = np.cumsum(positive, axis=1) / positive.sum(axis=1, keepdims=True)
        cum_neg = np.cumsum(negative, axis=1) / negative.sum(axis=1, keepdims=True)
        ks = np.max(np.abs(cum_neg - cum_pos), axis=1)
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks,
        "brier": weights @ (pd - y) ** 2 / total,
        "mean_pd": weights @ pd / total,
    }


def _percentiles(values: np.ndarray) -> tuple[float | None, float | None]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def _summary(point: dict[str, float | None], boot: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {metric: _round(metric, point[metric]) for metric in METRICS}
    out["ci"] = {metric: [_round(metric, v) for v in _percentiles(boot[metric])] for metric in METRICS}
    return out


def _interval_of_difference(
    challenger: float | None,
    champion: float | None,
    challenger_boot: dict[str, np.ndarray],
    champion_boot: dict[str, np.ndarray],
    metric: str,
) -> dict[str, float | None]:
    value = None if challenger is None or champion is None else challenger - champion
    low, high = _percentiles(challenger_boot[metric] - champion_boot[metric])
    return {"value": _round(metric, value), "low": _round(metric, low), "high": _round(metric, high)}


def _round(metric: str, value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS[metric])
