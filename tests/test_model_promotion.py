"""Champion and challenger: a senior analyst approves a challenger whose gates passed, rejects one, rolls back.

The gates (scoring/model/comparison.py) refuse a challenger worse than the champion beyond noise; approval
promotes through ``model_promote`` (the champion retires), and the very next dossier is scored by the new
champion with no restart; rollback brings the previous champion back. Every decision leaves an audit row.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.model import engine
from scoring.model.comparison import compare_on_holdout
from scoring.model.features import catalogue_for
from scoring.model.registry import labelled_history, model_register
from scoring.model.retraining import GovernanceError, challenger_approve, challenger_reject, champion_rollback
from scoring.model.synthetic import siren_from_number
from scoring.model.training import train_model
from scoring.models import ModelVersion, Score
from scoring.selectors import challenger_for, champion_for

from .conftest import trained_once
from .test_retraining import fewer_resamples, retrain, seed_book  # noqa: F401 - the autouse fixture applies here too

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(champion) -> ModelVersion:
    """The champion (trained on another synthetic sample) and a history of 2,000 matured outcomes to retrain on."""
    seed_book()
    return champion


@pytest.fixture
def challenger(book) -> ModelVersion:
    """A retraining's challenger, better than or as good as the champion on the holdout: its gates passed."""
    run = retrain()
    assert run.challenger.comparison["passed"], run.challenger.comparison["gates"]
    return run.challenger


def next_score(marketplace, number: int) -> Score:
    """A new application from the partner API, scored by the live path (as a worker scores it)."""
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=siren_from_number(70_000_000 + number),
        requested_amount=Decimal("25000"),
        bank_tokens=["tok"],
        actor=Actor(client=marketplace.api_client),
    )
    score = dossier_score(dossier_id=dossier.pk)
    assert score is not None
    return score


def test_a_senior_analyst_approves_a_challenger_and_the_next_dossier_is_scored_by_it(
    challenger, book, senior, marketplace
):
    before = next_score(marketplace, 1)
    assert before.model_version == book
    engine.model_load(book)  # a worker that has already parsed the old champion keeps running

    approved = challenger_approve(model_version=challenger, user=senior, note="Better on the 2025 holdout.")

    assert approved.status == "champion" and champion_for("b2b") == challenger
    assert (approved.decided_by, approved.decision_note) == (senior, "Better on the 2025 holdout.")
    assert approved.decided_at and approved.promoted_at
    book.refresh_from_db()
    assert book.status == "retired" and book.retired_at is not None
    assert next_score(marketplace, 2).model_version == challenger
    approval = AuditEvent.objects.get(action="model.challenger_approved")
    assert approval.actor_user == senior and approval.object_id == str(challenger.pk)
    promoted = AuditEvent.objects.filter(action="model.promoted", object_id=str(challenger.pk)).get()
    assert promoted.before["champion"] == book.label and promoted.actor_user == senior


def test_a_challenger_worse_beyond_noise_fails_the_auc_gate_and_cannot_be_approved(book, senior):
    """Deliberately bad: trained on inverted labels with inverted risk directions, it ranks defaults as safest.

    (Shuffled labels are not bad enough to be sure of: the monotone constraints alone rank files half right.)
    """
    history = labelled_history("b2b")
    cut = len(history.rows) * 4 // 5
    catalogue = catalogue_for("b2b")
    trained = train_model(
        history.rows[:cut],
        [1 - label for label in history.labels[:cut]],
        history.dates[:cut],
        feature_names=[f.name for f in catalogue],
        categorical={f.name for f in catalogue if f.categorical},
        directions={f.name: -f.direction for f in catalogue},
    )
    comparison = compare_on_holdout(
        champion=engine.model_load(book),
        challenger=engine.model_from_trained(trained),
        rows=history.rows[cut:],
        labels=history.labels[cut:],
        dates=history.dates[cut:],
        segment="b2b",
        champion_label=book.label,
    )
    bad = model_register(
        segment="b2b", trained=trained, trained_by="tests", promote=False, status="challenger", comparison=comparison
    )

    gates = {gate["name"]: gate for gate in comparison["gates"]}
    assert not gates["auc_not_worse"]["passed"] and "worse beyond noise" in gates["auc_not_worse"]["detail"]
    assert comparison["challenger"]["auc"] < comparison["champion"]["auc"] - 0.2
    assert comparison["passed"] is False
    with pytest.raises(GovernanceError, match="did not pass the promotion gates"):
        challenger_approve(model_version=bad, user=senior, note="")
    bad.refresh_from_db()
    assert bad.status == "challenger" and champion_for("b2b") == book
    assert not AuditEvent.objects.filter(action="model.challenger_approved").exists()


