"""Prediction and exact TreeSHAP explanation with a stored XGBoost model.

Contributions come from ``Booster.predict(pred_contribs=True)``: exact TreeSHAP in
log-odds, so ``base_value + Σ contributions == logit(PD)`` holds by construction
and the PD is derived from that very sum.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from .features import FEATURES_BY_NAME, factor_text, is_missing
from .models import ModelVersion

TOP_FACTORS = 4


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    booster: xgb.Booster
    feature_names: list[str]
    categories: dict[str, list[str]]

    @property
    def feature_types(self) -> list[str]:
        return ["c" if name in self.categories else "q" for name in self.feature_names]


@dataclass(frozen=True)
class Explanation:
    probability_of_default: float
    base_value: float
    contributions: dict[str, float]

    @property
    def logit(self) -> float:
        return self.base_value + sum(self.contributions.values())


_cache: dict[int, LoadedModel] = {}
_cache_lock = threading.Lock()


def model_load(model_version: ModelVersion) -> LoadedModel:
    """The booster of a model version, parsed once per process (versions are immutable)."""
    loaded = _cache.get(model_version.pk)
    if loaded is None:
        booster = xgb.Booster()
        booster.load_model(bytearray(bytes(model_version.booster_ubj)))
        booster.set_param({"nthread": 1})  # one row at a time: threads cost more than they give
        loaded = LoadedModel(
            version_id=model_version.pk,
            booster=booster,
            feature_names=list(model_version.feature_names),
            categories={k: list(v) for k, v in (model_version.categories or {}).items()},
        )
        with _cache_lock:
            _cache[model_version.pk] = loaded
    return loaded


def encode_rows(feature_names: list[str], categories: dict[str, list[str]], rows: list[dict[str, Any]]) -> np.ndarray:
    """Rows of feature dicts as a float matrix: NaN for missing, category codes for categorical features.

    A category never seen in training becomes missing, which the trees route like any missing value.
    """
    codes = {name: {value: float(i) for i, value in enumerate(values)} for name, values in categories.items()}
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
        matrix, feature_names=loaded.feature_names, feature_types=loaded.feature_types,
        enable_categorical=bool(loaded.categories), missing=np.nan, nthread=1,
    )


def explain_one(loaded: LoadedModel, features: dict[str, Any]) -> Explanation:
    matrix = encode_rows(loaded.feature_names, loaded.categories, [features])
    contribs = loaded.booster.predict(dmatrix(loaded, matrix), pred_contribs=True)[0].astype(np.float64)
    values = {name: float(contribs[j]) for j, name in enumerate(loaded.feature_names)}
    base_value = float(contribs[-1])
    margin = base_value + float(contribs[:-1].sum())
    return Explanation(probability_of_default=1 / (1 + math.exp(-margin)), base_value=base_value, contributions=values)


def factors_from(
    explanation: Explanation, features: dict[str, Any], top: int = TOP_FACTORS
) -> list[dict[str, Any]]:
    """The top reasons by absolute contribution, in French and English, with direction and value."""
    ranked = sorted(explanation.contributions.items(), key=lambda item: abs(item[1]), reverse=True)
    factors = []
    for name, contribution in ranked[:top]:
        value = features.get(name)
        missing = is_missing(value)
        factors.append({
            "feature": name,
            "label": {"en": FEATURES_BY_NAME[name].label_en, "fr": FEATURES_BY_NAME[name].label_fr}
            if name in FEATURES_BY_NAME else {"en": name, "fr": name},
            "value": None if missing else value,
            "missing": missing,
            "direction": "increases_risk" if contribution > 0 else "decreases_risk",
            "contribution": round(contribution, 6),
            "text": {
                "en": factor_text(name, value, contribution, "en") if name in FEATURES_BY_NAME else name,
                "fr": factor_text(name, value, contribution, "fr") if name in FEATURES_BY_NAME else name,
            },
        })
    return factors
