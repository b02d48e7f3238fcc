"""Model quality: reproducible training, monotone risk, exact explanations, calibration, CSV training, evaluation.

The model is XGBoost with monotone constraints from the catalogue, trained on a
time-ordered split; its probability calibration is kept only when it helps, and
its explanations add up to the logit of the PD whether calibrated or not. A team
can train on its own CSV, and ``evaluate_model`` compares the model with the
oracle (the true PD of the synthetic generator) and a logistic regression.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from dossiers.services import dossier_score
from scoring.model import engine
from scoring.model.csv_training import encode_frame, read_csv
from scoring.model.features import CATALOGUE, FEATURE_NAMES, RISK_DOWN, RISK_UP, is_missing
from scoring.model.registry import model_register
from scoring.model.synthetic import generate_portfolio, true_logit
from scoring.model.training import TrainedModel, train_model
from scoring.models import ModelVersion, Score

from .conftest import trained_once

CATEGORICAL = {f.name for f in CATALOGUE if f.categorical}
CALIBRATION = {"a": 0.8, "b": -0.4}


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def book() -> list[tuple[dict[str, Any], int]]:
    """3000 synthetic companies in time order (generation order), with their drawn default."""
    return [(company.features(), int(defaulted)) for company, _, defaulted in generate_portfolio(3000, seed=13)]


@pytest.fixture(scope="module")
def companies() -> list[dict[str, Any]]:
    """Fresh companies to score, some without accounts or bank data."""
    return [company.features() for company, _, _ in generate_portfolio(60, seed=29)]


def train_on(book: list[tuple[dict[str, Any], int]], **kwargs: Any) -> TrainedModel:
    rows = [features for features, _ in book]
    labels = [label for _, label in book]
    return train_model(
        rows,
        labels,
        [f"{i:06d}" for i in range(len(rows))],
        feature_names=FEATURE_NAMES,
        categorical=CATEGORICAL,
        **kwargs,
    )


@pytest.fixture(scope="module")
def deep_model(book) -> engine.LoadedModel:
    """A depth-4 model (interactions between features), where monotonicity is not automatic."""
    return engine.model_from_trained(train_on(book, params={"max_depth": 4}))


# --- reproducible training ------------------------------------------------------------------------


def test_training_twice_on_the_same_rows_gives_the_same_booster_bytes(book) -> None:
    first, second = train_on(book), train_on(book)

    assert first.booster_ubj == second.booster_ubj
    assert first.metrics == second.metrics and first.data_hash == second.data_hash
    assert first.calibration == second.calibration


def test_the_same_rows_in_another_order_give_the_same_model_when_dates_say_the_order(book) -> None:
    rows = [features for features, _ in book]
    labels = [label for _, label in book]
    dates = [f"{i:06d}" for i in range(len(rows))]
    shuffled = np.random.default_rng(0).permutation(len(rows))

    in_order = train_model(rows, labels, dates, feature_names=FEATURE_NAMES, categorical=CATEGORICAL)
    reordered = train_model(
        [rows[i] for i in shuffled],
        [labels[i] for i in shuffled],
        [dates[i] for i in shuffled],
        feature_names=FEATURE_NAMES,
        categorical=CATEGORICAL,
    )

    assert in_order.booster_ubj == reordered.booster_ubj
    assert in_order.training_window == {"from": dates[0], "to": dates[-1]}


def test_the_model_is_stored_in_xgboosts_own_format_with_what_produced_it(book) -> None:
    trained = train_on(book)

    assert trained.booster_ubj[:1] == b"{"  # UBJSON
    assert trained.feature_names == FEATURE_NAMES
    assert len(trained.data_hash) == 64
    assert trained.params["objective"] == "binary:logistic" and "monotone_constraints" in trained.params
    assert {"auc", "gini", "ks", "brier", "logloss", "reliability_by_decile", "calibration"} <= set(trained.metrics)


# --- monotone constraints ---------------------------------------------------------------------------


def test_monotone_constraints_come_from_the_catalogue_directions(book) -> None:
    trained = train_on(book)

    expected = [0 if f.categorical else f.direction for f in CATALOGUE]
    assert trained.monotone_constraints == expected
    assert trained.params["monotone_constraints"] == "(" + ",".join(map(str, expected)) + ")"


def _grid(book, name: str) -> list[float]:
    values = np.array([f[name] for f, _ in book if not is_missing(f[name])], dtype=float)
    return sorted(
        {float(v) for v in np.quantile(values, np.linspace(0, 1, 15))} | {values.min() - 1, values.max() * 2 + 1}
    )


@pytest.mark.parametrize("direction", [RISK_UP, RISK_DOWN])
def test_raising_a_feature_never_moves_the_pd_against_its_risk_direction(
    book, companies, deep_model, direction
) -> None:
    names = [f.name for f in CATALOGUE if f.direction == direction and not f.categorical]
    assert names
    for name in names:
        grid = _grid(book, name)
        for features in companies[:30]:
            pds = engine.predict_pd(deep_model, [dict(features, **{name: value}) for value in grid])
            steps = np.diff(pds) * direction
            assert (steps >= -1e-12).all(), f"{name}: PD moved against its direction {pds}"


def test_more_rejected_direct_debits_never_lower_the_champions_pd(champion, companies) -> None:
    loaded = engine.model_load(champion)
    for features in companies:
        pds = [
            engine.explain_one(loaded, dict(features, rejected_sepa_debits_12m=n)).probability_of_default
            for n in range(0, 8)
        ]
        # The PD comes from float32 SHAP values summed: equal margins give equal PDs, rounding aside.
        assert (np.diff(pds) >= -1e-9).all(), pds


# --- exact explanations, with and without calibration ------------------------------------------------


def test_base_value_plus_contributions_is_the_logit_of_pd_to_1e_6(champion, companies) -> None:
    loaded = engine.model_load(champion)
    assert loaded.calibration == {}
    for features in companies:
        explanation = engine.explain_one(loaded, features)

        assert explanation.base_value + sum(explanation.contributions.values()) == pytest.approx(
            logit(explanation.probability_of_default), abs=1e-6
        )


@pytest.fixture
def calibrated(reference_data) -> ModelVersion:
    """The session's model registered with a Platt calibration that shrinks and shifts the margin."""
    trained = dataclasses.replace(trained_once(), calibration=dict(CALIBRATION))
    return model_register(segment="b2b", trained=trained, trained_by="tests", promote=True)


