"""How good is the model? Measured against the oracle and a logistic-regression baseline on synthetic data.

The synthetic generator knows every company's true PD (``scoring.synthetic.true_pd``),
so the best any model can reach on its data is known: the oracle's AUC and Brier
score on the same files. Generation order is time order; the model trains on the
first 75 % (with its own time-ordered validation inside, for early stopping and
calibration) and is judged with the oracle and the baseline on the last 25 %, an
out-of-time holdout none of them saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from scoring.model import engine
from scoring.model.features import CATALOGUE, FEATURE_NAMES
from scoring.model.synthetic import generate_portfolio
from scoring.model.training import reliability_by_decile, train_model

HOLDOUT_SHARE = 0.25
# The goals for the synthetic book.
AUC_GAP_TO_ORACLE = 0.01
BRIER_EXCESS_OVER_ORACLE = 0.05


@dataclass
class Evaluation:
    rows: int
    seed: int
    n_train: int
    n_holdout: int
    holdout_defaults: int
    model: dict[str, Any]
    oracle: dict[str, Any]
    baseline: dict[str, Any]
    trees: int
    max_depth: int
    calibrated: bool
    reliability: list[dict[str, float]]
    # 95 % paired-bootstrap intervals of the AUC differences on the holdout: is a gap more than noise?
    auc_vs_baseline_ci: tuple[float, float] = (0.0, 0.0)
    auc_vs_oracle_ci: tuple[float, float] = (0.0, 0.0)
    seconds: dict[str, float] = field(default_factory=dict)
    cross_validated: bool = False  # a small training book: folds, not the latest 20 %, chose the settings

    @property
    def goals(self) -> dict[str, bool]:
        return {
            "auc_within_0.01_of_oracle": self.oracle["auc"] - self.model["auc"] <= AUC_GAP_TO_ORACLE,
            "auc_above_baseline": self.model["auc"] > self.baseline["auc"],
            "brier_within_5pct_of_oracle": self.model["brier"] <= self.oracle["brier"] * (1 + BRIER_EXCESS_OVER_ORACLE),
        }

    def summary(self) -> dict[str, Any]:
        """One flat JSON-able object: the model's figures unprefixed, the oracle's and baseline's prefixed."""
        out: dict[str, Any] = {
            "rows": self.rows,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "holdout_defaults": self.holdout_defaults,
        }
        for prefix, metrics in (("", self.model), ("oracle_", self.oracle), ("baseline_", self.baseline)):
            out.update(
                {f"{prefix}{k}": _round(k, v) for k, v in metrics.items() if not (prefix and k == "default_rate")}
            )
        out.update(
            {
                "auc_gap_to_oracle": round(self.oracle["auc"] - self.model["auc"], 4),
                "brier_excess_over_oracle": round(self.model["brier"] / self.oracle["brier"] - 1, 4),
                "auc_minus_baseline_ci95": [round(v, 4) for v in self.auc_vs_baseline_ci],
                "auc_minus_oracle_ci95": [round(v, 4) for v in self.auc_vs_oracle_ci],
                "trees": self.trees,
                "max_depth": self.max_depth,
                "calibrated": self.calibrated,
                "goals": self.goals,
                "goals_met": all(self.goals.values()),
                "seconds": self.seconds,
            }
        )
        return out

    def table(self) -> list[str]:
        lines = [
            f"Synthetic book: {self.rows} files (seed {self.seed}), generation order = time.",
            f"Trained on the first {self.n_train} ("
            + (
                "time-ordered folds over the latest half of them choose depth and trees and fit the calibration, "
                "then a refit on all of them"
                if self.cross_validated
                else "the latest 20 % of them validate: depth, early stopping, calibration"
            )
            + "); "
            f"out-of-time holdout: the last {self.n_holdout} ({self.holdout_defaults} defaults, "
            f"{self.model['default_rate']:.2%}).",
            "",
            f"{'':28}{'AUC':>8}{'Gini':>8}{'KS':>8}{'Brier':>10}{'Log-loss':>10}{'Mean PD':>9}",
        ]
        for label, m in (
            ("XGBoost (this model)", self.model),
            ("Oracle (true PD)", self.oracle),
            ("Logistic regression", self.baseline),
        ):
            lines.append(
                f"{label:28}{m['auc']:>8.4f}{m['gini']:>8.4f}{m['ks']:>8.4f}{m['brier']:>10.5f}"
                f"{m['logloss']:>10.5f}{m['mean_pd']:>9.4f}"
            )
        gap = self.oracle["auc"] - self.model["auc"]
        excess = self.model["brier"] / self.oracle["brier"] - 1
        yes = {True: "yes", False: "NO"}
        goals = self.goals
        lines += [
            "",
            f"{self.trees} trees of depth {self.max_depth}, "
            f"calibration {'applied' if self.calibrated else 'not needed'}.",
            f"AUC within {AUC_GAP_TO_ORACLE} of the oracle: {yes[goals['auc_within_0.01_of_oracle']]} (gap {gap:.4f}); "
            f"above the baseline: {yes[goals['auc_above_baseline']]} "
            f"({self.model['auc'] - self.baseline['auc']:+.4f}, 95 % CI {self.auc_vs_baseline_ci[0]:+.4f} to "
            f"{self.auc_vs_baseline_ci[1]:+.4f}); "
            f"Brier within {BRIER_EXCESS_OVER_ORACLE:.0%} of the oracle's: "
            f"{yes[goals['brier_within_5pct_of_oracle']]} ({excess:+.2%}).",
            "Reliability on the holdout (deciles of predicted PD): "
            + ", ".join(f"{d['mean_pd']:.3f}/{d['observed_rate']:.3f}" for d in self.reliability)
            + " (predicted/observed).",
            "Seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items()) + ".",
        ]
        return lines


