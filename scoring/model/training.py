"""Training a PD model on labelled rows: k-fold cross-validation on small books, a holdout on large ones.

On a small book (up to ``CROSS_VALIDATION_MAX_ROWS`` labelled rows) a single 20 %
holdout wastes data and makes the depth choice and early stopping noisy, so k
folds choose among the candidates — XGBoost of depth 1, 2 and 4, an additive
challenger, and a linear scorecard compiled into trees (below) — and the number
of trees; the winner is refitted on every row with those settings, and the
out-of-fold predictions give the stored estimate and fit the probability
calibration (Platt scaling on the margin, kept only when it helps). The folds are
time-ordered when the rows have dates (each fold trains on the files before the
ones it validates), stratified otherwise. On a large book the latest 20 % are the
validation set, as before: there a holdout is plentiful. Either way the stored
metrics include reliability by decile of predicted PD.

Monotone constraints come from the catalogue's risk directions, so that, say,
more rejected direct debits can never lower a PD. Every candidate is an XGBoost
tree ensemble, stored in XGBoost's format, so the engine's exact TreeSHAP explains
whichever wins. Training is seeded: the same rows give the same booster bytes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import xgboost as xgb
from scipy.optimize import minimize
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

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
# Unless the caller fixes the parameters, the validation set (the folds, on a small book) chooses the tree depth
# among these, by its log-loss at the early-stopping point: depth 1 is an additive model (a scorecard of step
# functions, the right shape when risk factors add up in log-odds, as they do in the synthetic book), depth 2
# adds pairwise interactions, depth 4 more. Tuned with `manage.py evaluate_model --synthetic` over five seeds
# (docs/benchmarks.md): a small min_child_weight lets the trees isolate rare, strong signals (an open
# insolvency proceeding is 0.5 % of files; at PD ≈ 3 % a hessian weight of 5 needs ~150 files per leaf);
# the L2 penalty and learning rate keep the additive models smooth. Depth ≤ 4 keeps exact TreeSHAP cheap.
DEPTH_CANDIDATES: tuple[dict[str, Any], ...] = (
    {"max_depth": 1, "eta": 0.1, "lambda": 10.0},
    {"max_depth": 2, "eta": 0.05, "lambda": 10.0},
    {"max_depth": 4, "eta": 0.03, "lambda": 3.0},
)
# On small books the folds also try this challenger: an additive model (depth-1 trees: a sum of one step function
# per feature, explained exactly by TreeSHAP, monotone where the catalogue says so) whose text columns split one
# category against the rest, as a one-hot logistic regression weighs them, rather than into learnt subsets of
# categories, which overfit when a category has a few dozen files. It is regularised by its shape, a small
# learning rate and the folds' early stopping rather than by a large L2 penalty: on a book with a few percent of
# defaults the hessian sums are small, and lambda = 10-30 shrank the rare strong signals (the synthetic books'
# AUC went from 0.868 to 0.881 at 5,000 files with lambda 1; docs/benchmarks.md).
ADDITIVE_CHALLENGER: dict[str, Any] = {
    "max_depth": 1,
    "eta": 0.05,
    "lambda": 1.0,
    "min_child_weight": 1,
    "max_cat_to_onehot": 64,
}
SMALL_BOOK_CHALLENGERS: tuple[dict[str, Any], ...] = (ADDITIVE_CHALLENGER,)
MAX_ROUNDS = 1000
EARLY_STOPPING_ROUNDS = 50
VALIDATION_SHARE = 0.2
# Up to this many labelled rows a book is "small": k-fold cross-validation instead of a single holdout. Beyond
# it the latest 20 % hold thousands of files, and the folds would cost about five times the training time.
CROSS_VALIDATION_MAX_ROWS = 20_000
CV_FOLDS = 5
# Time-ordered folds validate the latest half of the book in CV_FOLDS consecutive blocks, each fold training on
# every file before its block: the folds train on 50-90 % of the rows, close to the refit's 100 %, so the number
# of trees they choose suits it. (Sliding over the whole book would train the first fold on a sixth of it.)
TIME_FOLDS_SHARE = 0.5
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
    figures = (
        f"AUC {metrics['auc']:.4f}, Gini {metrics['gini']:.4f}, KS {metrics['ks']:.4f}, "
        f"Brier {metrics['brier']:.5f}, log-loss {metrics['logloss']:.5f}; "
        f"default rate {metrics['default_rate']:.2%}, mean PD {metrics['mean_pd']:.2%}."
    )
    if metrics.get("estimate") == "out_of_fold":
        lines = [
            f"Out-of-fold estimate ({metrics['folds']} {metrics['fold_order']} folds over {metrics['n_valid']} "
            f"files; the model is then refitted on all {metrics['n_train']}): {figures}",
            f"Per fold AUC: {', '.join(f'{auc:.4f}' for auc in metrics.get('fold_auc', []))}.",
        ]
    else:
        lines = [f"Validation ({metrics['n_valid']} latest files; trained on {metrics['n_train']}): {figures}"]
    lines.append(
        f"{metrics['trees']} trees of depth {metrics.get('max_depth', '?')}"
        + (f" ({metrics['candidate']})" if metrics.get("candidate") else "")
        + "; calibration: "
        + ("applied (Platt on the margin)" if metrics.get("calibration", {}).get("kept") else "not needed")
        + "."
    )
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
    folds: int | None = None,
) -> TrainedModel:
    """Train on rows ordered by ``dates``: time-ordered folds on a small book, else the latest 20 % validate.

    ``directions`` (+1 / -1 / 0 per feature) become monotone constraints; categorical features get 0.
    ``params`` override ``DEFAULT_PARAMS`` and skip the depth search; ``fixed_rounds`` trains exactly that
    many trees, without early stopping (benchmarks); ``folds`` as for ``train_matrix``.
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
        folds=folds,
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
    folds: int | None = None,
    time_ordered: bool = True,
) -> TrainedModel:
    """Train on an encoded matrix (``engine.encode_rows``' encoding), rows in time order when ``time_ordered``.

    ``folds``: None chooses (``CV_FOLDS``-fold cross-validation up to ``CROSS_VALIDATION_MAX_ROWS`` rows, the
    time-ordered holdout above), 1 forces the holdout, k ≥ 2 forces k folds. Without a time order the folds
    are stratified; the holdout always needs one.
    """
    y = np.asarray(y, dtype=np.float64)
    _check_labels(y)
    if folds is None:
        folds = CV_FOLDS if len(y) <= CROSS_VALIDATION_MAX_ROWS else 1
    if folds < 1:
        raise ValueError(f"folds must be 1 (a holdout) or at least 2, got {folds}")
    feature_types = ["c" if name in categories else "q" for name in feature_names]
    dall = xgb.DMatrix(
        matrix,
        label=y,
        feature_names=feature_names,
        feature_types=feature_types,
        enable_categorical=bool(categories),
        missing=np.nan,
    )
    constraints = "(" + ",".join(str(c) for c in monotone_constraints) + ")"
    if params:
        candidates = [dict(DEFAULT_PARAMS, **params)]
    else:
        candidates = [dict(DEFAULT_PARAMS, **candidate) for candidate in DEPTH_CANDIDATES]
        if folds > 1:
            candidates += [dict(DEFAULT_PARAMS, **challenger) for challenger in SMALL_BOOK_CHALLENGERS]
    candidates = [dict(candidate, monotone_constraints=constraints) for candidate in candidates]

    if folds == 1:
        booster, params, metrics, calibration = _train_on_holdout(dall, y, candidates, fixed_rounds)
    else:
        splits = time_ordered_folds(len(y), folds) if time_ordered else stratified_folds(y, folds)
        scorecards = [] if params or fixed_rounds else [scorecard_params(c, constraints) for c in SCORECARD_C]
        booster, params, metrics, calibration = _train_cross_validated(
            dall, matrix, y, candidates, scorecards, splits, fixed_rounds
        )
        metrics["fold_order"] = "time-ordered" if time_ordered else "stratified"
        metrics["validation"] = (
            f"out of fold: {folds} {metrics['fold_order']} folds chose the depth and the number of trees and "
            "fitted the calibration; the model was then refitted on every row with those settings. "
            + (
                f"Each fold validates a block of the latest {TIME_FOLDS_SHARE:.0%} of files and trains on every "
                "file before it."
                if time_ordered
                else "Each file is validated once, by a model that did not see it."
            )
        )
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