def test_a_calibrated_explanation_still_adds_up_to_the_logit_of_pd(calibrated, companies) -> None:
    loaded = engine.model_load(calibrated)
    assert loaded.calibration == CALIBRATION
    for features in companies:
        explanation = engine.explain_one(loaded, features)

        assert explanation.base_value + sum(explanation.contributions.values()) == pytest.approx(
            logit(explanation.probability_of_default), abs=1e-6
        )


def test_calibration_scales_every_contribution_and_shifts_the_base(calibrated, companies) -> None:
    raw_model = engine.model_from_trained(trained_once())
    loaded = engine.model_load(calibrated)
    a, b = CALIBRATION["a"], CALIBRATION["b"]
    for features in companies:
        raw, cal = engine.explain_one(raw_model, features), engine.explain_one(loaded, features)

        assert cal.base_value == pytest.approx(a * raw.base_value + b, abs=1e-9)
        for name in FEATURE_NAMES:
            assert cal.contributions[name] == pytest.approx(a * raw.contributions[name], abs=1e-9)
        assert cal.probability_of_default == pytest.approx(sigmoid(a * logit(raw.probability_of_default) + b), rel=1e-9)


def test_the_calibrated_pd_is_the_booster_margin_through_the_stored_calibration(calibrated, companies) -> None:
    loaded = engine.model_load(calibrated)
    margins = loaded.booster.predict(
        engine.dmatrix(loaded, engine.encode_rows(loaded.feature_names, loaded.categories, companies)),
        output_margin=True,
    )
    batch = engine.predict_pd(loaded, companies)

    for features, margin, pd in zip(companies, margins, batch, strict=True):
        expected = sigmoid(CALIBRATION["a"] * float(margin) + CALIBRATION["b"])
        assert engine.explain_one(loaded, features).probability_of_default == pytest.approx(expected, abs=1e-6)
        assert float(pd) == pytest.approx(expected, abs=1e-6)


def test_one_row_scoring_runs_xgboost_on_one_thread(champion) -> None:
    loaded = engine.model_load(champion)

    config = json.loads(loaded.booster.save_config())
    assert config["learner"]["generic_param"]["nthread"] == "1"