def test_only_a_senior_analyst_decides_on_a_challenger(challenger, analyst):
    for decide in (challenger_approve, challenger_reject):
        with pytest.raises(PermissionDenied):
            decide(model_version=challenger, user=analyst, note="")
    with pytest.raises(PermissionDenied):
        champion_rollback(segment="b2b", user=analyst, note="")
    challenger.refresh_from_db()
    assert challenger.status == "challenger"


def test_a_rejected_challenger_stops_there_and_cannot_be_approved_later(challenger, book, senior):
    rejected = challenger_reject(model_version=challenger, user=senior, note="Trained on a quarter of bad data.")

    assert (rejected.status, rejected.decided_by, rejected.decision_note) == (
        "rejected",
        senior,
        "Trained on a quarter of bad data.",
    )
    assert challenger_for("b2b") is None and champion_for("b2b") == book
    with pytest.raises(GovernanceError, match="not the challenger"):
        challenger_approve(model_version=challenger, user=senior, note="")
    event = AuditEvent.objects.get(action="model.challenger_rejected")
    assert event.actor_user == senior and event.after["note"] == "Trained on a quarter of bad data."


def test_rollback_restores_the_previous_champion_for_the_next_dossier(challenger, book, senior, marketplace):
    challenger_approve(model_version=challenger, user=senior, note="")

    restored = champion_rollback(segment="b2b", user=senior, note="Approval rates fell on the new model.")

    assert restored == book and restored.status == "champion" and champion_for("b2b") == book
    challenger.refresh_from_db()
    assert challenger.status == "retired" and challenger.retired_at is not None
    assert next_score(marketplace, 3).model_version == book
    event = AuditEvent.objects.get(action="model.rolled_back")
    assert event.actor_user == senior
    assert (event.before["champion"], event.after["champion"]) == (challenger.label, book.label)


def test_rollback_brings_back_the_champion_retired_last_even_beside_one_retired_before_retired_at_was_kept(
    champion, senior
):
    """A version retired before ``retired_at`` existed (NULL) counts from its promotion, never ahead of later ones."""
    older = model_register(segment="b2b", trained=trained_once(), trained_by="tests", promote=False)
    ModelVersion.objects.filter(pk=older.pk).update(
        status="retired", promoted_at=champion.promoted_at - timedelta(days=400), retired_at=None
    )
    newer = model_register(segment="b2b", trained=trained_once(), trained_by="tests", promote=True)  # retires v1
    assert ModelVersion.objects.get(pk=champion.pk).retired_at is not None

    restored = champion_rollback(segment="b2b", user=senior, note="", seen_champion=newer.pk)

    assert restored == champion and champion_for("b2b") == champion


def test_a_rollback_decided_on_a_champion_replaced_since_is_refused(challenger, book, senior):
    challenger_approve(model_version=challenger, user=senior, note="")

    with pytest.raises(GovernanceError, match="The champion changed since this page was shown"):
        champion_rollback(segment="b2b", user=senior, note="Undo.", seen_champion=book.pk)
    assert champion_for("b2b") == challenger
    assert not AuditEvent.objects.filter(action="model.rolled_back").exists()


def test_rollback_without_a_previous_champion_is_refused(champion, senior):
    with pytest.raises(GovernanceError, match="No previous champion"):
        champion_rollback(segment="b2b", user=senior, note="")
    assert champion_for("b2b") == champion


def test_a_candidate_is_not_a_challenger_and_cannot_be_approved(champion, senior):
    candidate = model_register(segment="b2b", trained=trained_once(), trained_by="tests", promote=False)

    with pytest.raises(GovernanceError, match="not the challenger"):
        challenger_approve(model_version=candidate, user=senior, note="")
    assert ModelVersion.objects.get(pk=candidate.pk).status == "candidate"


def test_a_challenger_compared_with_a_champion_since_replaced_cannot_be_approved(challenger, book, senior):
    replacement = model_register(segment="b2b", trained=trained_once(), trained_by="tests", promote=True)

    with pytest.raises(GovernanceError, match="but the champion is now"):
        challenger_approve(model_version=challenger, user=senior, note="")
    assert champion_for("b2b") == replacement
