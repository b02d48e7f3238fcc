"""From PD to points and bands (PDO scaling), and from PD and features to a decision (policy versions)."""

from __future__ import annotations

import math
from decimal import Decimal
from importlib import import_module

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from dossiers.models import Decision
from scoring.models import PolicyVersion
from scoring.policy.apply import policy_apply
from scoring.policy.scale import BANDS, SCALES, band_for, score_for

B2B, B2C = SCALES["b2b"], SCALES["b2c"]


def pd_at_odds(odds_good: float) -> float:
    """The PD whose odds of being good are ``odds_good``:1."""
    return 1 / (1 + odds_good)


# --- score scale ------------------------------------------------------------------------------


def test_b2b_scores_600_points_at_odds_of_50_to_1() -> None:
    assert B2B.raw(pd_at_odds(50)) == pytest.approx(600, abs=1e-9)
    assert score_for(pd_at_odds(50), "b2b") == 600


@pytest.mark.parametrize("odds", [50, 100, 200, 400])
def test_b2b_adds_60_points_each_time_the_odds_double(odds: int) -> None:
    assert B2B.raw(pd_at_odds(2 * odds)) - B2B.raw(pd_at_odds(odds)) == pytest.approx(60, abs=1e-9)


def test_b2b_factor_and_offset_follow_the_pdo_formula() -> None:
    factor = 60 / math.log(2)

    assert B2B.factor == pytest.approx(factor)
    assert B2B.offset == pytest.approx(600 - factor * math.log(50))


def test_b2c_scores_600_points_at_odds_of_19_to_1() -> None:
    assert B2C.raw(pd_at_odds(19)) == pytest.approx(600, abs=1e-9)
    assert score_for(0.05, "b2c") == 600


@pytest.mark.parametrize("odds", [19, 38, 76])
def test_b2c_adds_50_points_each_time_the_odds_double(odds: int) -> None:
    assert B2C.raw(pd_at_odds(2 * odds)) - B2C.raw(pd_at_odds(odds)) == pytest.approx(50, abs=1e-9)


@pytest.mark.parametrize(
    ("odds", "b2b_points"),
    [(25, 540), (12.5, 480), (1, 261), (1000, 859)],
)
def test_b2b_points_are_offset_plus_factor_times_log_odds_rounded(odds: float, b2b_points: int) -> None:
    expected = 600 - 60 / math.log(2) * math.log(50) + 60 / math.log(2) * math.log(odds)

    assert round(expected) == b2b_points
    assert score_for(pd_at_odds(odds), "b2b") == b2b_points


@pytest.mark.parametrize(("segment", "low", "high"), [("b2b", 0, 1000), ("b2c", 300, 850)])
def test_a_near_certain_good_is_clamped_to_the_top_of_the_scale(segment: str, low: int, high: int) -> None:
    assert SCALES[segment].raw(1e-9) > high
    assert score_for(1e-9, segment) == high
    assert score_for(0.0, segment) == high


@pytest.mark.parametrize(("segment", "low", "high"), [("b2b", 0, 1000), ("b2c", 300, 850)])
def test_a_near_certain_default_is_clamped_to_the_bottom_of_the_scale(segment: str, low: int, high: int) -> None:
    assert SCALES[segment].raw(0.999999) < low
    assert score_for(0.999999, segment) == low
    assert score_for(1.0, segment) == low


@pytest.mark.parametrize(("segment", "low", "high"), [("b2b", 0, 1000), ("b2c", 300, 850)])
def test_every_score_lies_on_the_segments_scale(segment: str, low: int, high: int) -> None:
    points = [score_for(float(pd), segment) for pd in np.linspace(0, 1, 2001)]

    assert min(points) == low
    assert max(points) == high


def _fine_pd_grid() -> np.ndarray:
    """A linear grid over (0, 1) plus a geometric one near 0, where the points change fastest."""
    return np.unique(np.concatenate([np.linspace(1e-6, 1 - 1e-6, 100_001), np.geomspace(1e-9, 1e-2, 20_001)]))


@pytest.mark.parametrize("segment", ["b2b", "b2c"])
def test_the_raw_score_is_strictly_decreasing_in_pd(segment: str) -> None:
    raw = np.array([SCALES[segment].raw(float(pd)) for pd in _fine_pd_grid()])

    assert np.all(np.diff(raw) < 0)


@pytest.mark.parametrize("segment", ["b2b", "b2c"])
def test_the_integer_points_never_increase_with_pd(segment: str) -> None:
    points = np.array([score_for(float(pd), segment) for pd in _fine_pd_grid()])

    assert np.all(np.diff(points) <= 0)


