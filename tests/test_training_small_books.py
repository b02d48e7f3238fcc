"""Small books: k-fold cross-validation chooses the settings, the model is refitted on every row.

On a book of up to 20,000 labelled files the folds choose the candidate (XGBoost
of depth 1, 2 or 4, an additive challenger, or a linear scorecard compiled into
one-feature trees) and the number of trees; the model is then refitted on all
rows with those settings, and the stored metrics are the
out-of-fold estimate. The folds are time-ordered when the rows have a date (no
fold trains on files later than those it validates), stratified otherwise.
Whatever wins is a tree ensemble that the engine explains exactly and that keeps
the catalogue's monotone constraints. The books are small and the folds few, so
each test trains in about a second.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import random
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb
from django.core.management import CommandError, call_command
from sklearn.metrics import roc_auc_score

from scoring.model import engine, training
from scoring.model.csv_training import train_from_csv
from scoring.model.features import CATALOGUE, FEATURE_NAMES, RISK_DOWN, RISK_UP, is_missing
from scoring.model.synthetic import generate_portfolio
from scoring.model.training import (
    ADDITIVE_CHALLENGER,
    cross_validate,
    cross_validate_scorecard,
    scorecard_params,
    scorecard_train,
    stratified_folds,
    time_ordered_folds,
    train_model,
)
from scoring.models import ModelVersion

CATEGORICAL = {f.name for f in CATALOGUE if f.categorical}
COLUMNS = ["sector", "region", "net_margin", "equity_ratio", "payment_delays_12m", "max_payment_delay_days"]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def lender_book(path: Path, n: int = 600, seed: int = 5, *, default_rate: float = 0.08) -> Path:
    """A lender's export with a text sector and region, two ratios, payment incidents and an application date.

    The file is not in date order: the date column alone says which files are the latest.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sector, region = rng.choice(["C", "F", "G", "I", "M"]), rng.choice(["Nord", "Sud", "Est"])
        margin, equity = rng.normal(0.04, 0.08), rng.normal(0.3, 0.2)
        delays = int(rng.poisson(0.8))
        max_delay = int(rng.integers(0, 90)) if delays else 0
        z = math.log(default_rate / (1 - default_rate)) - 4 * margin - 1.5 * (equity - 0.3) + 0.5 * delays
        z += 0.6 if sector in ("F", "I") else 0.0
        date = f"2023-{1 + i * 12 // n:02d}-{1 + i % 28:02d}"
        defaulted = int(rng.random() < sigmoid(z))
        rows.append([date, sector, region, round(margin, 4), round(equity, 4), delays, max_delay, defaulted])
    random.Random(seed).shuffle(rows)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["application_date", *COLUMNS, "defaulted"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def companies() -> list[tuple[dict[str, Any], int]]:
    """800 synthetic companies with catalogue features (so catalogue monotone constraints), in time order."""
    return [(company.features(), int(defaulted)) for company, _, defaulted in generate_portfolio(800, seed=3)]


def train_companies(companies, **kwargs: Any) -> training.TrainedModel:
    return train_model(
        [features for features, _ in companies],
        [label for _, label in companies],
        [f"{i:05d}" for i in range(len(companies))],
        feature_names=FEATURE_NAMES,
        categorical=CATEGORICAL,
        **kwargs,
    )


# --- the folds ------------------------------------------------------------------------------------------------


def test_time_ordered_folds_never_train_on_files_later_than_those_they_validate() -> None:
    folds = time_ordered_folds(1000, 4)

    assert len(folds) == 4
    for train, valid in folds:
        assert train.max() < valid.min()
        assert np.array_equal(train, np.arange(valid.min()))  # every earlier file, in order
    validated = np.concatenate([valid for _, valid in folds])
    assert np.array_equal(validated, np.arange(500, 1000))  # the latest half, each file once


def test_stratified_folds_validate_every_file_once_with_the_books_default_rate() -> None:
    y = np.array([1] * 60 + [0] * 540, dtype=float)

    folds = stratified_folds(y, 5)

    validated = np.sort(np.concatenate([valid for _, valid in folds]))
    assert np.array_equal(validated, np.arange(600))
    for train, valid in folds:
        assert not set(train) & set(valid)
        assert y[valid].sum() == 12  # 60 defaults over 5 folds


def test_a_csv_with_a_date_column_is_cross_validated_in_date_order(tmp_path, monkeypatch) -> None:
    path = lender_book(tmp_path / "book.csv")
    seen: list[list[tuple[np.ndarray, np.ndarray]]] = []

    def spy(params, dall, y, splits, fixed_rounds=None):
        seen.append(splits)
        return cross_validate(params, dall, y, splits, fixed_rounds)

    monkeypatch.setattr(training, "cross_validate", spy)
    result = train_from_csv(path, target="defaulted", date_column="application_date", folds=3)

    metrics = result.trained.metrics
    assert metrics["estimate"] == "out_of_fold" and metrics["fold_order"] == "time-ordered"
    assert metrics["n_train"] == 600 and metrics["n_valid"] == 300  # the latest half is validated
    dates = sorted(row[0] for row in csv.reader(path.open()) if row[0] != "application_date")
    for train, valid in seen[0]:  # the rows are in date order inside the trainer
        assert dates[train.max()] <= dates[valid.min()]


def test_a_csv_without_a_date_column_gets_stratified_folds(tmp_path) -> None:
    path = lender_book(tmp_path / "book.csv")

    metrics = train_from_csv(path, target="defaulted", exclude=["application_date"], folds=3).trained.metrics

    assert metrics["fold_order"] == "stratified"
    assert metrics["n_valid"] == metrics["n_train"] == 600  # every file validated once
    assert "stratified" in metrics["validation"]


# --- choose by the folds, refit on every row ----------------------------------------------------------------------


@pytest.fixture
def trees_only(monkeypatch) -> None:
    """No scorecard among the candidates: the tree ensembles alone compete."""
    monkeypatch.setattr(training, "SCORECARD_C", ())


@pytest.fixture
def scorecards_only(monkeypatch) -> None:
    """Only the linear scorecards compete (one tree candidate is always there: a single depth-1 one)."""
    monkeypatch.setattr(training, "DEPTH_CANDIDATES", ({"max_depth": 1, "eta": 0.3, "lambda": 1000.0},))
    monkeypatch.setattr(training, "SMALL_BOOK_CHALLENGERS", ())


def encoded(trained: training.TrainedModel, companies) -> tuple[xgb.DMatrix, np.ndarray, np.ndarray]:
    """The companies as the trainer saw them: a DMatrix, the encoded matrix and the labels."""
    matrix = engine.encode_rows(FEATURE_NAMES, trained.categories, [features for features, _ in companies])
    y = np.array([label for _, label in companies], dtype=float)
    types = ["c" if name in trained.categories else "q" for name in FEATURE_NAMES]
    dall = xgb.DMatrix(matrix, label=y, feature_names=FEATURE_NAMES, feature_types=types, enable_categorical=True)
    return dall, matrix, y


def test_the_folds_choose_the_candidate_with_the_lowest_out_of_fold_log_loss(companies) -> None:
    metrics = train_companies(companies, folds=3).metrics

    chosen = min(metrics["depth_search"], key=lambda c: c["oof_logloss"])
    assert metrics["candidate"] == chosen["candidate"]
    assert {c["candidate"] for c in metrics["depth_search"]} == {
        "additive",
        "depth 2",
        "depth 4",
        "additive, one-vs-rest categories",
        "linear scorecard, C = 0.03",
        "linear scorecard, C = 0.1",
        "linear scorecard, C = 0.3",
        "linear scorecard, C = 1.0",
    }


def test_the_chosen_trees_are_refitted_on_every_row(companies, trees_only) -> None:
    trained = train_companies(companies, folds=3)
    metrics = trained.metrics
    dall, matrix, _ = encoded(trained, companies)

    # The stored booster is the chosen settings trained on all 800 files, not a fold's model.
    refit = xgb.train(dict(trained.params, nthread=1), dall, num_boost_round=metrics["trees"])
    loaded = engine.model_from_trained(trained)
    assert loaded.booster.num_boosted_rounds() == metrics["trees"]
    np.testing.assert_allclose(
        loaded.booster.predict(engine.dmatrix(loaded, matrix), output_margin=True),
        refit.predict(dall, output_margin=True),
        atol=1e-6,
    )


def test_a_winning_scorecard_is_refitted_on_every_row(companies, scorecards_only) -> None:
    trained = train_companies(companies, folds=3)
    dall, matrix, y = encoded(trained, companies)

    assert trained.metrics["candidate"].startswith("linear scorecard")
    refit = scorecard_train(dict(trained.params), dall, matrix, y)
    loaded = engine.model_from_trained(trained)
    np.testing.assert_allclose(
        loaded.booster.predict(engine.dmatrix(loaded, matrix), output_margin=True),
        refit.predict(dall, output_margin=True),
        atol=1e-6,
    )


def test_the_stored_estimate_is_out_of_fold_not_in_sample(companies, trees_only) -> None:
    trained = train_companies(companies, folds=3)
    metrics = trained.metrics
    dall, _, y = encoded(trained, companies)

    # The same folds, the chosen settings, one model per fold: its predictions on the files it did not see.
    again = cross_validate(
        dict(trained.params, nthread=1), dall, y, time_ordered_folds(len(y), 3), fixed_rounds=metrics["trees"]
    )
    validated = ~np.isnan(again.margin)
    assert metrics["estimate"] == "out_of_fold" and metrics["n_valid"] == int(validated.sum()) == 400
    assert metrics["auc"] == pytest.approx(roc_auc_score(y[validated], again.margin[validated]), abs=1e-4)
    assert metrics["fold_auc"] == again.fold_auc
    in_sample = roc_auc_score(y, engine.predict_pd(engine.model_from_trained(trained), [f for f, _ in companies]))
    assert in_sample > metrics["auc"]  # the refitted model has seen every file: its own AUC flatters it


def test_a_scorecards_estimate_is_out_of_fold_too(companies, scorecards_only) -> None:
    trained = train_companies(companies, folds=3)
    dall, matrix, y = encoded(trained, companies)

    again = cross_validate_scorecard(dict(trained.params), dall, matrix, y, time_ordered_folds(len(y), 3))
    validated = ~np.isnan(again.margin)
    assert trained.metrics["auc"] == pytest.approx(roc_auc_score(y[validated], again.margin[validated]), abs=1e-4)


def test_calibration_is_fitted_on_the_out_of_fold_margins(companies) -> None:
    report = train_companies(companies, folds=3).metrics["calibration"]

    assert report["fitted_on"] == "out-of-fold margins"
    assert report["kept"] in (True, False) and report["reason"]


def test_a_large_book_or_folds_1_keeps_the_time_ordered_holdout(companies) -> None:
    metrics = train_companies(companies, folds=1).metrics

    assert "estimate" not in metrics
    assert (metrics["n_train"], metrics["n_valid"]) == (640, 160)
    assert "additive, one-vs-rest categories" not in {c.get("candidate") for c in metrics["depth_search"]}


# --- the additive challenger: exact explanations, monotone ---------------------------------------------------------


@pytest.fixture(scope="module")
def additive(companies) -> tuple[training.TrainedModel, engine.LoadedModel]:
    trained = train_companies(companies, params=ADDITIVE_CHALLENGER, folds=3)
    return trained, engine.model_from_trained(trained)


def test_the_additive_challenger_is_a_sum_of_one_split_trees(additive) -> None:
    trained, loaded = additive

    assert trained.metrics["candidate"] == "additive, one-vs-rest categories"
    for tree in loaded.booster.get_dump(dump_format="json"):
        root = json.loads(tree)
        assert all("leaf" in child for child in root.get("children", []))  # depth 1 (or a single leaf)


def test_the_additive_challenger_is_explained_exactly(additive) -> None:
    _, loaded = additive
    rows = [company.features() for company, _, _ in generate_portfolio(50, seed=31)]
    margins = loaded.booster.predict(
        engine.dmatrix(loaded, engine.encode_rows(loaded.feature_names, loaded.categories, rows)), output_margin=True
    )

    for margin, explanation in zip(margins, engine.explain_many(loaded, rows), strict=True):
        assert explanation.logit == pytest.approx(float(margin), abs=1e-5)
        assert explanation.probability_of_default == pytest.approx(sigmoid(explanation.logit), abs=1e-12)
        assert set(explanation.contributions) == set(FEATURE_NAMES)


@pytest.mark.parametrize("direction", [RISK_UP, RISK_DOWN])
def test_the_additive_challenger_respects_the_catalogues_monotone_constraints(companies, additive, direction) -> None:
    trained, loaded = additive
    names = [f.name for f in CATALOGUE if f.direction == direction and not f.categorical]
    assert names and all(
        c == direction for n, c in zip(FEATURE_NAMES, trained.monotone_constraints, strict=True) if n in names
    )
    for name in names:
        values = np.array([f[name] for f, _ in companies if not is_missing(f[name])], dtype=float)
        grid = np.unique(np.concatenate([np.quantile(values, np.linspace(0, 1, 12)), [values.min() - 1]]))
        for features, _ in companies[:15]:
            pds = engine.predict_pd(loaded, [dict(features, **{name: float(v)}) for v in grid])
            assert (np.diff(pds) * direction >= -1e-12).all(), f"{name}: {pds}"


# --- the linear scorecard: a logistic regression compiled into one-feature trees -------------------------------------


@pytest.fixture(scope="module")
def scorecard(companies) -> tuple[training.TrainedModel, engine.LoadedModel]:
    trained = train_companies(companies, folds=1)  # only to get the encoding and constraints
    dall, matrix, y = encoded(trained, companies)
    constraints = "(" + ",".join(map(str, trained.monotone_constraints)) + ")"
    booster = scorecard_train(scorecard_params(0.3, constraints), dall, matrix, y)
    stored = dataclasses.replace(trained, booster_ubj=bytes(booster.save_raw("ubj")), calibration={})
    return stored, engine.model_from_trained(stored)


def test_every_scorecard_tree_splits_on_a_single_feature(scorecard) -> None:
    _, loaded = scorecard

    def features(node: dict[str, Any]) -> set[str]:
        own = {node["split"]} if "split" in node else set()
        return own.union(*(features(child) for child in node.get("children", [])))

    for tree in loaded.booster.get_dump(dump_format="json"):
        assert len(features(json.loads(tree))) <= 1


def test_a_scorecard_is_explained_exactly_missing_values_and_unseen_categories_included(scorecard) -> None:
    _, loaded = scorecard
    rows = [company.features() for company, _, _ in generate_portfolio(50, seed=37)]
    rows[0] = dict(rows[0], naf_section="Z", net_margin=None)  # a sector never seen, a gap
    matrix = engine.encode_rows(loaded.feature_names, loaded.categories, rows)
    margins = loaded.booster.predict(engine.dmatrix(loaded, matrix), output_margin=True)

    for margin, explanation in zip(margins, engine.explain_many(loaded, rows), strict=True):
        assert explanation.logit == pytest.approx(float(margin), abs=1e-5)


@pytest.mark.parametrize("direction", [RISK_UP, RISK_DOWN])
def test_a_scorecard_respects_the_catalogues_monotone_constraints(companies, scorecard, direction) -> None:
    _, loaded = scorecard
    for name in [f.name for f in CATALOGUE if f.direction == direction and not f.categorical]:
        values = np.array([f[name] for f, _ in companies if not is_missing(f[name])], dtype=float)
        grid = np.unique(np.concatenate([np.quantile(values, np.linspace(0, 1, 40)), [values.min() - 1]]))
        for features, _ in companies[:10]:
            pds = engine.predict_pd(loaded, [dict(features, **{name: float(v)}) for v in grid])
            assert (np.diff(pds) * direction >= -1e-12).all(), f"{name}: {pds}"


# --- as a user runs it --------------------------------------------------------------------------------------------


def test_train_model_csv_shows_and_stores_the_out_of_fold_estimate(tmp_path, reference_data) -> None:
    path = lender_book(tmp_path / "book.csv", n=500)

    output = run(
        "train_model", "--csv", str(path), "--target", "defaulted", "--date-column", "application_date",
        "--folds", "3", "--json",
    )  # fmt: skip

    model = ModelVersion.objects.get()
    assert model.metrics["estimate"] == "out_of_fold" and len(model.metrics["fold_auc"]) == 3
    assert "Out-of-fold estimate (3 time-ordered folds over 250 files; the model is then refitted on all 500)" in (
        output
    )
    assert f"AUC {model.metrics['auc']:.4f}" in output and "Per fold AUC" in output
    assert json.loads(output.strip().splitlines()[-1])["metrics"]["estimate"] == "out_of_fold"
    constraints = dict(zip(model.feature_names, model.monotone_constraints, strict=True))
    assert constraints["net_margin"] == -1 and constraints["payment_delays_12m"] == 1 and constraints["region"] == 0


def test_train_model_csv_rejects_zero_folds(tmp_path, reference_data) -> None:
    path = lender_book(tmp_path / "book.csv", n=300)

    with pytest.raises(CommandError, match="--folds must be 1"):
        run("train_model", "--csv", str(path), "--target", "defaulted", "--folds", "0")
    assert not ModelVersion.objects.exists()
