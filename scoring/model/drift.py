"""Population stability: how far live scores and features have moved from what the model was trained on.

The training reference (``reference_build``, stored in ``ModelVersion.reference``) holds the shares of the
training files in fixed bins:

- the score: ten quantile bins of the training PDs (the nine inner edges are stored);
- each numeric feature: up to ten quantile bins of its non-missing training values (equal edges merged,
  so a feature that is mostly 0 gets fewer bins) plus a "missing" bin;
- each categorical feature: one bin per training category plus an "other or missing" bin.

A value equal to an edge falls in the bin below it (right-closed bins, as ``pandas.qcut``).

``drift_measure`` puts live files in the very same bins and compares the shares with the population
stability index, PSI = Σ (actual - expected) · ln(actual / expected). Rule of thumb: under 0.1 stable,
0.1 to 0.25 a shift worth watching, above 0.25 (``MODEL_PSI_ALERT``) a shift that calls for a look.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scoring.model.engine import LoadedModel
from scoring.model.features import is_missing

BINS = 10
# An empty bin would make ln(actual / expected) infinite: shares are floored at this before the PSI.
SHARE_FLOOR = 1e-4
_DIGITS = 6


def reference_build(*, model: LoadedModel, rows: list[dict[str, Any]], pds: Any) -> dict[str, Any]:
    """The training reference of ``model``: score bins of ``pds`` and per-feature bins of ``rows`` (JSON-able)."""
    pds = np.asarray(pds, dtype=np.float64)
    if len(pds) != len(rows):
        raise ValueError("rows and pds must have the same length")
    score_edges = _quantile_edges(pds)
    features: dict[str, Any] = {}
    for name in model.feature_names:
        values = [row.get(name) for row in rows]
        if name in model.categories:
            features[name] = _categorical_reference(values)
        else:
            features[name] = _numeric_reference(values)
    return {
        "rows": len(rows),
        "score": {"edges": score_edges, "shares": _shares(_bin_numeric(pds, score_edges), len(score_edges) + 1)},
        "features": features,
    }


def psi(expected: list[float], actual: list[float]) -> float:
    """Population stability index of two share vectors over the same bins (each share floored at ``SHARE_FLOOR``)."""
    if len(expected) != len(actual):
        raise ValueError("expected and actual shares must cover the same bins")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(float(e), SHARE_FLOOR), max(float(a), SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def drift_measure(*, reference: dict[str, Any], rows: list[dict[str, Any]], pds: Any) -> dict[str, Any]:
    """PSI of the live ``pds`` and of each feature of ``rows`` against ``reference``.

    ``{"score": psi or None, "features": {name: psi}, "max": the largest feature PSI, "max_of": its feature}``;
    ``score`` is None without PDs or without a score reference, ``max``/``max_of`` None without features.
    """
    pds = np.asarray(pds, dtype=np.float64)
    score = None
    score_reference = reference.get("score")
    if score_reference and len(pds):
        edges = score_reference["edges"]
        actual = _shares(_bin_numeric(pds, edges), len(edges) + 1)
        score = round(psi(score_reference["shares"], actual), _DIGITS)
    features: dict[str, float] = {}
    if rows:
        for name, entry in (reference.get("features") or {}).items():
            values = [row.get(name) for row in rows]
            expected, actual = _expected_actual(entry, values)
            features[name] = round(psi(expected, actual), _DIGITS)
    max_of = max(features, key=lambda name: features[name]) if features else None
    return {
        "score": score,
        "features": features,
        "max": features[max_of] if max_of else None,
        "max_of": max_of,
    }


def _quantile_edges(values: np.ndarray) -> list[float]:
    """The inner edges of up to ``BINS`` equal-count bins, equal edges merged."""
    if len(values) == 0:
        return []
    edges = np.quantile(values, np.arange(1, BINS) / BINS)
    return [float(e) for e in np.unique(edges)]


def _bin_numeric(values: np.ndarray, edges: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")


def _shares(indices: np.ndarray, n_bins: int) -> list[float]:
    if len(indices) == 0:
        return [0.0] * n_bins
    counts = np.bincount(indices, minlength=n_bins)
    return [round(float(c) / len(indices), _DIGITS) for c in counts]


def _numeric_values(values: list[Any]) -> tuple[np.ndarray, int]:
    present = np.array([float(v) for v in values if not is_missing(v)], dtype=np.float64)
    return present, len(values) - len(present)


def _numeric_reference(values: list[Any]) -> dict[str, Any]:
    present, missing = _numeric_values(values)
    edges = _quantile_edges(present)
    counts = np.bincount(_bin_numeric(present, edges), minlength=len(edges) + 1)
    n = max(len(values), 1)
    return {
        "kind": "numeric",
        "edges": edges,
        "shares": [round(float(c) / n, _DIGITS) for c in counts],
        "missing": round(missing / n, _DIGITS),
    }


def _categorical_reference(values: list[Any]) -> dict[str, Any]:
    n = max(len(values), 1)
    counts: dict[str, int] = {}
    missing = 0
    for value in values:
        if is_missing(value) or value == "":
            missing += 1
        else:
            counts[str(value)] = counts.get(str(value), 0) + 1
    categories = sorted(counts)
    return {
        "kind": "categorical",
        "categories": categories,
        "shares": [round(counts[c] / n, _DIGITS) for c in categories],
        # Other or missing: the PSI's last bin (at training time, no category is "other").
        "other": round(missing / n, _DIGITS),
        "missing": round(missing / n, _DIGITS),
    }


def _expected_actual(entry: dict[str, Any], values: list[Any]) -> tuple[list[float], list[float]]:
    """The reference shares of a feature and the live shares in the same bins, the missing/other bin last."""
    n = len(values)
    if entry["kind"] == "categorical":
        position = {category: i for i, category in enumerate(entry["categories"])}
        counts = [0] * (len(position) + 1)
        for value in values:
            key = None if is_missing(value) or value == "" else str(value)
            counts[position.get(key, len(position))] += 1
        return [*entry["shares"], entry["other"]], [c / n for c in counts]
    present, missing = _numeric_values(values)
    edges = entry["edges"]
    counts = np.bincount(_bin_numeric(present, edges), minlength=len(edges) + 1)
    actual = [float(c) / n for c in counts]
    return [*entry["shares"], entry["missing"]], [*actual, missing / n]