# --- bands ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pd", "band"),
    [
        (0.0, "A"),
        (0.004999, "A"),
        (0.005, "B"),
        (0.014999, "B"),
        (0.015, "C"),
        (0.039999, "C"),
        (0.04, "D"),
        (0.099999, "D"),
        (0.10, "E"),
        (0.5, "E"),
        (1.0, "E"),
    ],
)
def test_bands_are_half_open_pd_ranges_with_the_upper_bound_in_the_next_band(pd: float, band: str) -> None:
    assert band_for(pd) == band


def test_bands_run_a_to_e_with_increasing_upper_bounds_ending_at_one() -> None:
    assert [b for b, _, _ in BANDS] == ["A", "B", "C", "D", "E"]
    uppers = [upper for _, upper, _ in BANDS]
    assert uppers == sorted(uppers)
    assert uppers[-1] == 1.0


# --- policy -----------------------------------------------------------------------------------

DEFAULTS = import_module("scoring.migrations.0002_default_policies").DEFAULTS


def b2b_policy(**overrides: object) -> PolicyVersion:
    """The default B2B policy (accept < 3 %, guarantee < 8 %, cap 1 M€), unsaved."""
    values = {**DEFAULTS["b2b"], **overrides}
    values["knockouts"] = {**DEFAULTS["b2b"]["knockouts"], **(overrides.get("knockouts") or {})}
    return PolicyVersion(segment="b2b", version=1, **values)


def clean_features(**overrides: object) -> dict:
    """Accounts and bank data on file (thin data is referred: tests/test_policy_refer.py)."""
    return {"revenue": 1_000_000.0, "avg_balance_12m": 20_000.0, "open_insolvency_proceeding": 0, **overrides}


@pytest.mark.parametrize("pd", [0.0001, 0.01, 0.0299])
def test_a_pd_below_the_accept_threshold_is_accepted(pd: float) -> None:
    result = policy_apply(b2b_policy(), pd=pd, features=clean_features(), requested_amount=50_000)

    assert result.decision == Decision.ACCEPT
    assert result.rules_fired == ["threshold:accept"]


@pytest.mark.parametrize("pd", [0.03, 0.05, 0.0799])
def test_a_pd_from_the_accept_threshold_to_below_the_guarantee_threshold_asks_for_a_guarantee(pd: float) -> None:
    result = policy_apply(b2b_policy(), pd=pd, features=clean_features(), requested_amount=50_000)

    assert result.decision == Decision.GUARANTEE
    assert result.rules_fired == ["threshold:guarantee"]


@pytest.mark.parametrize("pd", [0.08, 0.2, 0.99])
def test_a_pd_from_the_guarantee_threshold_up_is_refused(pd: float) -> None:
    result = policy_apply(b2b_policy(), pd=pd, features=clean_features(), requested_amount=50_000)

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == ["threshold:refuse"]


def test_the_thresholds_come_from_the_policy_version() -> None:
    strict = b2b_policy(accept_max_pd=0.005, guarantee_max_pd=0.01)

    assert policy_apply(strict, pd=0.02, features=clean_features(), requested_amount=1).decision == Decision.REFUSE
    assert policy_apply(b2b_policy(), pd=0.02, features=clean_features(), requested_amount=1).decision == "accept"


def test_the_current_b2b_policy_of_the_reference_data_applies_its_thresholds(reference_data) -> None:
    policy = PolicyVersion.objects.get(segment="b2b", is_current=True)

    def decide(pd: float) -> str:
        return policy_apply(policy, pd=pd, features=clean_features(), requested_amount=1).decision

    assert decide(policy.accept_max_pd / 2) == Decision.ACCEPT
    assert decide((policy.accept_max_pd + policy.guarantee_max_pd) / 2) == Decision.GUARANTEE
    assert decide(policy.guarantee_max_pd) == Decision.REFUSE


def test_an_open_insolvency_proceeding_knocks_out_even_a_very_low_pd() -> None:
    result = policy_apply(
        b2b_policy(), pd=0.001, features=clean_features(open_insolvency_proceeding=1), requested_amount=50_000
    )

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == ["knockout:open_insolvency_proceeding"]


def test_the_insolvency_knockout_can_be_switched_off_by_the_policy() -> None:
    policy = b2b_policy(knockouts={"open_insolvency_proceeding": False})

    result = policy_apply(
        policy, pd=0.001, features=clean_features(open_insolvency_proceeding=1), requested_amount=50_000
    )

    assert result.decision == Decision.ACCEPT


def test_a_sanctioned_naf_code_knocks_out() -> None:
    policy = b2b_policy(knockouts={"sanctioned_naf_codes": ["92.00Z"]})

    result = policy_apply(policy, pd=0.001, features=clean_features(), requested_amount=50_000, naf_code="92.00Z")

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == ["knockout:sanctioned_naf_code"]


def test_a_naf_code_not_on_the_sanctioned_list_does_not_knock_out() -> None:
    policy = b2b_policy(knockouts={"sanctioned_naf_codes": ["92.00Z"]})

    result = policy_apply(policy, pd=0.001, features=clean_features(), requested_amount=50_000, naf_code="62.01Z")

    assert result.decision == Decision.ACCEPT