# --- calibration: fitted on validation, kept only when it helps ----------------------------------------


def test_calibration_is_left_out_when_it_does_not_help() -> None:
    trained = trained_once()  # synthetic data without drift: early stopping alone calibrates well

    assert trained.calibration == {}
    assert trained.metrics["calibration"]["kept"] is False
    assert trained.metrics["calibration"]["reason"]


def test_calibration_is_kept_stored_and_applied_when_the_latest_files_default_more(reference_data) -> None:
    portfolio = generate_portfolio(3000, seed=17)
    rows = [company.features() for company, _, _ in portfolio]
    rng = np.random.default_rng(17)
    cut = int(len(rows) * 0.8)
    # The latest 20 % (the validation period) default at e^1 times the odds the training period had.
    labels = [
        int(d) if i < cut else int(rng.random() < sigmoid(true_logit(rows[i]) + 1.0))
        for i, (_, _, d) in enumerate(portfolio)
    ]

    trained = train_model(
        rows, labels, [f"{i:06d}" for i in range(len(rows))], feature_names=FEATURE_NAMES, categorical=CATEGORICAL
    )
    assert set(trained.calibration) == {"a", "b"} and trained.calibration["b"] > 0.3
    assert trained.metrics["calibration"]["kept"] is True
    assert (
        trained.metrics["calibration"]["logloss_calibrated_out_of_fold"] < trained.metrics["calibration"]["logloss_raw"]
    )

    version = model_register(segment="b2b", trained=trained, trained_by="tests", promote=False)
    version.refresh_from_db()
    assert version.calibration == trained.calibration

    loaded = engine.model_load(version)
    margin = float(
        loaded.booster.predict(
            engine.dmatrix(loaded, engine.encode_rows(loaded.feature_names, loaded.categories, rows[:1])),
            output_margin=True,
        )[0]
    )
    a, b = trained.calibration["a"], trained.calibration["b"]
    assert engine.explain_one(loaded, rows[0]).probability_of_default == pytest.approx(
        sigmoid(a * margin + b), abs=1e-6
    )


def test_metrics_carry_the_reliability_of_each_decile_of_predicted_pd() -> None:
    metrics = trained_once().metrics
    deciles = metrics["reliability_by_decile"]

    assert [d["decile"] for d in deciles] == list(range(1, 11))
    assert sum(d["n"] for d in deciles) == metrics["n_valid"]
    means = [d["mean_pd"] for d in deciles]
    assert means == sorted(means)
    assert all(0 <= d["observed_rate"] <= 1 for d in deciles)


# --- a stored model reproduces a past score ------------------------------------------------------------


def test_a_stored_model_version_reproduces_a_past_score_exactly(api, calibrated) -> None:
    body = {"company": {"siren": "552100554", "vat": "FR96552100554"}, "requested_amount": 40000}
    created = api.post("/api/v1/scores", body).json()
    dossier_score(dossier_id=created["id"])
    score = Score.objects.select_related("snapshot", "model_version").get(dossier_id=created["id"])
    assert score.model_version_id == calibrated.pk

    fresh = engine.model_from_version(ModelVersion.objects.get(pk=score.model_version_id))  # bytes from the DB
    assert fresh.booster is not engine.model_load(calibrated).booster
    again = engine.explain_one(fresh, score.snapshot.features)

    assert again.probability_of_default == pytest.approx(score.probability_of_default, abs=1e-12)
    assert again.base_value == pytest.approx(score.base_value, abs=1e-12)
    assert again.contributions == pytest.approx(score.contributions, abs=1e-12)


# --- training from a CSV of a team's own book --------------------------------------------------------------

CSV_COLUMNS = [
    "application_date",
    "sector",
    "region",
    "revenue",
    "net_margin",
    "equity_ratio",
    "months_negative_balance_12m",
    "payment_delays_12m",
    "max_payment_delay_days",
    "open_insolvency_proceeding",
]


