"""The model card: what a version is, what it learnt from, how good it is, what it is for and where it stops.

Built from the stored version (metrics, comparison, training reference, calibration) and the retraining run
that made it; rendered as a Markdown document a validator can read without the back-office.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.utils import timezone

from scoring.model import engine
from scoring.model.card import model_card, model_card_markdown
from scoring.model.comparison import compare_on_holdout
from scoring.model.drift import reference_build
from scoring.model.registry import model_register
from scoring.model.synthetic import generate_portfolio
from scoring.models import ModelVersion, RetrainingRun

from .conftest import trained_once

pytestmark = pytest.mark.django_db


def book(n: int, seed: int) -> tuple[list[dict], list[int]]:
    portfolio = generate_portfolio(n, seed=seed)
    return [company.features() for company, _, _ in portfolio], [int(d) for _, _, d in portfolio]


@pytest.fixture
def challenger(champion, senior) -> ModelVersion:
    """A challenger as a retraining leaves it: compared with the champion, with its training reference and run."""
    version = model_register(segment="b2b", trained=trained_once(), trained_by="retraining run 1", promote=False)
    loaded = engine.model_load(version)
    rows, labels = book(1500, 99)
    dates = [f"2024-01-01T00:00:{i:06d}" for i in range(2500, 4000)]  # the first 500 inside the champion's window
    comparison = compare_on_holdout(
        champion=engine.model_load(champion),
        challenger=loaded,
        rows=rows,
        labels=labels,
        dates=dates,
        segment="b2b",
        champion_label=champion.label,
        champion_trained_to=champion.training_window["to"],
        resamples=200,
    )
    comparison["challenger"]["label"] = version.label
    training_rows, _ = book(3000, 11)
    training_rows = [{**row, "revenue": None} if i % 2 else row for i, row in enumerate(training_rows)]
    version.status = ModelVersion.Status.CHALLENGER
    version.comparison = comparison
    version.reference = reference_build(model=loaded, rows=training_rows, pds=engine.predict_pd(loaded, training_rows))
    version.save(update_fields=["status", "comparison", "reference"])
    RetrainingRun.objects.create(
        segment="b2b",
        trigger=RetrainingRun.Trigger.MANUAL,
        status=RetrainingRun.Status.SUCCEEDED,
        started_by=senior,
        labelled={
            "rows": 4500,
            "defaults": 98,
            "immature": 12,
            "without_snapshot": 0,
            "train_rows": 3000,
            "holdout_rows": 1500,
            "summary": "Labelled set: 4500 files (98 defaults).",
        },
        labelled_rows=4500,
        challenger=version,
        finished_at=timezone.now(),
    )
    return version


def test_the_card_names_the_version_and_who_decided_on_it(challenger, senior) -> None:
    ModelVersion.objects.filter(pk=challenger.pk).update(
        decided_by=senior, decided_at=timezone.now(), decision_note="Better on the holdout."
    )
    challenger.refresh_from_db()

    identity = model_card(challenger)["identity"]

    assert identity["label"] == challenger.label
    assert (identity["segment"], identity["status"], identity["version"]) == ("b2b", "challenger", challenger.version)
    assert identity["trained_by"] == "retraining run 1"
    assert identity["decided_by"] == "sam.senior"
    assert identity["decision_note"] == "Better on the holdout."
    assert identity["created_at"] == challenger.created_at.isoformat()


def test_the_card_says_what_the_model_learnt_from(challenger) -> None:
    data = model_card(challenger)["data"]

    assert data["training_window"] == trained_once().training_window
    assert data["data_hash"] == challenger.data_hash
    assert data["rows"] == 3000
    assert data["labelled"]["defaults"] == 98
    assert data["retraining"]["trigger"] == "manual"
    assert data["retraining"]["started_by"] == "sam.senior"


def test_each_feature_comes_with_its_label_its_kind_and_its_constraint(challenger) -> None:
    features = {f["name"]: f for f in model_card(challenger)["features"]}

    assert list(features) == challenger.feature_names
    assert features["naf_section"]["categorical"] is True
    assert features["naf_section"]["label"] == "Sector"
    assert features["days_overdraft_12m"]["monotone"] == 1
    assert features["days_overdraft_12m"]["constraint"] == "risk rises with the value"
    assert features["company_age_years"]["monotone"] == -1
    assert features["revenue"]["missing_share"] >= 0.5


def test_the_card_carries_the_metrics_the_comparison_and_the_calibration(challenger) -> None:
    card = model_card(challenger)

    assert card["metrics"]["auc"] == trained_once().metrics["auc"]
    assert card["metrics"]["estimate"] == "out_of_fold"
    assert card["comparison"]["holdout"]["rows"] == 1500
    assert [g["name"] for g in card["comparison"]["gates"]] == [
        "holdout_defaults",
        "auc_not_worse",
        "brier_not_worse",
        "calibration",
    ]
    assert card["calibration"]["calibrated"] is False
    assert "b2b" not in card["intended_use"] and "French company" in card["intended_use"]
    assert json.loads(json.dumps(card)) == card


def test_a_calibrated_version_shows_its_platt_parameters(champion) -> None:
    trained = dataclasses.replace(trained_once(), calibration={"a": 0.8, "b": -0.35})
    version = model_register(segment="b2b", trained=trained, trained_by="tests", promote=False)

    calibration = model_card(version)["calibration"]

    assert (calibration["calibrated"], calibration["a"], calibration["b"]) == (True, 0.8, -0.35)
    assert "sigmoid(0.8000 · margin + -0.3500)" in model_card_markdown(model_card(version))


def test_the_known_limits_are_derived_from_what_is_stored(challenger) -> None:
    limits = model_card(challenger)["limits"]

    assert any("98 defaults" in limit for limit in limits)  # fewer than 100
    assert any("500 files the champion was trained on" in limit for limit in limits)
    missing = challenger.reference["features"]["revenue"]["missing"]  # half the rows blanked, and more
    assert missing >= 0.5
    assert any(f"Revenue ({missing:.0%})" in limit for limit in limits)
    assert any("not for b2c" in limit for limit in limits)
    assert not any("small book" in limit for limit in limits)


def test_a_version_no_retraining_made_has_no_comparison_and_a_smaller_card(champion) -> None:
    card = model_card(champion)

    assert card["comparison"] is None
    assert card["data"]["labelled"] is None and card["data"]["retraining"] is None
    assert all(f["missing_share"] is None for f in card["features"])
    assert "No champion/challenger comparison" in model_card_markdown(card)


def test_the_markdown_document_has_every_section(challenger) -> None:
    card = model_card(challenger)

    document = model_card_markdown(card)

    assert document.startswith(f"# Model card: {challenger.label}\n")
    for heading in (
        "## Identity",
        "## Intended use",
        "## Training data",
        "## Features and constraints",
        "## Validation metrics",
        "## Calibration",
        "## Comparison with the champion",
        "## Known limits",
    ):
        assert f"\n{heading}\n" in document
    assert "| Sector | `naf_section` | categorical |" in document
    assert f"| {trained_once().metrics['auc']:.4f} |" in document
    for gate in card["comparison"]["gates"]:
        assert gate["detail"] in document
    for limit in card["limits"]:
        assert f"- {limit}" in document
    assert "Labelled set: 4500 files (98 defaults)." in document