def time_ordered_folds(n: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row indices of k folds over rows in time order: the latest ``TIME_FOLDS_SHARE`` of
    the rows in k consecutive blocks, each validated by a model trained on every row before it."""
    first = n - int(n * TIME_FOLDS_SHARE)
    bounds = np.linspace(first, n, k + 1).round().astype(int)
    return [(np.arange(0, start), np.arange(start, end)) for start, end in pairwise(bounds.tolist())]


def stratified_folds(y: np.ndarray, k: int, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row indices of k folds with the same default rate, each row validated once (seeded)."""
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(train, valid) for train, valid in splitter.split(np.zeros(len(y)), y)]


def _check_labels(y: np.ndarray) -> None:
    n = len(y)
    if n < MIN_ROWS:
        raise ValueError(f"need at least {MIN_ROWS} labelled rows to train, got {n}")
    if y.sum() < MIN_PER_CLASS or (n - y.sum()) < MIN_PER_CLASS:
        raise ValueError(
            f"need at least {MIN_PER_CLASS} defaults and {MIN_PER_CLASS} non-defaults to train, "
            f"got {int(y.sum())} and {int(n - y.sum())}"
        )


def _train_on_holdout(
    dall: xgb.DMatrix, y: np.ndarray, candidates: list[dict[str, Any]], fixed_rounds: int | None
) -> tuple[xgb.Booster, dict[str, Any], dict[str, Any], dict[str, float]]:
    """The large-book path: the latest 20 % choose the depth, stop the boosting early and calibrate."""
    cut = _time_split(y)
    dtrain, dvalid = dall.slice(np.arange(cut)), dall.slice(np.arange(cut, len(y)))
    fits = [_fit(candidate, dtrain, dvalid, y[cut:], fixed_rounds) for candidate in candidates]
    _, booster, params, valid_margin = min(fits, key=lambda fit: fit[0])
    calibration, calibration_report = calibration_check(valid_margin, y[cut:])
    metrics = _validation_metrics(y, cut, booster, params, fits, calibration, calibration_report, valid_margin)
    return booster, params, metrics, calibration


