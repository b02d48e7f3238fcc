"""Training an XGBoost PD model on labelled rows, with a time-ordered validation split.

The rows are put in time order; the latest 20 % are the validation set, which
chooses the tree depth, stops the boosting early, fits the probability
calibration (Platt scaling on the margin, kept only when it helps) and gives the
stored metrics, including reliability by decile of predicted PD. Monotone
constraints come from the catalogue's risk directions, so that, say, more
rejected direct debits can never lower a PD. Training is seeded: the same rows
give the same booster bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

from scoring.model.engine import calibrated_pd, encode_rows, sigmoid
from scoring.model.features import FEATURES_BY_NAME, catalogue_for

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.03,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1,
    "lambda": 3.0,
    "max_cat_to_onehot": 1,
    "seed": 42,
    # One thread: on books of this size a second thread saves little (10-25 %), while OpenMP's spin-waiting
    # makes training 20-100x slower when the cores are busy with other work (measured on the 2-core machine,
    # docs/benchmarks.md), and the same rows give the same booster bytes whatever the machine's core count.
    "nthread": 1,
}
# Unless the caller fixes the parameters, the validation set chooses the tree depth among these, by its
# log-loss at the early-stopping point: depth 1 is an additive model (a scorecard of step functions, the
# right shape when risk factors add up in log-odds, as they do in the synthetic book), depth 2 adds pairwise
# interactions, depth 4 more. Tuned with `manage.py evaluate_model --synthetic` over five seeds
# (docs/benchmarks.md): a small min_child_weight lets the trees isolate rare, strong signals (an open
# insolvency proceeding is 0.5 % of files; at PD ≈ 3 % a hessian weight of 5 needs ~150 files per leaf);
# the L2 penalty and learning rate keep the additive models smooth. Depth ≤ 4 keeps exact TreeSHAP cheap.
DEPTH_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"max_depth": 1, "eta": 0.1, "lambda": 10.0},
    {"max_depth": 2, "eta": 0.05, "lambda": 10.0},
    {"max_depth": 4, "eta": 0.03, "lambda": 3.0},
)
MAX_ROUNDS = 1000
EARLY_STOPPING_ROUNDS = 50
VALIDATION_SHARE = 0.2
MIN_ROWS = 200
MIN_PER_CLASS = 10

# Calibration is kept only if, fitted on 4/5 of the validation set and judged on the remaining fifth (five
# times over), it lowers the log-loss by at least this share and does not worsen the Brier score. Judged
# in-sample it would always "help": the uncalibrated model is one point of the family it is fitted over.
CALIBRATION_MIN_GAIN = 0.005
CALIBRATION_FOLDS = 5
CALIBRATION_MIN_DEFAULTS = 20


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
    calibration: dict[str, float] = field(default_factory=dict)


def discrimination_metrics(y: np.ndarray, pd: np.ndarray) -> dict[str, float]:
    auc = float(roc_auc_score(y, pd))
    fpr, tpr, _ = roc_curve(y, pd)
    return {
        "auc": round(auc, 4),
        "gini": round(2 * auc - 1, 4),
        "ks": round(float(np.max(tpr - fpr)), 4),
        "brier": round(float(brier_score_loss(y, pd)), 5),
        "logloss": round(float(log_loss(y, np.clip(pd, 1e-15, 1 - 1e-15), labels=[0, 1])), 5),
        "default_rate": round(float(np.mean(y)), 4),
        "mean_pd": round(float(np.mean(pd)), 4),
    }


def reliability_by_decile(y: np.ndarray, pd: np.ndarray) -> list[dict[str, float]]:
    """Mean predicted PD against the observed default rate in ten equal-count bins of predicted PD."""
    order = np.argsort(pd, kind="stable")
    table = []
    for decile, idx in enumerate(np.array_split(order, 10), start=1):
        if len(idx) == 0:
            continue
        table.append(
            {
                "decile": decile,
                "n": len(idx),
                "mean_pd": round(float(np.mean(pd[idx])), 5),
                "observed_rate": round(float(np.mean(y[idx])), 5),
            }
        )
    return table


def metrics_lines(metrics: dict[str, Any]) -> list[str]:
    """The stored validation metrics as an analyst reads them."""
    lines = [
        f"Validation ({metrics['n_valid']} latest files; trained on {metrics['n_train']}): "
        f"AUC {metrics['auc']:.4f}, Gini {metrics['gini']:.4f}, KS {metrics['ks']:.4f}, "
        f"Brier {metrics['brier']:.5f}, log-loss {metrics['logloss']:.5f}; "
        f"default rate {metrics['default_rate']:.2%}, mean PD {metrics['mean_pd']:.2%}.",
        f"{metrics['trees']} trees of depth {metrics.get('max_depth', '?')}; calibration: "
        + ("applied (Platt on the margin)" if metrics.get("calibration", {}).get("kept") else "not needed")
        + ".",
    ]
    deciles = metrics.get("reliability_by_decile") or []
    if deciles:
        lines.append("Reliability by decile of predicted PD (mean PD / observed default rate):")
        lines.append("  " + "  ".join(f"{d['decile']}: {d['mean_pd']:.3f}/{d['observed_rate']:.3f}" for d in deciles))
    return lines


def platt_fit(margin: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) maximising the likelihood of ``sigmoid(a · margin + b)``: Newton steps on two parameters."""
    x = np.column_stack([margin, np.ones_like(margin)])
    theta = np.array([1.0, 0.0])
    for _ in range(50):
        p = sigmoid(x @ theta)
        gradient = x.T @ (p - y)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def _logloss(y: np.ndarray, pd: np.ndarray) -> float:
    return float(log_loss(y, np.clip(pd, 1e-15, 1 - 1e-15), labels=[0, 1]))


