"""Training an XGBoost PD model on labelled rows, with a time-ordered validation split."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from .engine import encode_rows
from .features import FEATURES_BY_NAME

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 5,
    "lambda": 1.0,
    "max_cat_to_onehot": 1,
    "seed": 42,
    "nthread": 2,
}
MAX_ROUNDS = 1000
EARLY_STOPPING_ROUNDS = 50
VALIDATION_SHARE = 0.2


@dataclass
class TrainedModel:
    booster_ubj: bytes
    feature_names: list[str]
    categories: dict[str, list[str]]
    monotone_constraints: list[int]
    params: dict[str, Any]
    metrics: dict[str, Any]
    training_window: dict[str, str]
    data_hash: str


def discrimination_metrics(y: np.ndarray, pd: np.ndarray) -> dict[str, float]:
    auc = float(roc_auc_score(y, pd))
    fpr, tpr, _ = roc_curve(y, pd)
    return {
        "auc": round(auc, 4),
        "gini": round(2 * auc - 1, 4),
        "ks": round(float(np.max(tpr - fpr)), 4),
        "brier": round(float(brier_score_loss(y, pd)), 5),
        "default_rate": round(float(np.mean(y)), 4),
        "mean_pd": round(float(np.mean(pd)), 4),
    }


def train_model(
    rows: list[dict[str, Any]],
    labels: list[int],
    dates: list[str],
    *,
    feature_names: list[str],
    categorical: set[str],
    directions: dict[str, int] | None = None,
) -> TrainedModel:
    """Train on rows ordered by ``dates``: the latest 20 % validate and stop the boosting early.

    ``directions`` (+1 / -1 / 0 per feature) become monotone constraints; categorical features get 0.
    """
    if len(rows) != len(labels) or len(rows) != len(dates):
        raise ValueError("rows, labels and dates must have the same length")
    y_all = np.asarray(labels, dtype=np.float64)
    if len(rows) < 200:
        raise ValueError(f"need at least 200 labelled rows to train, got {len(rows)}")
    if y_all.sum() < 10 or (len(y_all) - y_all.sum()) < 10:
        raise ValueError("need at least 10 defaults and 10 non-defaults to train")

    order = np.argsort(np.asarray(dates), kind="stable")
    rows = [rows[i] for i in order]
    y_all = y_all[order]
    sorted_dates = [dates[i] for i in order]

    categories = {
        name: sorted({str(row[name]) for row in rows if row.get(name) not in (None, "")})
        for name in feature_names if name in categorical
    }
    directions = directions or {name: FEATURES_BY_NAME[name].direction
                                for name in feature_names if name in FEATURES_BY_NAME}
    constraints = [0 if name in categorical else int(directions.get(name, 0)) for name in feature_names]
    matrix = encode_rows(feature_names, categories, rows)
    feature_types = ["c" if name in categorical else "q" for name in feature_names]

    cut = int(len(rows) * (1 - VALIDATION_SHARE))
    if y_all[cut:].sum() == 0 or y_all[:cut].sum() == 0:
        raise ValueError("the time-ordered split leaves no defaults on one side; add labelled history")

    def dm(x: np.ndarray, y: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, feature_names=feature_names, feature_types=feature_types,
                           enable_categorical=bool(categories), missing=np.nan)

    dtrain, dvalid = dm(matrix[:cut], y_all[:cut]), dm(matrix[cut:], y_all[cut:])
    params = dict(DEFAULT_PARAMS, monotone_constraints="(" + ",".join(str(c) for c in constraints) + ")")
    booster = xgb.train(
        params, dtrain, num_boost_round=MAX_ROUNDS, evals=[(dvalid, "valid")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS, verbose_eval=False,
    )
    # Keep only the trees up to the best iteration, so the stored model is the one measured.
    booster = booster[: booster.best_iteration + 1]
    valid_pd = booster.predict(dvalid)
    metrics = discrimination_metrics(y_all[cut:], valid_pd)
    metrics.update({
        "n_train": int(cut), "n_valid": int(len(rows) - cut), "trees": int(booster.num_boosted_rounds()),
        "validation": "time-ordered: latest 20 % of applications",
    })
    digest = hashlib.sha256(np.ascontiguousarray(matrix).tobytes() + y_all.tobytes()).hexdigest()
    return TrainedModel(
        booster_ubj=bytes(booster.save_raw("ubj")),
        feature_names=list(feature_names),
        categories=categories,
        monotone_constraints=constraints,
        params={k: v for k, v in params.items() if k != "nthread"},
        metrics=metrics,
        training_window={"from": str(sorted_dates[0]), "to": str(sorted_dates[-1])},
        data_hash=digest,
    )