@dataclass
class CrossValidated:
    """One candidate's settings judged over the folds."""

    params: dict[str, Any]
    trees: int
    logloss: float  # out of fold, pooled over the validated rows
    margin: np.ndarray  # out-of-fold margins (NaN on rows no fold validates)
    fold_auc: list[float]


def cross_validate(
    params: dict[str, Any],
    dall: xgb.DMatrix,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    fixed_rounds: int | None = None,
) -> CrossValidated:
    """Boost one model per fold in step and stop when the pooled out-of-fold log-loss has not improved for
    ``EARLY_STOPPING_ROUNDS`` rounds: one number of trees for all folds, the one the refit will use."""
    packs = []
    for train, valid in splits:
        dtrain, dvalid = dall.slice(train), dall.slice(valid)
        packs.append((xgb.Booster(params, [dtrain, dvalid]), dtrain, dvalid))
    weights = np.array([len(valid) for _, valid in splits], dtype=np.float64)
    weights /= weights.sum()
    best_loss, best_round = np.inf, 0
    for i in range(fixed_rounds or MAX_ROUNDS):
        losses = []
        for booster, dtrain, dvalid in packs:
            booster.update(dtrain, i)
            losses.append(float(booster.eval_set([(dvalid, "valid")], i).rsplit(":", 1)[1]))
        loss = float(weights @ np.array(losses))
        if loss < best_loss:
            best_loss, best_round = loss, i
        elif fixed_rounds is None and i - best_round >= EARLY_STOPPING_ROUNDS:
            break
    trees = fixed_rounds or best_round + 1
    margin = np.full(len(y), np.nan)
    fold_auc = []
    for (booster, _, dvalid), (_, valid) in zip(packs, splits, strict=True):
        margin[valid] = booster.predict(dvalid, output_margin=True, iteration_range=(0, trees))
        if 0 < y[valid].sum() < len(valid):
            fold_auc.append(round(float(roc_auc_score(y[valid], margin[valid])), 4))
    validated = ~np.isnan(margin)
    return CrossValidated(
        params=params,
        trees=trees,
        logloss=_logloss(y[validated], sigmoid(margin[validated])),
        margin=margin,
        fold_auc=fold_auc,
    )