def calibration_check(margin: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
    """Platt scaling fitted on the validation margins, kept only if it helps out of fold.

    Returns the calibration to store (``{}`` when it did not help) and the figures that decided it.
    """
    raw = sigmoid(margin)
    report: dict[str, Any] = {
        "method": "platt_on_margin",
        "brier_raw": round(float(brier_score_loss(y, raw)), 6),
        "logloss_raw": round(_logloss(y, raw), 6),
    }
    if y.sum() < CALIBRATION_MIN_DEFAULTS:
        report.update(kept=False, reason=f"fewer than {CALIBRATION_MIN_DEFAULTS} defaults in validation")
        return {}, report
    folds = np.arange(len(y)) % CALIBRATION_FOLDS
    out_of_fold = np.empty_like(raw)
    for k in range(CALIBRATION_FOLDS):
        fit = folds != k
        a, b = platt_fit(margin[fit], y[fit])
        out_of_fold[~fit] = sigmoid(a * margin[~fit] + b)
    a, b = platt_fit(margin, y)
    brier_cal = float(brier_score_loss(y, out_of_fold))
    logloss_cal = _logloss(y, out_of_fold)
    gain = 1 - logloss_cal / report["logloss_raw"]
    kept = gain >= CALIBRATION_MIN_GAIN and brier_cal <= report["brier_raw"]
    report.update(
        brier_calibrated_out_of_fold=round(brier_cal, 6),
        logloss_calibrated_out_of_fold=round(logloss_cal, 6),
        logloss_gain=round(gain, 4),
        a=round(a, 6),
        b=round(b, 6),
        kept=bool(kept),
        reason=(
            "lowers the out-of-fold log-loss"
            if kept
            else f"gain below {CALIBRATION_MIN_GAIN:.1%} of log-loss or Brier not lower"
        ),
    )
    return ({"a": a, "b": b} if kept else {}), report


def monotone_constraints_for(feature_names: list[str], categorical: set[str], directions: dict[str, int]) -> list[int]:
    """+1 / -1 per numeric feature from its risk direction; 0 for categorical or undirected features."""
    return [0 if name in categorical else int(np.sign(directions.get(name, 0))) for name in feature_names]


def train_segment(segment: str, rows: list[dict[str, Any]], labels: list[int], dates: list[Any]) -> TrainedModel:
    """``train_model`` on the segment's feature catalogue: its features, categorical ones and risk directions."""
    catalogue = catalogue_for(segment)
    return train_model(
        rows,
        labels,
        dates,
        feature_names=[f.name for f in catalogue],
        categorical={f.name for f in catalogue if f.categorical},
        directions={f.name: f.direction for f in catalogue},
    )


def train_model(
    rows: list[dict[str, Any]],
    labels: list[int],
    dates: list[Any],
    *,
    feature_names: list[str],
    categorical: set[str],
    directions: dict[str, int] | None = None,
    params: dict[str, Any] | None = None,
    fixed_rounds: int | None = None,
) -> TrainedModel:
    """Train on rows ordered by ``dates``: the latest 20 % choose the depth, stop the boosting early and
    calibrate.

    ``directions`` (+1 / -1 / 0 per feature) become monotone constraints; categorical features get 0.
    ``params`` override ``DEFAULT_PARAMS`` and skip the depth search; ``fixed_rounds`` trains exactly that
    many trees, without early stopping (benchmarks).
    """
    if len(rows) != len(labels) or len(rows) != len(dates):
        raise ValueError("rows, labels and dates must have the same length")
    order = np.argsort(np.asarray(dates), kind="stable")
    rows = [rows[i] for i in order]
    y = np.asarray(labels, dtype=np.float64)[order]
    sorted_dates = [dates[i] for i in order]

    categories = {
        name: sorted({str(row[name]) for row in rows if row.get(name) not in (None, "")})
        for name in feature_names
        if name in categorical
    }
    if directions is None:
        directions = {name: FEATURES_BY_NAME[name].direction for name in feature_names if name in FEATURES_BY_NAME}
    trained = train_matrix(
        encode_rows(feature_names, categories, rows),
        y,
        feature_names=feature_names,
        categories=categories,
        monotone_constraints=monotone_constraints_for(feature_names, categorical, directions),
        params=params,
        fixed_rounds=fixed_rounds,
    )
    trained.training_window = {"from": str(sorted_dates[0]), "to": str(sorted_dates[-1])}
    return trained


def train_matrix(
    matrix: np.ndarray,
    y: np.ndarray,
    *,
    feature_names: list[str],
    categories: dict[str, list[str]],
    monotone_constraints: list[int],
    params: dict[str, Any] | None = None,
    fixed_rounds: int | None = None,
) -> TrainedModel:
    """Train on an encoded matrix whose rows are already in time order (``engine.encode_rows``' encoding)."""
    y = np.asarray(y, dtype=np.float64)
    cut = _time_split(y)
    feature_types = ["c" if name in categories else "q" for name in feature_names]

    def dm(x: np.ndarray, labels: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(
            x,
            label=labels,
            feature_names=feature_names,
            feature_types=feature_types,
            enable_categorical=bool(categories),
            missing=np.nan,
        )

    dtrain, dvalid = dm(matrix[:cut], y[:cut]), dm(matrix[cut:], y[cut:])
    constraints = "(" + ",".join(str(c) for c in monotone_constraints) + ")"
    if params:
        candidates = [dict(DEFAULT_PARAMS, **params)]
    else:
        candidates = [dict(DEFAULT_PARAMS, **candidate) for candidate in DEPTH_CANDIDATES]
    fits = [
        _fit(dict(candidate, monotone_constraints=constraints), dtrain, dvalid, y[cut:], fixed_rounds)
        for candidate in candidates
    ]
    _, booster, params, valid_margin = min(fits, key=lambda fit: fit[0])

    calibration, calibration_report = calibration_check(valid_margin, y[cut:])
    metrics = _validation_metrics(y, cut, booster, params, fits, calibration, calibration_report, valid_margin)
    digest = hashlib.sha256(np.ascontiguousarray(matrix).tobytes() + y.tobytes()).hexdigest()
    return TrainedModel(
        booster_ubj=bytes(booster.save_raw("ubj")),
        feature_names=list(feature_names),
        categories=categories,
        monotone_constraints=list(monotone_constraints),
        params={k: v for k, v in params.items() if k != "nthread"},
        metrics=metrics,
        training_window={},
        data_hash=digest,
        calibration=calibration,
    )


def _time_split(y: np.ndarray) -> int:
    """Where the time-ordered validation set starts; a ValueError when the labels cannot train a model."""
    n = len(y)
    if n < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} labelled rows to train, got {n}")
    if y.sum() < MIN_PER_CLASS or (n - y.sum()) < MIN_PER_CLASS:
        raise ValueError(
            f"need at least {MIN_PER_CLASS} defaults and {MIN_PER_CLASS} non-defaults to train, "
            f"got {int(y.sum())} and {int(n - y.sum())}"
        )
    cut = int(n * (1 - VALIDATION_SHARE))
    if y[cut:].sum() == 0 or y[:cut].sum() == 0:
        raise ValueError("the time-ordered split leaves no defaults on one side; add labelled history")
    return cut


Fit = tuple[float, xgb.Booster, dict[str, Any], np.ndarray]  # validation log-loss, booster, params, margins


def _fit(
    params: dict[str, Any], dtrain: xgb.DMatrix, dvalid: xgb.DMatrix, valid_y: np.ndarray, fixed_rounds: int | None
) -> Fit:
    if fixed_rounds is not None:
        booster = xgb.train(params, dtrain, num_boost_round=fixed_rounds, verbose_eval=False)
    else:
        booster = xgb.train(
            params,
            dtrain,
            num_boost_round=MAX_ROUNDS,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            verbose_eval=False,
        )
        # Keep only the trees up to the best iteration, so the stored model is the one measured.
        booster = booster[: booster.best_iteration + 1]
    margin = booster.predict(dvalid, output_margin=True).astype(np.float64)
    return _logloss(valid_y, sigmoid(margin)), booster, params, margin


def _validation_metrics(
    y: np.ndarray,
    cut: int,
    booster: xgb.Booster,
    params: dict[str, Any],
    fits: list[Fit],
    calibration: dict[str, float],
    calibration_report: dict[str, Any],
    valid_margin: np.ndarray,
) -> dict[str, Any]:
    valid_y = y[cut:]
    valid_pd = calibrated_pd(valid_margin, calibration)
    metrics: dict[str, Any] = discrimination_metrics(valid_y, valid_pd)
    metrics.update(
        {
            "n_train": int(cut),
            "n_valid": int(len(y) - cut),
            "trees": int(booster.num_boosted_rounds()),
            "max_depth": int(params["max_depth"]),
            "validation": "time-ordered: the latest 20 % of applications, which also chose the depth, stopped the "
            "boosting and fitted the calibration (so these figures are slightly optimistic; "
            "`evaluate_model` measures an untouched out-of-time holdout)",
            "depth_search": [
                {
                    "max_depth": int(c["max_depth"]),
                    "trees": int(b.num_boosted_rounds()),
                    "valid_logloss": round(loss, 6),
                }
                for loss, b, c, _ in fits
            ],
            "reliability_by_decile": reliability_by_decile(valid_y, valid_pd),
            "calibration": calibration_report,
        }
    )
    return metrics
