"""The feature catalogue: one definition per feature, documented in docs/features.md, generated so it cannot drift."""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from scoring.model.features import (
    CATALOGUES,
    FEATURES_BY_NAME,
    NO_DIRECTION,
    RISK_DOWN,
    RISK_UP,
    factor_text,
    features_for,
)
from scoring.model.synthetic import sandbox_individual, true_logit_individual
from scoring.policy.scale import BANDS, SCALES
from scoring.sources import GatheredData

DOC = Path(settings.BASE_DIR) / "docs" / "features.md"
UNITS = {"years", "months", "count", "eur", "ratio", "pct", "days", "flag", "category"}


def run(*args: str) -> str:
    out = StringIO()
    call_command("feature_catalogue", *args, stdout=out)
    return out.getvalue()


def test_the_committed_docs_match_the_code():
    assert "up to date" in run("--check")


def test_check_fails_when_the_document_was_edited_by_hand_and_passes_once_regenerated(tmp_path):
    path = tmp_path / "features.md"
    run("--path", str(path))
    assert "up to date" in run("--check", "--path", str(path))

    path.write_text(path.read_text().replace("risk rises with the value", "risk falls with the value", 1))
    with pytest.raises(CommandError, match=r"out of date.*feature_catalogue"):
        run("--check", "--path", str(path))

    run("--path", str(path))
    assert "up to date" in run("--check", "--path", str(path))


def test_check_fails_when_the_document_is_missing(tmp_path):
    with pytest.raises(CommandError, match="out of date"):
        run("--check", "--path", str(tmp_path / "nowhere.md"))


def test_the_document_lists_every_feature_of_every_segment_with_its_source_meaning_unit_and_direction():
    text = DOC.read_text()
    assert "Generated from scoring/model/features.py" in text and "python manage.py feature_catalogue" in text
    sections = {
        "b2b": text.split("## Companies (B2B)")[1].split("## ")[0],
        "b2c": text.split("## Individuals (B2C)")[1].split("## ")[0],
    }
    for segment, catalogue in CATALOGUES.items():
        for feature in catalogue:
            row = next(line for line in sections[segment].splitlines() if line.startswith(f"| `{feature.name}` |"))
            assert feature.source in row and feature.meaning in row
            direction = {RISK_UP: "risk rises", RISK_DOWN: "risk falls", NO_DIRECTION: "no fixed direction"}
            assert direction[feature.direction] in row


def test_the_document_gives_each_scales_parameters_and_the_bands():
    text = DOC.read_text()
    for scale in SCALES.values():
        assert f"| {scale.low}–{scale.high} | {scale.base_score:g} | {scale.base_odds:g}:1" in text
        assert f"{scale.factor:.4f}" in text and f"{scale.offset:.4f}" in text
    for band, _, step in BANDS:
        assert f"| {band} |" in text and step in text


def test_every_feature_is_fully_described_in_both_languages_and_a_name_means_one_thing():
    for segment, catalogue in CATALOGUES.items():
        names = [feature.name for feature in catalogue]
        assert len(names) == len(set(names)), segment
        for feature in catalogue:
            assert FEATURES_BY_NAME[feature.name] is feature  # a shared name is the same definition
            assert feature.source and feature.meaning and feature.unit in UNITS
            assert feature.direction in (RISK_UP, RISK_DOWN, NO_DIRECTION)
            assert feature.direction == NO_DIRECTION or not feature.categorical
            for text in (
                feature.label_en,
                feature.label_fr,
                feature.good_en,
                feature.bad_en,
                feature.good_fr,
                feature.bad_fr,
            ):
                assert text.strip()


@pytest.mark.parametrize("feature", CATALOGUES["b2c"], ids=lambda f: f.name)
def test_every_b2c_reason_reads_in_french_and_english_with_its_value_or_as_missing_data(feature):
    value = 3.0 if feature.unit != "pct" else 0.25
    for lang in ("fr", "en"):
        raising, lowering = factor_text(feature.name, value, 0.4, lang), factor_text(feature.name, value, -0.4, lang)
        assert raising != lowering
        assert factor_text(feature.name, None, 0.1, lang).startswith(("Donnée manquante", "Missing data"))
    assert factor_text(feature.name, value, 0.4, "fr") != factor_text(feature.name, value, 0.4, "en")


def test_the_b2c_features_are_built_from_the_gathered_bank_data_in_catalogue_order():
    profile = sandbox_individual("CUST-1", with_bank=True)
    gathered = GatheredData(bank=profile.bank, events=profile.events)
    features = features_for("b2c", gathered, 6000.0)
    assert list(features) == [f.name for f in CATALOGUES["b2c"]]
    bank = profile.bank
    assert features["monthly_income"] == bank["avg_monthly_inflows"]
    assert features["debt_service_ratio"] == pytest.approx(
        bank["monthly_credit_repayments"] / bank["avg_monthly_inflows"]
    )
    assert features["amount_to_income"] == pytest.approx(6000.0 / (12 * bank["avg_monthly_inflows"]))
    empty = features_for("b2c", GatheredData(), 6000.0)
    assert all(value is None for value in empty.values())  # missing stays missing, never a made-up zero


@pytest.mark.parametrize("feature", [f for f in CATALOGUES["b2c"] if f.direction != NO_DIRECTION], ids=lambda f: f.name)
def test_the_documented_direction_of_each_b2c_feature_is_the_ground_truths(feature):
    """More of a 'risk rises' feature never lowers the oracle's PD (min_balance_12m has no effect of its own)."""
    base = sandbox_individual("CUST-DIRECTION", with_bank=True).features()
    step = {"eur": 500.0, "pct": 0.05, "months": 24, "count": 1, "days": 10}[feature.unit]
    low, high = dict(base), dict(base)
    high[feature.name] = base[feature.name] + step
    change = true_logit_individual(high) - true_logit_individual(low)
    assert math.copysign(1, change) == feature.direction or change == 0
    assert feature.name == "min_balance_12m" or change != 0