def _train_cross_validated(
    dall: xgb.DMatrix,
    matrix: np.ndarray,
    y: np.ndarray,
    candidates: list[dict[str, Any]],
    scorecards: list[dict[str, Any]],
    splits: list[tuple[np.ndarray, np.ndarray]],
    fixed_rounds: int | None,
) -> tuple[xgb.Booster, dict[str, Any], dict[str, Any], dict[str, float]]:
    """The small-book path: the folds choose the candidate and its number of trees; refit on every row."""
    for train, valid in splits:
        if y[train].sum() == 0 or y[train].sum() == len(train) or len(valid) == 0:
            raise ValueError("a fold trains on a single class; add labelled history or use fewer folds")
    results = [cross_validate(candidate, dall, y, splits, fixed_rounds) for candidate in candidates]
    results += [cross_validate_scorecard(params, dall, matrix, y, splits) for params in scorecards]
    best = min(results, key=lambda result: result.logloss)
    if "scorecard_c" in best.params:
        booster = scorecard_train(best.params, dall, matrix, y)
        best.trees = booster.num_boosted_rounds()
    else:
        booster = xgb.train(best.params, dall, num_boost_round=best.trees, verbose_eval=False)

    validated = ~np.isnan(best.margin)
    oof_y, oof_margin = y[validated], best.margin[validated]
    calibration, calibration_report = calibration_check(oof_margin, oof_y)
    calibration_report["fitted_on"] = "out-of-fold margins"
    oof_pd = calibrated_pd(oof_margin, calibration)
    metrics: dict[str, Any] = discrimination_metrics(oof_y, oof_pd)
    metrics.update(
        {
            "estimate": "out_of_fold",
            "folds": len(splits),
            "fold_auc": best.fold_auc,
            "n_train": len(y),
            "n_valid": int(validated.sum()),
            "trees": best.trees,
            "max_depth": _depth(booster) if "scorecard_c" in best.params else int(best.params["max_depth"]),
            "candidate": _candidate_name(best.params),
            "depth_search": [
                {
                    "candidate": _candidate_name(result.params),
                    "trees": result.trees,
                    "oof_logloss": round(result.logloss, 6),
                    "oof_auc": round(float(roc_auc_score(oof_y, result.margin[validated])), 4),
                }
                for result in results
            ],
            "reliability_by_decile": reliability_by_decile(oof_y, oof_pd),
            "calibration": calibration_report,
        }
    )
    return booster, best.params, metrics, calibration


def _candidate_name(params: dict[str, Any]) -> str:
    if "scorecard_c" in params:
        return f"linear scorecard, C = {params['scorecard_c']}"
    if int(params["max_depth"]) == 1 and int(params.get("max_cat_to_onehot", 1)) > 1:
        return "additive, one-vs-rest categories"
    return "additive" if int(params["max_depth"]) == 1 else f"depth {int(params['max_depth'])}"


def _time_split(y: np.ndarray) -> int:
    """Where the time-ordered validation set starts; a ValueError when it leaves a side without defaults."""
    cut = int(len(y) * (1 - VALIDATION_SHARE))
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


# --- the linear scorecard challenger -----------------------------------------------------------------------------
#
# A regularised logistic regression on the engine's encoding (numeric columns winsorised, standardised, the
# median and a missing indicator for gaps; text columns one-hot), with the catalogue's risk directions as sign
# bounds on the weights, compiled into an XGBoost tree ensemble: per numeric feature one tree that holds its
# weight times the value as a staircase over SCORECARD_BINS quantile bins (and the missing weight in a leaf of
# its own), per category one single-split tree. Each tree splits on one feature only, so exact TreeSHAP gives
# each feature exactly its own term: the engine explains it as it explains any booster, and a monotone weight
# makes a monotone staircase. On a small book whose risk adds up in log-odds, a straight line per feature is
# estimated with far less noise than boosted steps (docs/benchmarks.md).

