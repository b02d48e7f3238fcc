"""The labelled set a model learns from: matured outcomes only, with the features known when the decision was taken.

A repaid credit is a "good" label only once its performance window has run (``OUTCOME_PERFORMANCE_WINDOW_MONTHS``);
a default counts whenever it happened. Each row is the snapshot of the score the decision in force stood on
when the outcome came: nothing recorded later (a re-score, a statement, a negative event) leaks in.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.utils import timezone

from alerts.negative_events import negative_event_record
from dossiers.challenge import dossier_challenge, dossier_rescore
from dossiers.models import Dossier, Outcome
from dossiers.services import dossier_create, dossier_score, outcome_record, statement_record
from riskoffice.audit import Actor
from scoring.model.registry import labelled_history
from scoring.model.synthetic import siren_from_number
from scoring.models import FeatureSnapshot, Score

pytestmark = pytest.mark.django_db

JUSTIFIED = {"justification": "Bank statements Jan–Dec 2025.", "source_reference": "Relevés BNP 2025"}


def granted(marketplace, number: int = 0, *, tokens: list[str] | None = None) -> Dossier:
    """A dossier from the partner API, scored by the real service; credit granted.

    The decision is set in the database (as in tests/test_outcomes.py): which one the policy gives this
    synthetic company is not the point here.
    """
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren_from_number(61_000_000 + number),
        requested_amount=Decimal("25000"),
        bank_tokens=["tok"] if tokens is None else tokens,
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
    dossier.refresh_from_db()
    return dossier


def record(dossier: Dossier, status: str, user, *, occurred_on=None) -> None:
    amounts = {"written_off_amount": Decimal("1000")} if status == "written_off" else None
    outcome_record(
        dossier=dossier,
        status=status,
        occurred_on=occurred_on or timezone.localdate(),
        actor=Actor(user=user),
        amounts=amounts,
    )


def challenge(dossier: Dossier, user, **corrections) -> Score:
    """An analyst's challenge with corrected inputs, re-scored at once: the dossier's next score."""
    dossier_challenge(dossier=dossier, user=user, **JUSTIFIED, **corrections)
    score = dossier_rescore(dossier_id=dossier.pk)
    assert score is not None and score.version >= 2
    return score


def first_features(dossier: Dossier) -> dict:
    return Score.objects.get(dossier=dossier, version=1).snapshot.features


def months_from_now(months: int):
    return timezone.now() + relativedelta(months=months)


# --- maturity: a good is a good once the window has run ------------------------------------------------------


def test_a_credit_repaid_before_its_window_has_run_is_left_out_and_counted(champion, marketplace, analyst):
    dossier = granted(marketplace)
    record(dossier, "repaid", analyst)

    history = labelled_history("b2b")

    assert (history.rows, history.labels, history.immature, history.without_snapshot) == ([], [], 1, 0)
    assert labelled_history("b2b", now=months_from_now(11)).immature == 1


def test_a_repaid_credit_counts_as_good_once_the_window_has_run(champion, marketplace, analyst):
    dossier = granted(marketplace)
    record(dossier, "repaid", analyst)

    history = labelled_history("b2b", now=months_from_now(13))

    assert (history.rows, history.labels, history.immature) == ([first_features(dossier)], [0], 0)
    assert history.dates == [dossier.created_at.isoformat()]


@pytest.mark.parametrize("status", ["defaulted", "written_off"])
def test_a_default_counts_at_once_even_inside_the_window(champion, marketplace, analyst, status):
    dossier = granted(marketplace)
    record(dossier, status, analyst)

    history = labelled_history("b2b")

    assert (history.rows, history.labels, history.immature) == ([first_features(dossier)], [1], 0)


def test_the_window_is_a_setting(settings, champion, marketplace, analyst):
    record(granted(marketplace), "repaid", analyst)

    settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS = 24
    assert labelled_history("b2b", now=months_from_now(13)).immature == 1
    settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS = 0
    assert labelled_history("b2b").labels == [0]


# --- point in time: the features the decision was taken on ----------------------------------------------------


def test_a_re_score_after_the_outcome_never_feeds_the_row(champion, marketplace, analyst):
    dossier = granted(marketplace, tokens=[])  # no bank data shared: days in overdraft unknown at decision
    at_decision = first_features(dossier)
    assert at_decision["days_overdraft_12m"] is None
    record(dossier, "defaulted", analyst)

    later = challenge(dossier, analyst, feature_values={"days_overdraft_12m": 45}, requested_amount=Decimal("9000"))

    assert later.snapshot.features["days_overdraft_12m"] == 45
    [row] = labelled_history("b2b").rows
    assert row == at_decision
    assert row["days_overdraft_12m"] is None
    assert row != later.snapshot.features


def test_a_challenge_before_the_outcome_is_the_score_the_credit_was_granted_on(champion, marketplace, analyst):
    dossier = granted(marketplace, tokens=[])
    rescored = challenge(dossier, analyst, feature_values={"days_overdraft_12m": 45})
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")  # the re-score's recommendation, granted
    record(dossier, "defaulted", analyst)

    [row] = labelled_history("b2b").rows

    assert row == rescored.snapshot.features
    assert row["days_overdraft_12m"] == 45


def test_a_statement_or_a_negative_event_recorded_after_the_score_does_not_change_the_row(
    champion, marketplace, analyst
):
    dossier = granted(marketplace)
    at_decision = first_features(dossier)
    statement_record(
        dossier=dossier,
        values={
            "fiscal_year_end": timezone.localdate() - timedelta(days=1),
            "revenue": Decimal("10"),
            "equity": Decimal("-500000"),
            "total_assets": Decimal("100"),
        },
        user=analyst,
    )
    negative_event_record(
        user=analyst, company=dossier.company, kind="insolvency_proceeding", occurred_on=timezone.localdate()
    )
    record(dossier, "defaulted", analyst)

    assert labelled_history("b2b").rows == [at_decision]


def test_a_score_collected_after_the_outcome_occurred_is_not_the_decisions_even_if_recorded_before(
    champion, marketplace, analyst
):
    """A book imported late: the default happened ten days ago, a re-score five days ago, the outcome recorded today."""
    dossier = granted(marketplace, tokens=[])
    first = Score.objects.get(dossier=dossier, version=1).snapshot
    challenge(dossier, analyst, feature_values={"days_overdraft_12m": 45})
    Dossier.objects.filter(pk=dossier.pk).update(decision="accept")
    record(dossier, "defaulted", analyst)
    now = timezone.now()
    FeatureSnapshot.objects.filter(pk=first.pk).update(collected_at=now - timedelta(days=30))
    FeatureSnapshot.objects.exclude(pk=first.pk).update(collected_at=now - timedelta(days=5))
    Outcome.objects.filter(dossier=dossier).update(occurred_on=timezone.localdate() - timedelta(days=10))

    assert labelled_history("b2b").rows == [first.features]


def test_the_labelled_set_is_read_in_two_queries_whatever_the_number_of_dossiers(
    champion, marketplace, analyst, django_assert_num_queries
):
    for number in range(4):
        record(granted(marketplace, number), "defaulted" if number % 2 else "repaid", analyst)

    with django_assert_num_queries(2):
        history = labelled_history("b2b", now=months_from_now(13))

    assert history.labels == [0, 1, 0, 1]  # oldest application first


# --- train_model says what it learnt from and what it left out ---------------------------------------------------


def test_train_model_prints_the_labelled_set_and_what_it_left_out(champion, marketplace, analyst):
    call_command("seed_demo", "--companies", "600", "--seed", "3", stdout=StringIO())
    history = Dossier.objects.filter(origin=Dossier.Origin.HISTORY)
    unscored = history.filter(outcome__status="repaid").first()
    FeatureSnapshot.objects.filter(dossier=unscored).delete()  # a file imported without its features
    record(granted(marketplace), "repaid", analyst)  # repaid last week: not yet a good
    defaults = Outcome.objects.filter(status="defaulted").count()

    out = StringIO()
    call_command("train_model", stdout=out)

    assert (
        f"Labelled set: 599 files ({defaults} defaults); left out: 1 not yet matured (window 12 months), "
        "1 without a score." in out.getvalue()
    )
    assert "b2b-v2 is the challenger" in out.getvalue()  # the champion stays until a senior analyst approves
