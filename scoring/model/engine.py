"""Prediction and exact TreeSHAP explanation with a stored XGBoost model.

Contributions come from ``Booster.predict(pred_contribs=True)``: exact TreeSHAP in
log-odds, so ``base_value + Σ contributions == logit(PD)`` holds by construction
and the PD is derived from that very sum.

A model may carry a Platt calibration ``PD = sigmoid(a · margin + b)``. It is an
affine map of the margin, and SHAP values are linear in the model's output, so
the calibrated explanation is exact too: every contribution is multiplied by
``a`` and the base value becomes ``a · base + b``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.special import expit

from scoring.model.features import FEATURES_BY_NAME, factor_text, is_missing
from scoring.models import ModelVersion

TOP_FACTORS = 4


@dataclass(frozen=True)
class LoadedModel:
    version_id: int | None
    booster: xgb.Booster
    feature_names: list[str]
    categories: dict[str, list[str]]
    calibration: dict[str, float] = field(default_factory=dict)
    # Derived once, used on every scoring.
    feature_types: list[str] = field(init=False, repr=False, compare=False)
    category_codes: dict[str, dict[str, float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "feature_types", ["c" if name in self.categories else "q" for name in self.feature_names]
        )
        object.__setattr__(self, "category_codes", _category_codes(self.categories))

    @property
    def scale(self) -> tuple[float, float]:
        """(a, b) of the calibration ``a · margin + b``; (1, 0) when the model is not calibrated."""
        if not self.calibration:
            return 1.0, 0.0
        return float(self.calibration["a"]), float(self.calibration["b"])


@dataclass(frozen=True)
class Explanation:
    probability_of_default: float
    base_value: float
    contributions: dict[str, float]

    @property
    def logit(self) -> float:
        return self.base_value + sum(self.contributions.values())


_cache: dict[tuple[Any, ...], LoadedModel] = {}
_cache_lock = threading.Lock()


def booster_from_bytes(booster_ubj: bytes) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(bytearray(bytes(booster_ubj)))
    booster.set_param({"nthread": 1})  # one row at a time: threads cost more than they give
    return booster


def model_from_version(model_version: ModelVersion) -> LoadedModel:
    """A model version's booster and metadata, parsed from its stored bytes (no cache)."""
    return LoadedModel(
        version_id=model_version.pk,
        booster=booster_from_bytes(model_version.booster_ubj),
        feature_names=list(model_version.feature_names),
        categories={k: list(v) for k, v in (model_version.categories or {}).items()},
        calibration=dict(model_version.calibration or {}),
    )


def model_from_trained(trained: Any) -> LoadedModel:
    """A freshly trained model (``training.TrainedModel``), loaded as the scoring path loads a stored one."""
    return LoadedModel(
        version_id=None,
        booster=booster_from_bytes(trained.booster_ubj),
        feature_names=list(trained.feature_names),
        categories={k: list(v) for k, v in trained.categories.items()},
        calibration=dict(trained.calibration),
    )


def model_load(model_version: ModelVersion) -> LoadedModel:
    """The booster of a model version, parsed once per process (versions are immutable).

    The key carries the creation time and data hash as well as the id: a test database that rolls back
    (or a restored one) can hand the same id to another model.
    """
    key = (model_version.pk, model_version.created_at, model_version.data_hash)
    loaded = _cache.get(key)
    if loaded is None:
        loaded = model_from_version(model_version)
        with _cache_lock:
            _cache[key] = loaded
    return loaded