SCORECARD_C = (0.03, 0.1, 0.3, 1.0)  # inverse L2 strength, as scikit-learn's C; the folds choose
SCORECARD_BINS = 64
_WINSOR = (0.005, 0.995)
_ALL_FINITE = 3.0e38  # a split threshold every finite float32 value is below: only a gap goes the other way


@dataclass
class Scorecard:
    intercept: float
    numeric: list[tuple[int, np.ndarray, np.ndarray, float]]  # feature, thresholds, value per bin, missing value
    categorical: list[tuple[int, dict[int, float], float]]  # feature, weight per category code, missing value


def scorecard_fit(
    matrix: np.ndarray, y: np.ndarray, categorical: list[bool], constraints: list[int], c: float
) -> Scorecard:
    """The penalised, sign-bounded logistic regression, as a ``Scorecard`` of per-feature terms."""
    columns: list[np.ndarray] = []
    bounds: list[tuple[float | None, float | None]] = []
    terms: list[tuple[str, int, Any]] = []
    for j in range(matrix.shape[1]):
        values = matrix[:, j]
        missing = np.isnan(values)
        if missing.all():
            continue
        if categorical[j]:
            codes = [int(code) for code in np.unique(values[~missing])]
            columns += [(values == code).astype(np.float64) for code in codes]
            bounds += [(None, None)] * len(codes)
            terms.append(("categorical", j, codes))
        else:
            lo, hi = np.quantile(values[~missing], _WINSOR)
            clipped = np.clip(values, lo, hi)
            centre, scale = float(np.median(clipped[~missing])), float(np.std(clipped[~missing]))
            if hi <= lo or scale == 0:
                terms.append(("constant", j, None))
            else:
                columns.append(np.where(missing, 0.0, (clipped - centre) / scale))
                sign = constraints[j]
                bounds.append((0.0, None) if sign > 0 else (None, 0.0) if sign < 0 else (None, None))
                grid = np.unique(np.quantile(clipped[~missing], np.linspace(0, 1, SCORECARD_BINS + 1)))
                terms.append(("numeric", j, (centre, scale, grid)))
        if missing.any():
            columns.append(missing.astype(np.float64))
            bounds.append((None, None))
            terms.append(("missing", j, None))
    x = np.column_stack(columns) if columns else np.zeros((len(y), 0))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        log_terms = np.logaddexp(0, z) - y * z
        residual = sigmoid(z) - y
        return float(c * log_terms.sum() + 0.5 * w @ w), np.append(c * (x.T @ residual) + w, c * residual.sum())

    start = np.zeros(x.shape[1] + 1)
    start[-1] = np.log(y.mean() / (1 - y.mean()))
    theta = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[*bounds, (None, None)]).x
    weights, column = theta[:-1], 0
    numeric: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    category_weights: dict[int, dict[int, float]] = {}
    missing_values: dict[int, float] = {}
    for kind, j, detail in terms:
        if kind == "categorical":
            category_weights[j] = {code: float(weights[column + i]) for i, code in enumerate(detail)}
            column += len(detail)
        elif kind == "numeric":
            centre, scale, grid = detail
            numeric[j] = ((grid[:-1] + grid[1:]) / 2, weights[column] * (grid - centre) / scale)
            column += 1
        elif kind == "missing":
            missing_values[j] = float(weights[column])
            column += 1
    return Scorecard(
        intercept=float(theta[-1]),
        numeric=[(j, t, v, missing_values.get(j, 0.0)) for j, (t, v) in numeric.items()],
        categorical=[(j, w, missing_values.get(j, 0.0)) for j, w in category_weights.items()],
    )