def write_csv(path: Path, header: list[str], rows: list[list[Any]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def book_rows(n: int = 1500, seed: int = 31, *, labels: tuple[str, str] = ("1", "0")) -> list[list[Any]]:
    """A lender's export: catalogue columns (some missing), a text sector and region, and the outcome."""
    out = []
    for i, (company, _, defaulted) in enumerate(generate_portfolio(n, seed=seed)):
        f = company.features()
        month = f"2022-{1 + i * 12 // n:02d}-{1 + i % 28:02d}"
        out.append(
            [month, f["naf_section"], ("Nord", "Sud", "Est", "Ouest")[i % 4]]
            + ["" if f[name] is None else f[name] for name in CSV_COLUMNS[3:]]
            + [labels[0] if defaulted else labels[1]]
        )
    return out


def test_train_model_csv_trains_on_numeric_and_text_columns_and_missing_values(tmp_path, reference_data) -> None:
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "defaulted"], book_rows())

    output = run(
        "train_model", "--csv", str(path), "--target", "defaulted", "--date-column", "application_date", "--json"
    )

    model = ModelVersion.objects.get()
    assert model.status == "champion"
    assert model.feature_names == CSV_COLUMNS[1:]
    assert set(model.categories) == {"sector", "region"} and "F" in model.categories["sector"]
    constraints = dict(zip(model.feature_names, model.monotone_constraints, strict=True))
    assert constraints == {
        "sector": 0,
        "region": 0,
        "revenue": -1,
        "net_margin": -1,
        "equity_ratio": -1,
        "months_negative_balance_12m": 1,
        "payment_delays_12m": 1,
        "max_payment_delay_days": 1,
        "open_insolvency_proceeding": 1,
    }
    assert model.training_window["column"] == "application_date"
    assert model.training_window["from"].startswith("2022-01-01") and model.training_window["to"] > "2022-12"
    assert model.metrics["auc"] > 0.6 and model.metrics["training_data"]["rows_used"] == 1500
    result = json.loads(output.strip().splitlines()[-1])
    assert result["model"] == model.label and result["metrics"]["auc"] == model.metrics["auc"]
    assert "Data validation: book.csv: 1500 rows read" in output
    for column in CSV_COLUMNS:
        assert column in output  # the per-column report
    assert re.search(r"revenue +float64 +numeric +\d+\.\d% +\d+ +feature \(monotone, risk falls", output)
    assert "region" in output and "not in the b2b feature catalogue" in output
    assert "AUC" in output and "Reliability by decile" in output


def test_a_csv_model_scores_its_rows_as_they_were_encoded_for_training(tmp_path, reference_data) -> None:
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "defaulted"], book_rows(600, seed=37))
    run("train_model", "--csv", str(path), "--target", "defaulted", "--date-column", "application_date")
    model = ModelVersion.objects.get()
    loaded = engine.model_load(model)
    frame = read_csv(path)
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")[:50]
    ]

    np.testing.assert_array_equal(
        engine.encode_rows(model.feature_names, model.categories, rows),
        encode_frame(frame.head(50), model.feature_names, model.categories),
    )
    for row in rows:
        explanation = engine.explain_one(loaded, row)
        assert explanation.logit == pytest.approx(logit(explanation.probability_of_default), abs=1e-6)


def test_a_column_that_gives_the_outcome_away_is_flagged_and_the_model_not_promoted(tmp_path, reference_data):
    rows = book_rows(800, seed=41)
    header = [*CSV_COLUMNS, "recovered_amount", "closing_code", "defaulted"]
    rows = [[*r[:-1], 1200.0 if r[-1] == "1" else "", "CTX" if r[-1] == "1" else "OK", r[-1]] for r in rows]
    path = write_csv(tmp_path / "leaky.csv", header, rows)

    output = run("train_model", "--csv", str(path), "--target", "defaulted")

    assert "leakage: 'recovered_amount' is filled in exactly for the defaulted files" in output
    assert "possible leakage: the name 'recovered_amount' suggests the outcome" in output
    assert "leakage: 'closing_code' is the target under other names" in output
    assert "Not promoted" in output
    assert ModelVersion.objects.get().status == "candidate"
    warnings = ModelVersion.objects.get().metrics["training_data"]["warnings"]
    assert any("closing_code" in w for w in warnings)


def test_a_numeric_copy_of_the_target_or_a_near_copy_is_flagged(tmp_path, reference_data):
    rng = np.random.default_rng(3)
    rows = book_rows(800, seed=43)
    header = [*CSV_COLUMNS, "flag_copy", "days_past_due", "defaulted"]
    rows = [
        [*r[:-1], int(r[-1]), 95 + rng.integers(0, 200) if r[-1] == "1" else rng.integers(0, 60), r[-1]] for r in rows
    ]
    path = write_csv(tmp_path / "leaky.csv", header, rows)

    output = run("train_model", "--csv", str(path), "--target", "defaulted", "--no-promote")

    assert "leakage: 'flag_copy' is identical to the target" in output
    assert "leakage: 'days_past_due' separates defaults from non-defaults perfectly" in output