def _category_codes(categories: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    return {name: {value: float(i) for i, value in enumerate(values)} for name, values in categories.items()}


def encode_rows(feature_names: list[str], categories: dict[str, list[str]], rows: list[dict[str, Any]]) -> np.ndarray:
    """Rows of feature dicts as a float matrix: NaN for missing, category codes for categorical features.

    A category never seen in training becomes missing, which the trees route like any missing value.
    """
    return _encode(feature_names, _category_codes(categories), rows)


def _encode(feature_names: list[str], codes: dict[str, dict[str, float]], rows: list[dict[str, Any]]) -> np.ndarray:
    matrix = np.full((len(rows), len(feature_names)), np.nan, dtype=np.float64)
    for i, row in enumerate(rows):
        for j, name in enumerate(feature_names):
            value = row.get(name)
            if is_missing(value):
                continue
            if name in codes:
                matrix[i, j] = codes[name].get(str(value), np.nan)
            else:
                matrix[i, j] = float(value)
    return matrix


def dmatrix(loaded: LoadedModel, matrix: np.ndarray) -> xgb.DMatrix:
    return xgb.DMatrix(
        matrix,
        feature_names=loaded.feature_names,
        feature_types=loaded.feature_types,
        enable_categorical=bool(loaded.categories),
        missing=np.nan,
        nthread=1,
    )


def calibrated_pd(margin: np.ndarray, calibration: dict[str, float]) -> np.ndarray:
    """PD from raw margins (log-odds) through the calibration, if any."""
    if calibration:
        margin = float(calibration["a"]) * margin + float(calibration["b"])
    return sigmoid(margin)


def predict_pd(loaded: LoadedModel, rows: list[dict[str, Any]]) -> np.ndarray:
    """Calibrated PDs of many rows at once (batch evaluation; the per-dossier path is ``explain_one``)."""
    matrix = _encode(loaded.feature_names, loaded.category_codes, rows)
    margin = loaded.booster.predict(dmatrix(loaded, matrix), output_margin=True).astype(np.float64)
    return calibrated_pd(margin, loaded.calibration)


def sigmoid(z: Any) -> Any:
    """The logistic function, stable for any |z|: a float for a float, an array for an array."""
    out = expit(z)
    return float(out) if np.ndim(out) == 0 else out


def explain_one(loaded: LoadedModel, features: dict[str, Any]) -> Explanation:
    """PD and exact TreeSHAP contributions of one row; the PD is the sigmoid of base + Σ contributions."""
    return explain_many(loaded, [features])[0]


def explain_many(loaded: LoadedModel, feature_rows: list[dict[str, Any]]) -> list[Explanation]:
    """PD and exact TreeSHAP contributions of many rows: one ``pred_contribs`` call, then per-row arithmetic.

    TreeSHAP is computed row by row inside XGBoost, so a batch gives each row the very
    contributions a single-row call would (tests/test_bulk_scoring.py holds the two together),
    at a fraction of the cost of one DMatrix per row.
    """
    matrix = _encode(loaded.feature_names, loaded.category_codes, feature_rows)
    contribs = loaded.booster.predict(dmatrix(loaded, matrix), pred_contribs=True).astype(np.float64)
    a, b = loaded.scale  # Platt calibration: an affine map of the margin, so of every contribution
    if a != 1.0 or b != 0.0:
        contribs *= a
        contribs[:, -1] += b
    explanations = []
    for row in contribs:
        values = dict(zip(loaded.feature_names, row[:-1].tolist(), strict=True))
        base_value = float(row[-1])
        margin = base_value + sum(values.values())
        explanations.append(
            Explanation(probability_of_default=sigmoid(margin), base_value=base_value, contributions=values)
        )
    return explanations


# A factor's direction. A feature whose value is missing is "missing", whatever the sign of its
# contribution: the model routed the gap somewhere, but an absence of data is never a reason that lowers
# risk, and it is never phrased as one.
RAISES, LOWERS, MISSING = "increases_risk", "decreases_risk", "missing"

# The decisions whose reasons lead with what raised the risk: the principal reasons an applicant is owed
# after a refusal or a request for a guarantee; a referral leads with the data that was missing.
_ORDER_BY_DECISION: dict[str, tuple[str, ...]] = {
    "accept": (LOWERS, RAISES, MISSING),
    "guarantee": (RAISES, MISSING, LOWERS),
    "refuse": (RAISES, MISSING, LOWERS),
    "refer": (MISSING, RAISES, LOWERS),
}


def _lower_first(label: str) -> str:
    """'Days in overdraft' -> 'days in overdraft' inside a sentence; an acronym ('EBITDA') keeps its case."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _factor(name: str, value: Any, contribution: float) -> dict[str, Any]:
    feature = FEATURES_BY_NAME.get(name)
    missing = is_missing(value)
    if feature is None:
        label = {"en": name, "fr": name}
        text = {"en": name, "fr": name}
    else:
        label = {"en": feature.label_en, "fr": feature.label_fr}
        if missing:
            text = {
                "en": f"Missing data: {_lower_first(feature.label_en)} (not available)",
                "fr": f"Donnée manquante : {_lower_first(feature.label_fr)} (non disponible)",
            }
        else:
            text = {lang: factor_text(name, value, contribution, lang) for lang in ("en", "fr")}
    return {
        "feature": name,
        "label": label,
        "value": None if missing else value,
        "missing": missing,
        "direction": MISSING if missing else (RAISES if contribution > 0 else LOWERS),
        "contribution": round(contribution, 6),
        "text": text,
    }


def factors_from(explanation: Explanation, features: dict[str, Any], top: int | None = None) -> list[dict[str, Any]]:
    """The reasons of a score, in French and English, with direction and value, largest contribution first.

    By default, up to ``TOP_FACTORS`` of each kind: what raised the risk, what lowered it, and the data that
    was missing (features without a contribution are left out). A score that the policy turns into a
    guarantee or a refusal then always carries the reasons that raised its risk, even when risk-lowering
    ones weigh more; ``factors_in_decision_order`` orders them for the decision. With ``top``, exactly the
    ``top`` largest contributions whatever their kind (a fixed number of columns, as the bulk CSV has).
    """
    ranked = sorted(explanation.contributions.items(), key=lambda item: abs(item[1]), reverse=True)
    factors = [_factor(name, features.get(name), contribution) for name, contribution in ranked]
    if top is not None:
        return factors[:top]
    kept: list[dict[str, Any]] = []
    per_kind: dict[str, int] = {}
    for factor in factors:
        if factor["contribution"] == 0 or per_kind.get(factor["direction"], 0) >= TOP_FACTORS:
            continue
        per_kind[factor["direction"]] = per_kind.get(factor["direction"], 0) + 1
        kept.append(factor)
    return kept


def factor_direction(factor: dict[str, Any]) -> str:
    """A stored factor's direction; factors stored before "missing" existed say so in their ``missing`` flag."""
    return MISSING if factor.get("missing") else factor["direction"]


def factors_in_decision_order(factors: list[dict[str, Any]], decision: str | None) -> list[dict[str, Any]]:
    """Stored factors in the order that fits the decision, each group largest first.

    An accept leads with what lowered the risk; a guarantee or a refusal with what raised it (the principal
    reasons an applicant is owed), then the missing data, then what lowered it; a referral with the missing
    data. Factors stored before "missing" was a direction of its own come out with it.
    """
    order = _ORDER_BY_DECISION.get(decision or "")
    normalised = [{**factor, "direction": factor_direction(factor)} for factor in factors]
    by_size = sorted(normalised, key=lambda f: abs(f["contribution"]), reverse=True)
    if order is None:
        return by_size
    return sorted(by_size, key=lambda f: order.index(f["direction"]) if f["direction"] in order else len(order))