class _TreeBuilder:
    """One tree in XGBoost's JSON model schema, node by node; covers (training rows per node) feed TreeSHAP."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []

    def leaf(self, value: float, cover: float, parent: int) -> int:
        self.nodes.append({"leaf": float(value), "cover": cover, "parent": parent})
        return len(self.nodes) - 1

    def split(self, feature: int, cover: float, parent: int, *, threshold: float = 0.0, categories=None) -> int:
        self.nodes.append(
            {"feature": feature, "threshold": threshold, "categories": categories, "cover": cover, "parent": parent}
        )
        return len(self.nodes) - 1

    def json(self, tree_id: int, num_feature: int) -> dict[str, Any]:
        self._breadth_first()
        n = len(self.nodes)
        out: dict[str, Any] = {
            "base_weights": [node.get("leaf", 0.0) for node in self.nodes],
            "categories": [],
            "categories_nodes": [],
            "categories_segments": [],
            "categories_sizes": [],
            "default_left": [int(node.get("default_left", 0)) for node in self.nodes],
            "id": tree_id,
            "left_children": [node.get("left", -1) for node in self.nodes],
            "loss_changes": [0.0] * n,
            "parents": [2147483647 if node["parent"] < 0 else node["parent"] for node in self.nodes],
            "right_children": [node.get("right", -1) for node in self.nodes],
            "split_conditions": [node["leaf"] if "leaf" in node else node["threshold"] for node in self.nodes],
            "split_indices": [node.get("feature", 0) for node in self.nodes],
            "split_type": [int(node.get("categories") is not None) for node in self.nodes],
            "sum_hessian": [max(float(node["cover"]), 1e-3) for node in self.nodes],
            "tree_param": {
                "num_deleted": "0",
                "num_feature": str(num_feature),
                "num_nodes": str(n),
                "size_leaf_vector": "1",
            },
        }
        for i, node in enumerate(self.nodes):
            if node.get("categories") is not None:
                out["categories_nodes"].append(i)
                out["categories_segments"].append(len(out["categories"]))
                out["categories_sizes"].append(len(node["categories"]))
                out["categories"].extend(sorted(node["categories"]))
        return out

    def _breadth_first(self) -> None:
        """Number the nodes level by level, as XGBoost grows them (its TreeSHAP relies on that order)."""
        order, queue = [], [0]
        while queue:
            node = queue.pop(0)
            order.append(node)
            queue += [self.nodes[node][side] for side in ("left", "right") if side in self.nodes[node]]
        new_id = {old: new for new, old in enumerate(order)}
        renumbered = []
        for old in order:
            node = dict(self.nodes[old])
            node["parent"] = new_id.get(node["parent"], -1)
            for side in ("left", "right"):
                if side in node:
                    node[side] = new_id[node[side]]
            renumbered.append(node)
        self.nodes = renumbered


def _staircase(
    tree: _TreeBuilder,
    j: int,
    thresholds: np.ndarray,
    values: np.ndarray,
    x: np.ndarray,
    low: int,
    high: int,
    parent: int,
) -> int:
    """A balanced subtree over bins low..high of feature j (bin k: thresholds[k-1] <= x < thresholds[k])."""
    if low == high:
        return tree.leaf(values[low], len(x), parent)
    middle = (low + high + 1) // 2
    node = tree.split(j, len(x), parent, threshold=float(thresholds[middle - 1]))
    below = x < thresholds[middle - 1]
    tree.nodes[node]["left"] = _staircase(tree, j, thresholds, values, x[below], low, middle - 1, node)
    tree.nodes[node]["right"] = _staircase(tree, j, thresholds, values, x[~below], middle, high, node)
    return node


def scorecard_booster(scorecard: Scorecard, template: xgb.Booster, matrix: np.ndarray) -> xgb.Booster:
    """The scorecard as an XGBoost booster: ``template``'s header (features, objective) with the scorecard's
    trees; ``matrix`` (the training rows) gives each node its cover."""
    model = json.loads(bytes(template.save_raw("json")))
    num_feature = matrix.shape[1]
    trees: list[dict[str, Any]] = []
    intercept = _TreeBuilder()
    intercept.leaf(scorecard.intercept, len(matrix), -1)
    trees.append(intercept.json(0, num_feature))
    for j, thresholds, values, missing_value in scorecard.numeric:
        x = matrix[:, j]
        present = ~np.isnan(x)
        tree = _TreeBuilder()
        root = tree.split(j, len(x), -1, threshold=_ALL_FINITE)  # a gap goes right, to its own leaf
        tree.nodes[root]["left"] = _staircase(tree, j, thresholds, values, x[present], 0, len(values) - 1, root)
        tree.nodes[root]["right"] = tree.leaf(missing_value, int((~present).sum()), root)
        trees.append(tree.json(len(trees), num_feature))
    for j, weights, missing_value in scorecard.categorical:
        x = matrix[:, j]
        for code, weight in weights.items():
            tree = _TreeBuilder()
            root = tree.split(j, len(x), -1, categories=[code])
            tree.nodes[root]["default_left"] = 1
            tree.nodes[root]["left"] = tree.leaf(0.0, int((x != code).sum()), root)
            tree.nodes[root]["right"] = tree.leaf(weight, int((x == code).sum()), root)
            trees.append(tree.json(len(trees), num_feature))
        if missing_value:
            tree = _TreeBuilder()
            root = tree.split(j, len(x), -1, categories=list(weights))  # any known category right; a gap left
            tree.nodes[root]["default_left"] = 1
            tree.nodes[root]["left"] = tree.leaf(missing_value, int(np.isnan(x).sum()), root)
            tree.nodes[root]["right"] = tree.leaf(0.0, int((~np.isnan(x)).sum()), root)
            trees.append(tree.json(len(trees), num_feature))
    learner = model["learner"]
    learner["learner_model_param"]["base_score"] = "[5E-1]"  # margin 0: the intercept is a tree of its own
    gbtree = learner["gradient_booster"]["model"]
    gbtree["trees"] = trees
    gbtree["tree_info"] = [0] * len(trees)
    gbtree["iteration_indptr"] = list(range(len(trees) + 1))
    gbtree["gbtree_model_param"]["num_trees"] = str(len(trees))
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster


def scorecard_params(c: float, constraints: str) -> dict[str, Any]:
    """What a scorecard candidate records: the booster's header, its penalty and bins (no tree growing)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "seed": DEFAULT_PARAMS["seed"],
        "nthread": DEFAULT_PARAMS["nthread"],
        "monotone_constraints": constraints,
        "scorecard_c": c,
        "scorecard_bins": SCORECARD_BINS,
    }


