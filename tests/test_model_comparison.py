"""Champion against challenger on the same out-of-time holdout: figures, paired intervals, calibration, gates.

A challenger may replace the champion only if, on files neither trained on, it is not worse beyond noise
(paired bootstrap intervals of the differences), its mean PD agrees with the default rate actually observed
in every well-filled band, and the holdout holds enough defaults for any of it to mean something.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from scoring.model import engine
from scoring.model.comparison import compare_on_holdout, gates_evaluate, jeffreys_interval
from scoring.model.synthetic import generate_portfolio
from scoring.model.training import discrimination_metrics, train_segment

from .conftest import trained_once

RESAMPLES = 300


@pytest.fixture(scope="module")
def holdout() -> tuple[list[dict], list[int], list[str]]:
    """3,000 synthetic companies the session's model never saw, dated in 2025."""
    portfolio = generate_portfolio(3000, seed=99)
    rows = [company.features() for company, _, _ in portfolio]
    labels = [int(defaulted) for _, _, defaulted in portfolio]
    dates = [f"2025-01-01T00:00:{i:06d}" for i in range(len(rows))]
    return rows, labels, dates


@pytest.fixture(scope="module")
def good() -> engine.LoadedModel:
    return engine.model_from_trained(trained_once())


@pytest.fixture(scope="module")
def noise() -> engine.LoadedModel:
    """A model trained on shuffled labels: it learnt nothing, so it ranks no better than chance."""
    portfolio = generate_portfolio(1200, seed=5)
    rows = [company.features() for company, _, _ in portfolio]
    labels = np.random.default_rng(1).permutation([int(d) for _, _, d in portfolio]).tolist()
    dates = [f"2023-01-01T00:00:{i:06d}" for i in range(len(rows))]
    return engine.model_from_trained(train_segment("b2b", rows, labels, dates))


def compare(holdout, *, champion, challenger, **kwargs) -> dict:
    rows, labels, dates = holdout
    return compare_on_holdout(
        champion=champion,
        challenger=challenger,
        rows=rows,
        labels=labels,
        dates=dates,
        segment="b2b",
        champion_label="b2b-v1" if champion else None,
        resamples=kwargs.pop("resamples", RESAMPLES),
        **kwargs,
    )


def gate(comparison: dict, name: str) -> dict:
    return next(g for g in comparison["gates"] if g["name"] == name)


def test_the_figures_are_those_of_the_usual_metrics_on_the_holdout(holdout, good) -> None:
    rows, labels, _ = holdout
    expected = discrimination_metrics(np.array(labels), engine.predict_pd(good, rows))

    comparison = compare(holdout, champion=None, challenger=good)

    figures = comparison["challenger"]
    assert figures["auc"] == pytest.approx(expected["auc"], abs=1e-4)
    assert figures["gini"] == pytest.approx(expected["gini"], abs=1e-4)
    assert figures["ks"] == pytest.approx(expected["ks"], abs=1e-4)
    assert figures["brier"] == pytest.approx(expected["brier"], abs=1e-5)
    assert figures["mean_pd"] == pytest.approx(expected["mean_pd"], abs=1e-4)
    for metric in ("auc", "gini", "ks", "brier", "mean_pd"):
        low, high = figures["ci"][metric]
        assert low <= figures[metric] <= high
    assert comparison["holdout"] == {
        "rows": 3000,
        "defaults": sum(labels),
        "from": "2025-01-01T00:00:000000",
        "to": "2025-01-01T00:00:002999",
        "champion_saw": None,
    }


def test_the_comparison_is_json_and_reproducible_with_its_seed(holdout, good, noise) -> None:
    first = compare(holdout, champion=noise, challenger=good, seed=3)
    again = compare(holdout, champion=noise, challenger=good, seed=3)

    assert json.loads(json.dumps(first)) == first
    assert first == again