def test_excluding_the_leaky_columns_trains_without_them(tmp_path, reference_data):
    rows = [[*r[:-1], 1200.0 if r[-1] == "1" else "", r[-1]] for r in book_rows(800, seed=41)]
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "recovered_amount", "defaulted"], rows)

    output = run("train_model", "--csv", str(path), "--target", "defaulted", "--exclude", "recovered_amount")

    assert "leakage" not in output
    model = ModelVersion.objects.get()
    assert "recovered_amount" not in model.feature_names and model.status == "champion"


def test_positive_names_the_default_label_when_labels_are_text(tmp_path, reference_data) -> None:
    rows = book_rows(800, seed=47, labels=("Défaut", "Sain"))
    defaults = sum(r[-1] == "Défaut" for r in rows)
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "issue"], rows)

    with pytest.raises(CommandError, match=r"cannot tell which value of 'issue' means default .*--positive"):
        run("train_model", "--csv", str(path), "--target", "issue")
    output = run("train_model", "--csv", str(path), "--target", "issue", "--positive", "Défaut")

    assert f"{defaults} defaults" in output and "issue = défaut (non-default: sain)" in output
    assert ModelVersion.objects.get().metrics["training_data"]["defaults"] == defaults


def test_the_default_positive_labels_are_understood(tmp_path, reference_data) -> None:
    rows = book_rows(600, seed=53, labels=("defaulted", "repaid"))
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "outcome_status"], rows)

    output = run("train_model", "--csv", str(path), "--target", "outcome_status")

    assert "outcome_status = defaulted (non-default: repaid)" in output


def test_rows_without_a_target_are_dropped_and_reported_and_constant_columns_dropped(tmp_path, reference_data):
    rows = [[*r[:-1], "EUR", "" if i % 50 == 0 else r[-1]] for i, r in enumerate(book_rows(1000, seed=59))]
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS, "currency", "defaulted"], rows)

    output = run("train_model", "--csv", str(path), "--target", "defaulted")

    assert "1000 rows read, 20 without a target dropped, 980 used" in output
    assert "'currency' is constant: dropped" in output
    model = ModelVersion.objects.get()
    assert "currency" not in model.feature_names and model.metrics["training_data"]["rows_missing_target"] == 20


def test_a_semicolon_csv_with_decimal_commas_is_read_as_numbers(tmp_path, reference_data) -> None:
    rows = [[str(v).replace(".", ",") if isinstance(v, float) else v for v in r] for r in book_rows(600, seed=61)]
    path = write_csv(tmp_path / "export.csv", [*CSV_COLUMNS, "defaulted"], rows, delimiter=";")

    output = run("train_model", "--csv", str(path), "--target", "defaulted", "--date-column", "application_date")

    model = ModelVersion.objects.get()
    assert set(model.categories) == {"sector", "region"}
    assert dict(zip(model.feature_names, model.monotone_constraints, strict=True))["net_margin"] == -1
    assert "decimal commas read as numbers" in output


def test_without_a_date_column_the_file_order_is_the_time_order(tmp_path, reference_data) -> None:
    path = write_csv(tmp_path / "book.csv", [*CSV_COLUMNS[1:], "defaulted"], [r[1:] for r in book_rows(600)])

    output = run("train_model", "--csv", str(path), "--target", "defaulted")

    assert "Time order: file order" in output
    assert ModelVersion.objects.get().training_window == {"from": "row 1", "to": "row 600", "order": "file order"}