def scorecard_train(params: dict[str, Any], dall: xgb.DMatrix, matrix: np.ndarray, y: np.ndarray) -> xgb.Booster:
    """The scorecard fitted on these rows (``dall`` and ``matrix`` hold the same ones) as a booster."""
    categorical = [kind == "c" for kind in dall.feature_types]
    constraints = [int(c) for c in params["monotone_constraints"].strip("()").split(",")]
    scorecard = scorecard_fit(matrix, y, categorical, constraints, float(params["scorecard_c"]))
    header = {k: v for k, v in params.items() if not k.startswith("scorecard_")}
    return scorecard_booster(scorecard, xgb.Booster(header, [dall]), matrix)


def cross_validate_scorecard(
    params: dict[str, Any],
    dall: xgb.DMatrix,
    matrix: np.ndarray,
    y: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> CrossValidated:
    """The scorecard fitted on each fold's training rows, compiled, and judged on the files it did not see."""
    margin = np.full(len(y), np.nan)
    fold_auc = []
    for train, valid in splits:
        booster = scorecard_train(params, dall.slice(train), matrix[train], y[train])
        margin[valid] = booster.predict(dall.slice(valid), output_margin=True)
        if 0 < y[valid].sum() < len(valid):
            fold_auc.append(round(float(roc_auc_score(y[valid], margin[valid])), 4))
    validated = ~np.isnan(margin)
    return CrossValidated(
        params=params,
        trees=0,
        logloss=_logloss(y[validated], sigmoid(margin[validated])),
        margin=margin,
        fold_auc=fold_auc,
    )


def _depth(booster: xgb.Booster) -> int:
    """The deepest path of a booster's trees."""

    def depth(node: dict[str, Any]) -> int:
        return 1 + max((depth(child) for child in node.get("children", [])), default=-1)

    return max(depth(json.loads(tree)) for tree in booster.get_dump(dump_format="json"))
