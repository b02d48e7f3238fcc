"""Back-testing the PDs the decisions stood on, by band and by quarter, and the payoff of analysts' overrides.

The files are the matured outcomes (a default whenever it happened, a repayment once the performance window
has run); each file's prediction is the PD of the score its decision stood on. Per band the mean predicted PD
is set against the observed default rate and its Jeffreys 95 % interval; overrides are judged by the default
rate of the files they touched against the files nobody overrode.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from dossiers.challenge import dossier_challenge, dossier_rescore
from dossiers.models import Dossier, OverrideReason
from dossiers.overrides import dossier_override, override_approve, override_reject
from dossiers.services import dossier_create, dossier_score, outcome_record
from riskoffice.audit import Actor
from scoring.model.backtest import backtest_by_band, override_analysis
from scoring.model.synthetic import siren_from_number
from scoring.models import Score

pytestmark = pytest.mark.django_db


def months_from_now(months: int) -> datetime:
    return timezone.now() + relativedelta(months=months)


def scored(marketplace, number: int, *, pd: float, decision: str = "accept") -> Dossier:
    """A dossier from the partner API, scored by the real service; its score's PD and decision then set by hand."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren_from_number(62_000_000 + number),
        requested_amount=Decimal("25000"),
        bank_tokens=["tok"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Score.objects.filter(dossier=dossier).update(probability_of_default=pd, decision=decision)
    Dossier.objects.filter(pk=dossier.pk).update(decision=decision)
    dossier.refresh_from_db()
    return dossier


def record(dossier: Dossier, status: str, user) -> None:
    amounts = {"written_off_amount": Decimal("1000")} if status == "written_off" else None
    outcome_record(
        dossier=dossier, status=status, occurred_on=timezone.localdate(), actor=Actor(user=user), amounts=amounts
    )


def band(table: list[dict], name: str) -> dict:
    return next(row for row in table if row["band"] == name)


def group(analysis: dict, direction: str) -> dict:
    return next(g for g in analysis["groups"] if g["direction"] == direction)


# --- by band ------------------------------------------------------------------------------------------------


def test_each_band_sets_the_mean_predicted_pd_against_the_observed_rate_and_says_which_way_it_misses(
    champion, marketplace, analyst
):
    for number, (pd, status) in enumerate(
        [
            (0.001, "repaid"),  # band A: 0 of 2, interval 0 to 66.7 %; 0.1 % predicted lies within
            (0.001, "repaid"),
            (0.02, "defaulted"),  # band C: 1 of 4 (25 %), interval 2.85 % to 71.6 %; 2.5 % predicted is under
            (0.02, "repaid"),
            (0.03, "repaid"),
            (0.03, "repaid"),
            (0.8, "repaid"),  # band E: 0 of 3, interval 0 to 53.6 %; 80 % predicted is over
            (0.8, "repaid"),
            (0.8, "repaid"),
        ]
    ):
        record(scored(marketplace, number, pd=pd), status, analyst)

    result = backtest_by_band("b2b", now=months_from_now(13))

    assert (result["rows"], result["defaults"], result["immature"], result["without_score"]) == (9, 1, 0, 0)
    assert [row["band"] for row in result["bands"]] == ["A", "C", "E"]
    assert band(result["bands"], "A") == {
        "band": "A",
        "n": 2,
        "defaults": 0,
        "mean_pd": 0.001,
        "observed_rate": 0.0,
        "low": 0.0,
        "high": 0.66682,
        "verdict": "within",
    }
    assert band(result["bands"], "C") == {
        "band": "C",
        "n": 4,
        "defaults": 1,
        "mean_pd": 0.025,
        "observed_rate": 0.25,
        "low": 0.02847,
        "high": 0.71625,
        "verdict": "under-predicted",
    }
    e = band(result["bands"], "E")
    assert (e["n"], e["defaults"], e["mean_pd"], e["high"], e["verdict"]) == (3, 0, 0.8, 0.53558, "over-predicted")


def test_a_repayment_waits_for_its_window_and_a_default_counts_at_once(champion, marketplace, analyst):
    record(scored(marketplace, 0, pd=0.02), "repaid", analyst)
    record(scored(marketplace, 1, pd=0.02), "written_off", analyst)

    today = backtest_by_band("b2b")
    later = backtest_by_band("b2b", now=months_from_now(13))

    assert (today["rows"], today["defaults"], today["immature"]) == (1, 1, 1)
    assert (later["rows"], later["defaults"], later["immature"]) == (2, 1, 0)
    assert later["window_months"] == 12


def test_a_re_score_after_the_outcome_does_not_change_the_predicted_pd(champion, marketplace, analyst):
    dossier = scored(marketplace, 0, pd=0.02)
    record(dossier, "defaulted", analyst)
    dossier_challenge(
        dossier=dossier,
        user=analyst,
        justification="Bank statements Jan–Dec 2025.",
        source_reference="Relevés BNP 2025",
        feature_values={"days_overdraft_12m": 45},
    )
    later = dossier_rescore(dossier_id=dossier.pk)
    assert later is not None and later.version == 2
    Score.objects.filter(pk=later.pk).update(probability_of_default=0.5)

    [row] = backtest_by_band("b2b")["bands"]

    assert (row["band"], row["mean_pd"]) == ("C", 0.02)


def test_periods_are_the_calendar_quarters_of_the_applications(champion, marketplace, analyst):
    first = scored(marketplace, 0, pd=0.02)
    second = scored(marketplace, 1, pd=0.02)
    third = scored(marketplace, 2, pd=0.2)
    Dossier.objects.filter(pk=first.pk).update(
        created_at=datetime(2025, 2, 10, 12, tzinfo=timezone.get_current_timezone())
    )
    Dossier.objects.filter(pk__in=[second.pk, third.pk]).update(
        created_at=datetime(2025, 5, 10, 12, tzinfo=timezone.get_current_timezone())
    )
    for dossier, status in ((first, "defaulted"), (second, "repaid"), (third, "defaulted")):
        record(dossier, status, analyst)

    periods = backtest_by_band("b2b", now=months_from_now(13))["periods"]

    assert [(p["period"], p["rows"], p["defaults"]) for p in periods] == [("2025-Q1", 1, 1), ("2025-Q2", 2, 1)]
    assert [(row["band"], row["n"], row["defaults"]) for row in periods[1]["bands"]] == [("C", 1, 0), ("E", 1, 1)]


def test_the_back_test_is_read_in_two_queries_whatever_the_number_of_dossiers(
    champion, marketplace, analyst, django_assert_num_queries
):
    for number in range(4):
        record(scored(marketplace, number, pd=0.02), "defaulted" if number % 2 else "repaid", analyst)

    with django_assert_num_queries(2):
        result = backtest_by_band("b2b", now=months_from_now(13))

    assert result["rows"] == 4


# --- overrides ----------------------------------------------------------------------------------------------


@pytest.fixture
def reason(reference_data) -> OverrideReason:
    return OverrideReason.objects.filter(is_active=True).first()


def override(dossier: Dossier, decision: str, reason: OverrideReason, author, reviewer, *, approve: bool = True):
    made = dossier_override(dossier=dossier, decision=decision, reason_code=reason, reason="Known client.", user=author)
    if made.status == "pending":
        if approve:
            override_approve(override=made, note="Agreed.", user=reviewer)
        else:
            override_reject(override=made, note="No.", user=reviewer)
        made.refresh_from_db()
    return made


def test_overrides_are_judged_by_the_default_rate_of_the_files_they_touched(
    champion, marketplace, analyst, senior, reason, django_assert_max_num_queries
):
    # More lenient: the policy refused, the analyst granted (four eyes approved); both defaulted.
    for number in (0, 1):
        dossier = scored(marketplace, number, pd=0.2, decision="refuse")
        override(dossier, "accept", reason, analyst, senior)
        record(dossier, "defaulted", analyst)
    # Stricter: the policy accepted, the analyst asked for a guarantee; repaid.
    dossier = scored(marketplace, 2, pd=0.03, decision="accept")
    override(dossier, "guarantee", reason, analyst, senior)
    record(dossier, "repaid", analyst)
    # Not overridden: two accepted files, one of them after an override the senior analyst rejected.
    record(scored(marketplace, 3, pd=0.01), "repaid", analyst)
    dossier = scored(marketplace, 4, pd=0.03, decision="guarantee")
    Score.objects.filter(dossier=dossier).update(recommended_limit=None)  # accepting with no limit needs four eyes
    assert override(dossier, "accept", reason, analyst, senior, approve=False).status == "rejected"
    record(dossier, "defaulted", analyst)

    with django_assert_max_num_queries(3):
        analysis = override_analysis("b2b", now=months_from_now(13))

    assert analysis["rows"] == 5
    assert [g["direction"] for g in analysis["groups"]] == ["more lenient", "stricter", "not overridden"]
    lenient = group(analysis, "more lenient")
    assert (lenient["n"], lenient["defaults"], lenient["mean_pd"], lenient["observed_rate"]) == (2, 2, 0.2, 1.0)
    assert (lenient["low"], lenient["high"]) == (0.33318, 1.0)  # Beta(2.5, 0.5) 2.5 % quantile; all defaulted: 1
    assert lenient["changes"] == {"refuse→accept": 2}
    stricter = group(analysis, "stricter")
    assert (stricter["n"], stricter["defaults"], stricter["mean_pd"], stricter["changes"]) == (
        1,
        0,
        0.03,
        {"accept→guarantee": 1},
    )
    reference = group(analysis, "not overridden")
    assert (reference["n"], reference["defaults"], reference["mean_pd"], reference["observed_rate"]) == (
        2,
        1,
        0.02,
        0.5,
    )
    assert (reference["low"], reference["high"]) == (0.06083, 0.93917)


def test_an_override_a_re_score_replaced_before_the_outcome_no_longer_counts(
    champion, marketplace, analyst, senior, reason
):
    dossier = scored(marketplace, 0, pd=0.03, decision="accept")
    override(dossier, "guarantee", reason, analyst, senior)
    dossier_challenge(
        dossier=dossier,
        user=analyst,
        justification="Bank statements Jan–Dec 2025.",
        source_reference="Relevés BNP 2025",
        feature_values={"days_overdraft_12m": 0},
    )
    rescored = dossier_rescore(dossier_id=dossier.pk)
    Score.objects.filter(pk=rescored.pk).update(decision="accept")
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
    record(dossier, "repaid", analyst)

    analysis = override_analysis("b2b", now=months_from_now(13))

    assert group(analysis, "stricter")["n"] == 0
    assert group(analysis, "not overridden")["n"] == 1
    assert group(analysis, "stricter")["observed_rate"] is None