def test_a_challenger_identical_to_the_champion_differs_by_exactly_nothing_and_passes(holdout, good) -> None:
    comparison = compare(holdout, champion=good, challenger=good)

    for metric, difference in comparison["difference"].items():
        assert difference == {"value": 0.0, "low": 0.0, "high": 0.0}, metric
    assert [g["name"] for g in comparison["gates"]] == [
        "holdout_defaults",
        "auc_not_worse",
        "brier_not_worse",
        "calibration",
    ]
    assert comparison["passed"], comparison["gates"]


def test_a_challenger_worse_beyond_noise_fails_the_auc_gate(holdout, good, noise) -> None:
    comparison = compare(holdout, champion=good, challenger=noise)

    auc = comparison["difference"]["auc"]
    assert auc["high"] < 0
    assert auc["low"] <= auc["value"] <= auc["high"]
    failed = gate(comparison, "auc_not_worse")
    assert not failed["passed"]
    assert "b2b-v1" in failed["detail"] and f"{auc['high']:+.4f}" in failed["detail"]
    assert not comparison["passed"]


def test_a_better_challenger_passes_the_auc_and_brier_gates(holdout, good, noise) -> None:
    comparison = compare(holdout, champion=noise, challenger=good)

    assert comparison["difference"]["auc"]["low"] > 0
    assert comparison["difference"]["brier"]["high"] < 0
    assert gate(comparison, "auc_not_worse")["passed"]
    assert gate(comparison, "brier_not_worse")["passed"]


def test_a_tolerance_lets_a_slightly_worse_challenger_through(holdout, good, noise, settings) -> None:
    comparison = compare(holdout, champion=good, challenger=noise)
    assert not gate(comparison, "auc_not_worse")["passed"]

    settings.MODEL_GATE_AUC_TOLERANCE = 1.0  # any AUC loss tolerated
    assert next(g for g in gates_evaluate(comparison) if g["name"] == "auc_not_worse")["passed"]


def test_without_a_champion_only_the_holdout_and_calibration_gates_judge(holdout, good) -> None:
    comparison = compare(holdout, champion=None, challenger=good)

    assert comparison["champion"] is None
    assert comparison["difference"] == {}
    assert gate(comparison, "auc_not_worse")["passed"]
    assert "No champion" in gate(comparison, "brier_not_worse")["detail"]
    assert all(band["champion_mean_pd"] is None for band in comparison["calibration"])


def test_a_holdout_with_too_few_defaults_fails_its_gate(holdout, good, settings) -> None:
    settings.MODEL_GATE_MIN_DEFAULTS = 10_000

    comparison = compare(holdout, champion=None, challenger=good)

    failed = gate(comparison, "holdout_defaults")
    assert not failed["passed"]
    assert "10000" in failed["detail"]
    assert comparison["settings"]["min_defaults"] == 10_000
    assert not comparison["passed"]


def test_a_challenger_predicting_seven_times_the_risk_fails_the_calibration_gate(holdout, good) -> None:
    """Shifting every log-odds by +2 keeps the ranking (same AUC) but multiplies small PDs by about e²."""
    pessimist = dataclasses.replace(good, calibration={"a": 1.0, "b": 2.0})

    comparison = compare(holdout, champion=good, challenger=pessimist)

    assert comparison["difference"]["auc"]["value"] == 0.0
    failed = gate(comparison, "calibration")
    assert not failed["passed"]
    assert "band" in failed["detail"]
    judged = [band for band in comparison["calibration"] if band["n"] >= 30]
    assert any(band["challenger_mean_pd"] > band["observed_high"] + 0.02 for band in judged)


def test_a_challenger_less_off_than_a_miscalibrated_champion_passes_the_calibration_gate(holdout, good) -> None:
    """After a drift both models miss the observed rates; the gate does not keep the one that misses more."""
    far_off = dataclasses.replace(good, calibration={"a": 1.0, "b": 2.0})
    less_off = dataclasses.replace(good, calibration={"a": 1.0, "b": 1.0})

    comparison = compare(holdout, champion=far_off, challenger=less_off)

    judged = [band for band in comparison["calibration"] if band["n"] >= 30]
    assert any(band["challenger_mean_pd"] > band["observed_high"] + 0.02 for band in judged)  # still off
    passed = gate(comparison, "calibration")
    assert passed["passed"]
    assert "no further from it than the champion's" in passed["detail"]