def test_an_amount_above_the_policy_cap_knocks_out() -> None:
    result = policy_apply(b2b_policy(), pd=0.001, features=clean_features(), requested_amount=1_000_000.01)

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == ["knockout:amount_above_cap"]


def test_an_amount_equal_to_the_cap_is_allowed() -> None:
    result = policy_apply(
        b2b_policy(), pd=0.001, features=clean_features(revenue=20_000_000.0), requested_amount=1_000_000
    )

    assert result.decision == Decision.ACCEPT


def test_a_good_risk_asking_more_than_its_recommended_limit_is_accepted_only_with_a_guarantee() -> None:
    # Revenue 1 M€, share 10 %, PD 1 % of an 8 % guarantee threshold: a limit of 87 500 €.
    within = policy_apply(b2b_policy(), pd=0.01, features=clean_features(), requested_amount=87_500)
    above = policy_apply(b2b_policy(), pd=0.01, features=clean_features(), requested_amount=87_600)

    assert within.decision == Decision.ACCEPT
    assert above.decision == Decision.GUARANTEE
    assert above.rules_fired == ["threshold:accept", "limit:amount_above_recommended_limit"]
    assert above.recommended_limit == within.recommended_limit


def test_every_knockout_that_fires_is_reported_and_no_threshold_rule_is() -> None:
    policy = b2b_policy(knockouts={"sanctioned_naf_codes": ["92.00Z"]})

    result = policy_apply(
        policy,
        pd=0.5,
        features=clean_features(open_insolvency_proceeding=1),
        requested_amount=2_000_000,
        naf_code="92.00Z",
    )

    assert result.decision == Decision.REFUSE
    assert result.rules_fired == [
        "knockout:open_insolvency_proceeding",
        "knockout:sanctioned_naf_code",
        "knockout:amount_above_cap",
    ]


def test_the_recommended_limit_is_a_share_of_revenue_scaled_by_headroom_to_the_guarantee_threshold() -> None:
    # 1 M€ x 10 % x (1 - 0.01 / 0.08) = 87 500 €
    result = policy_apply(b2b_policy(), pd=0.01, features=clean_features(), requested_amount=50_000)

    assert result.recommended_limit == Decimal("87500.00")


def test_the_recommended_limit_shrinks_as_pd_approaches_the_guarantee_threshold() -> None:
    # 1 M€ x 10 % x (1 - 0.05 / 0.08) = 37 500 €
    result = policy_apply(b2b_policy(), pd=0.05, features=clean_features(), requested_amount=50_000)

    assert result.decision == Decision.GUARANTEE
    assert result.recommended_limit == Decimal("37500.00")


def test_the_recommended_limit_is_rounded_to_the_hundred_euros() -> None:
    result = policy_apply(b2b_policy(), pd=0.01, features=clean_features(revenue=123_456.0), requested_amount=1)

    assert result.recommended_limit == Decimal("10800.00")  # 123 456 x 0.1 x 0.875 = 10 802.4


@pytest.mark.parametrize(
    ("pd", "features", "amount"),
    [(0.5, {}, 1), (0.001, {"open_insolvency_proceeding": 1}, 1), (0.001, {}, 5_000_000)],
    ids=["threshold", "insolvency", "amount-cap"],
)
def test_a_refusal_recommends_no_limit(pd: float, features: dict, amount: float) -> None:
    result = policy_apply(b2b_policy(), pd=pd, features=clean_features(**features), requested_amount=amount)

    assert result.decision == Decision.REFUSE
    assert result.recommended_limit is None


@pytest.mark.parametrize("revenue", [None, float("nan"), 0.0, -5_000.0])
def test_no_limit_is_recommended_without_a_positive_revenue(revenue: float | None) -> None:
    result = policy_apply(b2b_policy(), pd=0.01, features=clean_features(revenue=revenue), requested_amount=1)

    assert result.decision == Decision.ACCEPT
    assert result.recommended_limit is None


def test_the_database_refuses_a_policy_whose_accept_threshold_exceeds_its_guarantee_threshold(db) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.create(segment="b2b", version=99, accept_max_pd=0.09, guarantee_max_pd=0.05)

    assert not PolicyVersion.objects.filter(version=99).exists()


@pytest.mark.parametrize(("accept", "guarantee"), [(0.0, 0.05), (0.03, 1.0)])
def test_the_database_refuses_thresholds_outside_zero_to_one(db, accept: float, guarantee: float) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.create(segment="b2b", version=98, accept_max_pd=accept, guarantee_max_pd=guarantee)


def test_the_database_accepts_equal_accept_and_guarantee_thresholds(db) -> None:
    PolicyVersion.objects.create(segment="b2b", version=97, accept_max_pd=0.05, guarantee_max_pd=0.05)

    assert PolicyVersion.objects.filter(version=97).exists()
