"""Explanations: exact TreeSHAP contributions that add up to the log-odds, and the reasons analysts read."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from scoring.model import engine
from scoring.model.engine import Explanation, LoadedModel
from scoring.model.features import FEATURE_NAMES, FEATURES_BY_NAME, factor_text, format_value, is_missing
from scoring.model.synthetic import generate_portfolio
from scoring.models import ModelVersion

NNBSP = "\u202f"  # narrow no-break space: the French thousands separator


@pytest.fixture(scope="module")
def companies() -> list[dict[str, Any]]:
    """Feature dicts of 50 synthetic companies (some without bank data or accounts)."""
    return [company.features() for company, _, _ in generate_portfolio(50, seed=3)]


@pytest.fixture
def loaded(champion: ModelVersion) -> LoadedModel:
    return engine.model_load(champion)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


# --- additivity and agreement with the booster ---------------------------------------------------


def test_base_value_plus_contributions_equals_the_logit_of_pd_for_every_company(loaded, companies) -> None:
    for features in companies:
        explanation = engine.explain_one(loaded, features)

        total = explanation.base_value + sum(explanation.contributions.values())
        assert total == pytest.approx(logit(explanation.probability_of_default), abs=1e-6)
        assert explanation.logit == pytest.approx(total, abs=1e-12)


def test_the_explained_pd_is_the_boosters_own_prediction(loaded, companies) -> None:
    matrix = engine.encode_rows(loaded.feature_names, loaded.categories, companies)
    predicted = loaded.booster.predict(engine.dmatrix(loaded, matrix))
    margins = loaded.booster.predict(engine.dmatrix(loaded, matrix), output_margin=True)

    for features, pd, margin in zip(companies, predicted, margins, strict=True):
        explanation = engine.explain_one(loaded, features)
        assert explanation.probability_of_default == pytest.approx(float(pd), abs=1e-6)
        assert explanation.logit == pytest.approx(float(margin), abs=1e-5)


def test_there_is_one_contribution_per_model_feature_in_the_catalogue(loaded, companies) -> None:
    explanation = engine.explain_one(loaded, companies[0])

    assert list(explanation.contributions) == loaded.feature_names == FEATURE_NAMES


def test_the_same_features_always_get_the_same_explanation(loaded, companies) -> None:
    assert engine.explain_one(loaded, companies[7]) == engine.explain_one(loaded, companies[7])


def test_contributions_equal_shap_tree_explainer_values_on_the_same_booster(loaded, companies) -> None:
    # The booster has categorical splits: shap's own tree walker refuses them ("interventional"), so
    # TreeExplainer's tree_path_dependent path hands the DMatrix to XGBoost's TreeSHAP.
    shap = pytest.importorskip("shap")
    matrix = engine.encode_rows(loaded.feature_names, loaded.categories, companies)
    explainer = shap.TreeExplainer(loaded.booster)

    values = explainer.shap_values(engine.dmatrix(loaded, matrix))

    for row, features in enumerate(companies):
        explanation = engine.explain_one(loaded, features)
        ours = np.array([explanation.contributions[name] for name in loaded.feature_names])
        np.testing.assert_allclose(ours, values[row], atol=1e-4)
        assert explanation.base_value == pytest.approx(float(explainer.expected_value), abs=1e-4)


def test_a_category_never_seen_in_training_is_explained_like_a_missing_value(loaded, companies) -> None:
    unseen = dict(companies[0], naf_section="Z")
    missing = dict(companies[0], naf_section=None)

    assert engine.explain_one(loaded, unseen) == engine.explain_one(loaded, missing)


# --- factors ------------------------------------------------------------------------------------


def test_the_factors_are_the_top_four_of_each_kind_by_absolute_value(loaded, companies) -> None:
    for features in companies:
        explanation = engine.explain_one(loaded, features)
        factors = engine.factors_from(explanation, features)

        for direction in ("increases_risk", "decreases_risk", "missing"):
            kind = [
                name
                for name, value in sorted(explanation.contributions.items(), key=lambda i: abs(i[1]), reverse=True)
                if value != 0
                and (
                    is_missing(features.get(name))
                    if direction == "missing"
                    else not is_missing(features.get(name)) and (value > 0) == (direction == "increases_risk")
                )
            ]
            assert [f["feature"] for f in factors if f["direction"] == direction] == kind[:4]


def test_a_score_always_carries_what_raised_its_risk_even_when_lowering_factors_weigh_more() -> None:
    contributions = dict.fromkeys(FEATURE_NAMES, 0.0)
    contributions.update(
        revenue=-0.9, equity_ratio=-0.8, company_age_years=-0.7, headcount=-0.6, net_margin=-0.5, payment_delays_12m=0.1
    )
    explanation = Explanation(probability_of_default=0.05, base_value=-3.0, contributions=contributions)
    features = {
        "revenue": 2e6,
        "equity_ratio": 0.4,
        "company_age_years": 20.0,
        "headcount": 40.0,
        "net_margin": 0.1,
        "payment_delays_12m": 3,
    }

    factors = engine.factors_from(explanation, features)

    assert [f["feature"] for f in factors] == [
        "revenue",
        "equity_ratio",
        "company_age_years",
        "headcount",
        "payment_delays_12m",
    ]
    assert factors[-1]["direction"] == "increases_risk"


def test_factors_are_ordered_by_decreasing_absolute_contribution(loaded, companies) -> None:
    for features in companies:
        factors = engine.factors_from(engine.explain_one(loaded, features), features)

        sizes = [abs(f["contribution"]) for f in factors]
        assert sizes == sorted(sizes, reverse=True)


def test_a_factor_states_its_direction_from_the_sign_of_its_contribution_unless_its_value_is_missing(
    loaded, companies
) -> None:
    for features in companies:
        explanation = engine.explain_one(loaded, features)
        for factor in engine.factors_from(explanation, features):
            contribution = explanation.contributions[factor["feature"]]
            if is_missing(features.get(factor["feature"])):
                assert factor["direction"] == "missing"
            else:
                assert factor["direction"] == ("increases_risk" if contribution > 0 else "decreases_risk")
            assert factor["contribution"] == round(contribution, 6)


def test_a_missing_feature_among_the_factors_is_reported_as_missing_data(loaded, companies) -> None:
    seen_missing = 0
    for features in companies:
        for factor in engine.factors_from(engine.explain_one(loaded, features), features):
            if is_missing(features.get(factor["feature"])):
                seen_missing += 1
                assert factor["missing"] is True and factor["direction"] == "missing"
                assert factor["value"] is None
                assert factor["text"]["fr"].startswith("Donnée manquante : ")
                assert factor["text"]["en"].startswith("Missing data: ")
            else:
                assert factor["missing"] is False
                assert "manquante" not in factor["text"]["fr"]
    assert seen_missing > 0, "the portfolio should have some company whose missing data weighs in"


def test_missing_data_is_a_factor_of_its_own_whatever_the_sign_of_its_contribution() -> None:
    contributions = dict.fromkeys(FEATURE_NAMES, 0.0)
    contributions.update(
        avg_balance_12m=0.9, revenue=-0.5, payment_delays_12m=0.3, company_age_years=-0.2, debt_to_ebitda=-0.4
    )
    explanation = Explanation(probability_of_default=0.1, base_value=-3.0, contributions=contributions)
    features = {
        "avg_balance_12m": None,
        "debt_to_ebitda": float("nan"),
        "revenue": 250_000.0,
        "payment_delays_12m": 2,
        "company_age_years": 12.0,
    }

    factors = engine.factors_from(explanation, features)

    assert [(f["feature"], f["direction"]) for f in factors] == [
        ("avg_balance_12m", "missing"),
        ("revenue", "decreases_risk"),
        ("debt_to_ebitda", "missing"),
        ("payment_delays_12m", "increases_risk"),
        ("company_age_years", "decreases_risk"),
    ]
    assert factors[0]["text"] == {
        "fr": "Donnée manquante : solde moyen (12 mois) (non disponible)",
        "en": "Missing data: average balance (12 months) (not available)",
    }
    assert factors[2]["text"]["en"] == "Missing data: debt to EBITDA (not available)"


def test_a_factor_carries_both_labels_and_the_value(loaded, companies) -> None:
    features = companies[0]
    factor = engine.factors_from(engine.explain_one(loaded, features), features)[0]
    feature = FEATURES_BY_NAME[factor["feature"]]

    assert factor["label"] == {"en": feature.label_en, "fr": feature.label_fr}
    assert factor["value"] == (None if is_missing(features[feature.name]) else features[feature.name])


def test_factors_from_with_a_top_gives_exactly_the_largest_contributions_whatever_their_kind(loaded, companies) -> None:
    explanation = engine.explain_one(loaded, companies[0])
    ranked = sorted(explanation.contributions, key=lambda n: abs(explanation.contributions[n]), reverse=True)

    assert [f["feature"] for f in engine.factors_from(explanation, companies[0], top=3)] == ranked[:3]


# --- the order that fits the decision -------------------------------------------------------------------------

MIXED = [
    {"feature": "revenue", "direction": "decreases_risk", "missing": False, "contribution": -0.9},
    {"feature": "avg_balance_12m", "direction": "missing", "missing": True, "contribution": -0.6},
    {"feature": "payment_delays_12m", "direction": "increases_risk", "missing": False, "contribution": 0.3},
    {"feature": "company_age_years", "direction": "decreases_risk", "missing": False, "contribution": -0.2},
    {"feature": "naf_section", "direction": "increases_risk", "missing": False, "contribution": 0.5},
]


def order(decision: str | None) -> list[str]:
    return [f["feature"] for f in engine.factors_in_decision_order(MIXED, decision)]


@pytest.mark.parametrize("decision", ["guarantee", "refuse"])
def test_a_guarantee_or_a_refusal_leads_with_what_raised_the_risk_then_missing_data_then_what_lowered_it(decision):
    assert order(decision) == ["naf_section", "payment_delays_12m", "avg_balance_12m", "revenue", "company_age_years"]


def test_an_accept_leads_with_what_lowered_the_risk():
    assert order("accept") == ["revenue", "company_age_years", "naf_section", "payment_delays_12m", "avg_balance_12m"]


def test_a_referral_leads_with_the_missing_data():
    assert order("refer") == ["avg_balance_12m", "naf_section", "payment_delays_12m", "revenue", "company_age_years"]


def test_without_a_decision_the_factors_come_largest_first():
    assert order(None) == ["revenue", "avg_balance_12m", "naf_section", "payment_delays_12m", "company_age_years"]


def test_a_factor_stored_before_missing_was_a_direction_comes_out_as_missing():
    legacy = [{"feature": "revenue", "direction": "decreases_risk", "missing": True, "contribution": -0.4}]

    assert engine.factors_in_decision_order(legacy, "accept")[0]["direction"] == "missing"


# --- reason texts -------------------------------------------------------------------------------


def test_a_favourable_factor_quotes_its_value_in_french_with_a_narrow_no_break_space() -> None:
    assert factor_text("avg_balance_12m", 8420, -0.3, "fr") == f"Solde moyen positif sur 12 mois (8{NNBSP}420 €)"


def test_a_favourable_factor_quotes_its_value_in_english() -> None:
    assert factor_text("avg_balance_12m", 8420, -0.3, "en") == "Positive average balance over 12 months (€8,420)"


def test_an_unfavourable_factor_uses_the_risk_raising_phrase() -> None:
    assert factor_text("avg_balance_12m", 120, 0.4, "fr") == "Solde moyen faible sur 12 mois (120 €)"
    assert factor_text("avg_balance_12m", 120, 0.4, "en") == "Low average balance over 12 months (€120)"


def test_large_french_amounts_group_every_three_digits_with_narrow_no_break_spaces() -> None:
    assert format_value(FEATURES_BY_NAME["revenue"], 1_234_567.0, "fr") == f"1{NNBSP}234{NNBSP}567 €"
    assert format_value(FEATURES_BY_NAME["revenue"], 1_234_567.0, "en") == "€1,234,567"


def test_negative_amounts_keep_their_sign() -> None:
    assert format_value(FEATURES_BY_NAME["min_balance_12m"], -15_300.0, "fr") == f"-15{NNBSP}300 €"


@pytest.mark.parametrize(
    ("name", "value", "fr", "en"),
    [
        ("net_margin", 0.12, "12 %", "12%"),
        ("current_ratio", 1.5, "1,50", "1.50"),
        ("company_age_years", 3.5, "3,5 ans", "3.5 years"),
        ("days_overdraft_12m", 40, "40 jours", "40 days"),
        ("headcount", 1499.5, f"1{NNBSP}500", "1,500"),
        ("naf_section", "F", "F", "F"),
    ],
)
def test_values_are_formatted_the_way_an_analyst_reads_them(name: str, value: Any, fr: str, en: str) -> None:
    assert format_value(FEATURES_BY_NAME[name], value, "fr") == fr
    assert format_value(FEATURES_BY_NAME[name], value, "en") == en


def test_a_flag_factor_is_a_phrase_without_a_quoted_value() -> None:
    assert factor_text("open_insolvency_proceeding", 1, 2.0, "fr") == "Procédure collective en cours"
    assert factor_text("open_insolvency_proceeding", 0, -0.1, "en") == "No insolvency proceeding open"


@pytest.mark.parametrize("value", [None, float("nan")])
def test_a_missing_value_reads_as_missing_data_whatever_its_contribution(value: float | None) -> None:
    for contribution in (-0.5, 0.5):
        assert factor_text("revenue", value, contribution, "fr") == "Donnée manquante : chiffre d'affaires"
        assert factor_text("revenue", value, contribution, "en") == "Missing data: revenue"