def test_a_challenger_more_off_than_a_miscalibrated_champion_fails_the_calibration_gate(holdout, good) -> None:
    champion = dataclasses.replace(good, calibration={"a": 1.0, "b": 1.0})
    further_off = dataclasses.replace(good, calibration={"a": 1.0, "b": 2.0})

    comparison = compare(holdout, champion=champion, challenger=further_off)

    failed = gate(comparison, "calibration")
    assert not failed["passed"]
    assert "further from it than the champion's" in failed["detail"]


def test_without_a_champion_a_miscalibrated_challenger_fails_the_calibration_gate(holdout, good) -> None:
    pessimist = dataclasses.replace(good, calibration={"a": 1.0, "b": 2.0})

    comparison = compare(holdout, champion=None, challenger=pessimist)

    assert not gate(comparison, "calibration")["passed"]
    assert not comparison["passed"]


def test_calibration_bands_the_rows_by_the_challengers_pd_and_counts_them_by_hand(holdout, good, noise) -> None:
    rows, labels, _ = holdout
    challenger_pd = engine.predict_pd(good, rows)
    champion_pd = engine.predict_pd(noise, rows)
    in_band_c = (challenger_pd >= 0.015) & (challenger_pd < 0.04)
    defaults = int(np.array(labels)[in_band_c].sum())

    comparison = compare(holdout, champion=noise, challenger=good)

    band_c = next(band for band in comparison["calibration"] if band["band"] == "C")
    assert band_c["n"] == int(in_band_c.sum())
    assert band_c["defaults"] == defaults
    assert band_c["observed_rate"] == pytest.approx(defaults / band_c["n"], abs=1e-5)
    assert band_c["observed_low"] < band_c["observed_rate"] < band_c["observed_high"]
    assert band_c["challenger_mean_pd"] == pytest.approx(challenger_pd[in_band_c].mean(), abs=1e-5)
    assert band_c["champion_mean_pd"] == pytest.approx(champion_pd[in_band_c].mean(), abs=1e-5)
    assert sum(band["n"] for band in comparison["calibration"]) == len(rows)


def test_champion_saw_counts_the_holdout_files_dated_within_the_champions_training_window(holdout, good) -> None:
    comparison = compare(holdout, champion=good, challenger=good, champion_trained_to="2025-01-01T00:00:000499")

    assert comparison["holdout"]["champion_saw"] == 500


def test_the_jeffreys_interval_of_a_default_rate() -> None:
    # Brown, Cai & DasGupta (2001): for 0 defaults the interval starts at 0; for all defaults it ends at 1.
    assert jeffreys_interval(0, 50)[0] == 0.0
    assert jeffreys_interval(50, 50)[1] == 1.0
    # 10 defaults in 100: Beta(10.5, 90.5) quantiles, about 5.3 % to 17.0 %.
    low, high = jeffreys_interval(10, 100)
    assert low == pytest.approx(0.0526, abs=5e-4)
    assert high == pytest.approx(0.1700, abs=5e-4)


def test_a_holdout_without_a_single_default_measures_no_auc_and_fails(holdout, good, noise) -> None:
    rows, labels, dates = holdout
    repaid = [i for i, label in enumerate(labels) if label == 0][:500]

    comparison = compare_on_holdout(
        champion=noise,
        challenger=good,
        rows=[rows[i] for i in repaid],
        labels=[0] * len(repaid),
        dates=[dates[i] for i in repaid],
        segment="b2b",
        resamples=50,
    )

    assert comparison["challenger"]["auc"] is None
    assert comparison["challenger"]["ci"]["auc"] == [None, None]
    assert comparison["difference"]["auc"] == {"value": None, "low": None, "high": None}
    assert not gate(comparison, "auc_not_worse")["passed"]
    assert not gate(comparison, "holdout_defaults")["passed"]
    assert json.loads(json.dumps(comparison)) == comparison