def _bad(tmp_path: Path, name: str) -> tuple[list[str], str]:
    header = [*CSV_COLUMNS, "defaulted"]
    good = book_rows(400, seed=67)
    if name == "missing file":
        return ["--csv", str(tmp_path / "nowhere.csv"), "--target", "defaulted"], "CSV file not found"
    if name == "binary file":
        (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04\x00\x00binary")
        return ["--csv", str(tmp_path / "book.xlsx"), "--target", "defaulted"], "cannot read book.xlsx as CSV"
    if name == "empty file":
        (tmp_path / "empty.csv").write_text("")
        return ["--csv", str(tmp_path / "empty.csv"), "--target", "defaulted"], "cannot read empty.csv as CSV"
    if name == "ragged rows":
        (tmp_path / "ragged.csv").write_text("a,b,defaulted\n1,2,0\n1,2,3,4,5\n")
        return ["--csv", str(tmp_path / "ragged.csv"), "--target", "defaulted"], "cannot read ragged.csv as CSV"
    if name == "target absent":
        write_csv(tmp_path / "b.csv", header, good)
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "default_flag",
        ], "--target column 'default_flag' is not in b.csv; its columns are: application_date"
    if name == "target not binary":
        write_csv(tmp_path / "b.csv", header, [[*r[:-1], str(i % 3)] for i, r in enumerate(good)])
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "defaulted",
        ], r"the target column 'defaulted' is not binary: 3 distinct values \(0, 1, 2\)"
    if name == "target constant":
        write_csv(tmp_path / "b.csv", header, [[*r[:-1], "0"] for r in good])
        return ["--csv", str(tmp_path / "b.csv"), "--target", "defaulted"], "has a single value"
    if name == "too few rows":
        write_csv(tmp_path / "b.csv", header, good[:150])
        return ["--csv", str(tmp_path / "b.csv"), "--target", "defaulted"], "150 labelled rows; at least 200 are needed"
    if name == "too few defaults":
        rows = [[*r[:-1], "1" if i < 4 else "0"] for i, r in enumerate(good)]
        write_csv(tmp_path / "b.csv", header, rows)
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "defaulted",
        ], "4 defaults and 396 non-defaults; at least 10 of each are needed"
    if name == "positive not a value":
        write_csv(tmp_path / "b.csv", header, good)
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "defaulted",
            "--positive",
            "yes",
        ], r"--positive 'yes' is not a value of 'defaulted' \(its values: 0, 1\)"
    if name == "date column absent":
        write_csv(tmp_path / "b.csv", header, good)
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "defaulted",
            "--date-column",
            "when",
        ], "--date-column column 'when' is not in b.csv"
    if name == "date column not dates":
        write_csv(tmp_path / "b.csv", header, good)
        return [
            "--csv",
            str(tmp_path / "b.csv"),
            "--target",
            "defaulted",
            "--date-column",
            "sector",
        ], "--date-column 'sector' does not hold dates"
    if name == "target without csv":
        return ["--target", "defaulted"], "--csv FILE and --target COLUMN go together"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "binary file",
        "empty file",
        "ragged rows",
        "target absent",
        "target not binary",
        "target constant",
        "too few rows",
        "too few defaults",
        "positive not a value",
        "date column absent",
        "date column not dates",
        "target without csv",
    ],
)
def test_a_bad_csv_gets_a_command_error_that_says_why(tmp_path, reference_data, case: str) -> None:
    args, message = _bad(tmp_path, case)

    with pytest.raises(CommandError, match=message):
        run("train_model", *args)
    assert not ModelVersion.objects.exists()


# --- evaluation against the oracle and a baseline ---------------------------------------------------------


def test_evaluate_model_synthetic_prints_the_figures_as_json_on_the_last_line() -> None:
    output = run("evaluate_model", "--synthetic", "--json", "--rows", "8000")

    lines = output.strip().splitlines()
    result = json.loads(lines[-1])
    assert {"auc", "gini", "ks", "brier", "oracle_auc", "oracle_brier", "baseline_auc", "baseline_brier"} <= set(result)
    assert result["rows"] == 8000 and result["n_holdout"] == 2000 and result["n_train"] == 6000
    assert result["auc"] > result["baseline_auc"] - 0.02
    assert result["auc"] <= result["oracle_auc"] + 0.02
    assert 0 < result["brier"] < 0.1 and 0 < result["oracle_brier"] < 0.1
    assert result["gini"] == pytest.approx(2 * result["auc"] - 1, abs=2e-4)
    assert any(line.startswith("Oracle (true PD)") for line in lines)
    assert any(line.startswith("Logistic regression") for line in lines)


def test_evaluate_model_without_synthetic_says_what_it_can_do() -> None:
    with pytest.raises(CommandError, match="Only --synthetic is supported"):
        run("evaluate_model")
