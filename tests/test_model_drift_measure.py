"""Population stability of live scores and features against the model's training reference.

The reference holds the training shares in fixed bins (ten quantile bins of the PD; up to ten quantile bins
plus "missing" per numeric feature; one bin per category plus "other or missing" per categorical feature);
live files go into the same bins and the PSI says how far their shares have moved.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from scoring.model import engine
from scoring.model.drift import drift_measure, psi, reference_build
from scoring.model.synthetic import generate_portfolio

from .conftest import trained_once


def book(n: int, seed: int) -> list[dict]:
    return [company.features() for company, _, _ in generate_portfolio(n, seed=seed)]


@pytest.fixture(scope="module")
def model() -> engine.LoadedModel:
    return engine.model_from_trained(trained_once())


@pytest.fixture(scope="module")
def training(model) -> tuple[list[dict], np.ndarray]:
    rows = book(3000, 11)
    return rows, engine.predict_pd(model, rows)


@pytest.fixture(scope="module")
def reference(model, training) -> dict:
    rows, pds = training
    return reference_build(model=model, rows=rows, pds=pds)


def test_the_textbook_psi_computed_by_hand() -> None:
    # Four bins of 25 % that become 10/20/30/40 %:
    # (0.10-0.25)·ln(0.10/0.25) + (0.20-0.25)·ln(0.8) + (0.30-0.25)·ln(1.2) + (0.40-0.25)·ln(1.6)
    # = 0.137444 + 0.011157 + 0.009116 + 0.070501 = 0.228218
    assert psi([0.25, 0.25, 0.25, 0.25], [0.10, 0.20, 0.30, 0.40]) == pytest.approx(0.228218, abs=1e-6)
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0


def test_an_empty_bin_is_floored_rather_than_infinite() -> None:
    value = psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert math.isfinite(value)
    assert value == pytest.approx(2 * 0.1 * math.log(5 / 4) + (0.2 - 1e-4) * math.log(0.2 / 1e-4), abs=1e-9)


def test_the_reference_holds_ten_equal_bins_of_the_training_pds(reference, training) -> None:
    _, pds = training
    score = reference["score"]

    assert reference["rows"] == 3000
    assert len(score["edges"]) == 9
    assert score["edges"] == sorted(score["edges"])
    assert sum(score["shares"]) == pytest.approx(1.0)
    assert all(share == pytest.approx(0.1, abs=0.002) for share in score["shares"])
    assert np.mean(pds <= score["edges"][0]) == pytest.approx(score["shares"][0])  # a PD on an edge goes below it
    assert json.loads(json.dumps(reference)) == reference


def test_each_feature_has_its_bins_and_its_missing_share(reference, training, model) -> None:
    rows, _ = training
    assert set(reference["features"]) == set(model.feature_names)

    revenue = reference["features"]["revenue"]
    missing = sum(1 for row in rows if row["revenue"] is None) / len(rows)
    assert revenue["kind"] == "numeric"
    assert revenue["missing"] == pytest.approx(missing, abs=1e-6)
    assert sum(revenue["shares"]) + revenue["missing"] == pytest.approx(1.0)

    # A flag takes two values: its equal quantile edges merge into one, so two bins.
    flag = reference["features"]["open_insolvency_proceeding"]
    assert len(flag["edges"]) <= 1
    assert len(flag["shares"]) == len(flag["edges"]) + 1

    sector = reference["features"]["naf_section"]
    assert sector["kind"] == "categorical"
    assert sector["categories"] == sorted({row["naf_section"] for row in rows if row["naf_section"]})
    assert sum(sector["shares"]) + sector["other"] == pytest.approx(1.0)


def test_live_files_drawn_like_the_training_files_do_not_drift(reference, model) -> None:
    live = book(3000, 12)

    drift = drift_measure(reference=reference, rows=live, pds=engine.predict_pd(model, live))

    assert drift["score"] < 0.05
    assert set(drift["features"]) == set(model.feature_names)
    assert drift["max"] < 0.05
    assert drift["max"] == max(drift["features"].values())
    assert drift["features"][drift["max_of"]] == drift["max"]


def test_a_shifted_population_drifts_beyond_the_alert_threshold(reference, model) -> None:
    live = book(3000, 12)
    for row in live:  # every company's balance sheet is now unknown, and its payment delays tripled
        row["revenue"] = None
        row["max_payment_delay_days"] *= 3

    drift = drift_measure(reference=reference, rows=live, pds=engine.predict_pd(model, live))

    assert drift["features"]["revenue"] > 0.25
    assert drift["features"]["max_payment_delay_days"] > 0.25
    assert drift["features"]["headcount"] < 0.05
    assert drift["max_of"] in {"revenue", "max_payment_delay_days"}


def test_a_score_shift_alone_shows_in_the_score_psi(reference, training) -> None:
    rows, pds = training

    drift = drift_measure(reference=reference, rows=rows, pds=np.minimum(pds * 3, 1.0))

    assert drift["score"] > 0.25
    assert drift["max"] == pytest.approx(0.0, abs=1e-9)  # the same files: the features did not move


def test_an_unseen_sector_falls_in_the_other_bin(reference, training) -> None:
    rows, pds = training
    live = [{**row, "naf_section": "ZZ"} for row in rows]

    drift = drift_measure(reference=reference, rows=live, pds=pds)

    other = reference["features"]["naf_section"]["other"]
    # Everything moves into "other or missing": its term dominates the PSI.
    assert drift["features"]["naf_section"] > (1 - other) * math.log(1 / max(other, 1e-4))
    assert drift["max_of"] == "naf_section"


def test_no_live_files_give_no_figures(reference) -> None:
    assert drift_measure(reference=reference, rows=[], pds=[]) == {
        "score": None,
        "features": {},
        "max": None,
        "max_of": None,
    }