def baseline_logistic(categorical_columns: list[int], numeric_columns: list[int]) -> Pipeline:
    """Logistic regression on the same features: median-imputed with missing indicators, one-hot sector,
    standardised."""
    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=-1.0), OneHotEncoder(handle_unknown="ignore")
    )
    return make_pipeline(
        ColumnTransformer([("numeric", numeric, numeric_columns), ("categorical", categorical, categorical_columns)]),
        LogisticRegression(max_iter=2000),
    )


def _round(key: str, value: float) -> float:
    return round(value, 6 if key in ("brier", "logloss") else 4)


def _metrics(y: np.ndarray, pd: np.ndarray) -> dict[str, float]:
    """``training.discrimination_metrics`` unrounded, so that the goals are checked on exact figures."""
    auc = float(roc_auc_score(y, pd))
    fpr, tpr, _ = roc_curve(y, pd)
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": float(np.max(tpr - fpr)),
        "brier": float(brier_score_loss(y, pd)),
        "logloss": float(log_loss(y, np.clip(pd, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "default_rate": float(np.mean(y)),
        "mean_pd": float(np.mean(pd)),
    }


def _weighted_auc(y: np.ndarray, inverse: np.ndarray, n_levels: int, weights: np.ndarray) -> np.ndarray:
    """AUC of one score under many bootstrap weightings at once (ties count one half).

    ``inverse`` maps each row to the rank of its distinct score; ``weights`` is (replicates, rows).
    """
    positive = np.zeros((weights.shape[0], n_levels))
    negative = np.zeros((weights.shape[0], n_levels))
    for r in range(weights.shape[0]):
        positive[r] = np.bincount(inverse, weights=weights[r] * y, minlength=n_levels)
        negative[r] = np.bincount(inverse, weights=weights[r] * (1 - y), minlength=n_levels)
    below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    return (positive * (below + 0.5 * negative)).sum(axis=1) / pairs


def paired_auc_difference_ci(
    y: np.ndarray, first: np.ndarray, second: np.ndarray, *, replicates: int = 400, seed: int = 0
) -> tuple[float, float]:
    """95 % interval of AUC(first) - AUC(second), resampling the same files for both (seeded)."""
    weights = np.random.default_rng(seed).multinomial(len(y), np.full(len(y), 1 / len(y)), size=replicates)
    weights = weights.astype(np.float64)
    differences = np.zeros(replicates)
    for sign, scores in ((1.0, first), (-1.0, second)):
        levels, inverse = np.unique(scores, return_inverse=True)
        differences += sign * _weighted_auc(y, inverse, len(levels), weights)
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def evaluate_synthetic(*, rows: int = 40000, seed: int = 7) -> Evaluation:
    """Train on the first 75 % of a synthetic book, judge model, oracle and baseline on the last 25 %."""
    if rows < 2000:
        raise ValueError(f"need at least 2000 synthetic rows for a meaningful holdout, got {rows}")
    started = time.perf_counter()
    portfolio = generate_portfolio(rows, seed=seed)
    features = [company.features() for company, _, _ in portfolio]
    true_pd = np.array([pd for _, pd, _ in portfolio])
    y = np.array([int(defaulted) for _, _, defaulted in portfolio], dtype=np.float64)
    generated = time.perf_counter()

    cut = int(rows * (1 - HOLDOUT_SHARE))
    categorical = {f.name for f in CATALOGUE if f.categorical}
    dates = [f"{i:09d}" for i in range(rows)]  # generation order is time order
    trained = train_model(
        features[:cut],
        y[:cut].tolist(),
        dates[:cut],
        feature_names=FEATURE_NAMES,
        categorical=categorical,
        directions={f.name: f.direction for f in CATALOGUE},
    )
    loaded = engine.model_from_trained(trained)
    model_pd = engine.predict_pd(loaded, features[cut:])
    fitted = time.perf_counter()

    # The baseline sees the same training files (train + validation) and the same encoding.
    matrix = engine.encode_rows(FEATURE_NAMES, trained.categories, features)
    cat_cols = [j for j, name in enumerate(FEATURE_NAMES) if name in categorical]
    num_cols = [j for j, name in enumerate(FEATURE_NAMES) if name not in categorical]
    baseline = baseline_logistic(cat_cols, num_cols).fit(matrix[:cut], y[:cut])
    baseline_pd = baseline.predict_proba(matrix[cut:])[:, 1]
    done = time.perf_counter()

    holdout_y = y[cut:]
    return Evaluation(
        rows=rows,
        seed=seed,
        n_train=cut,
        n_holdout=rows - cut,
        holdout_defaults=int(holdout_y.sum()),
        model=_metrics(holdout_y, model_pd),
        oracle=_metrics(holdout_y, true_pd[cut:]),
        baseline=_metrics(holdout_y, baseline_pd),
        trees=int(trained.metrics["trees"]),
        max_depth=int(trained.metrics["max_depth"]),
        calibrated=bool(trained.calibration),
        cross_validated=trained.metrics.get("estimate") == "out_of_fold",
        reliability=reliability_by_decile(holdout_y, model_pd),
        auc_vs_baseline_ci=paired_auc_difference_ci(holdout_y, model_pd, baseline_pd),
        auc_vs_oracle_ci=paired_auc_difference_ci(holdout_y, model_pd, true_pd[cut:]),
        seconds={
            "generate": round(generated - started, 2),
            "train_and_predict": round(fitted - generated, 2),
            "baseline": round(done - fitted, 2),
        },
    )
