"""Shadow scoring: while a segment has a challenger, it scores every new live score too, and decides nothing.

Each batch of stored scores sends one task after commit (ids only); the task scores them with the challenger
on the very features the champion saw and records what the live score's policy would have decided. The
dossier, its score and its decision never change, and a failure of the shadow path never holds up scoring.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dossiers.batch import dossiers_score_batch
from dossiers.models import Dossier
from dossiers.services import dossier_create
from riskoffice.audit import Actor
from scoring.model.registry import model_register
from scoring.model.shadow import shadow_summary
from scoring.model.synthetic import generate_portfolio, siren_from_number
from scoring.model.tasks import shadow_score_many
from scoring.model.training import train_segment
from scoring.models import ModelVersion, Score, ShadowScore
from scoring.policy.apply import policy_apply

from .conftest import trained_once

pytestmark = pytest.mark.django_db

_other: list = []


def other_model():
    """A model trained on another, smaller synthetic book: its PDs differ from the champion's."""
    if not _other:
        portfolio = generate_portfolio(1200, seed=99)
        rows = [applicant.features() for applicant, _, _ in portfolio]
        labels = [int(defaulted) for _, _, defaulted in portfolio]
        dates = [f"2023-01-01T00:00:{i:06d}" for i in range(len(rows))]
        _other.append(train_segment("b2b", rows, labels, dates))
    return _other[0]


def pending(marketplace, count: int, start: int = 80_000_000) -> list[Dossier]:
    return [
        dossier_create(
            partner=marketplace.partner,
            siren=siren_from_number(start + i),
            requested_amount=Decimal(15_000 + 5_000 * i),
            bank_tokens=["tok"] if i % 2 else [],
            actor=Actor(client=marketplace.api_client),
        )
        for i in range(count)
    ]


@pytest.fixture
def sent(monkeypatch) -> list[list]:
    """The score ids handed to the shadow task (no worker runs in these tests)."""
    messages: list[list] = []
    monkeypatch.setattr(shadow_score_many, "delay", lambda ids: messages.append(list(ids)))
    return messages


def score_batch(marketplace, count: int, capture) -> list[Score]:
    dossiers = pending(marketplace, count)
    with capture(execute=True):
        assert len(dossiers_score_batch().scored) == count
    return list(Score.objects.filter(dossier__in=dossiers).order_by("pk"))


def challenger_of(trained) -> ModelVersion:
    return model_register(segment="b2b", trained=trained, trained_by="tests", promote=False, status="challenger")


def test_each_batch_of_new_scores_is_shadow_scored_by_the_challenger_in_one_task_after_commit(
    champion, marketplace, sent, django_capture_on_commit_callbacks
):
    challenger = challenger_of(other_model())

    scores = score_batch(marketplace, 6, django_capture_on_commit_callbacks)

    assert sent == [[score.pk for score in scores]]  # one message for the batch, ids only
    shadow_score_many(sent[0])
    shadows = {s.score_id: s for s in ShadowScore.objects.filter(model_version=challenger)}
    assert set(shadows) == {score.pk for score in scores}
    assert any(shadows[s.pk].probability_of_default != s.probability_of_default for s in scores)


def test_the_same_model_in_the_shadow_gives_the_live_pd_points_band_and_decision(
    champion, marketplace, sent, django_capture_on_commit_callbacks
):
    """The shadow reads the score's snapshot and applies the score's policy version: nothing else differs."""
    challenger_of(trained_once())

    scores = score_batch(marketplace, 6, django_capture_on_commit_callbacks)
    shadow_score_many(sent[0])

    for score in scores:
        shadow = ShadowScore.objects.get(score=score)
        assert shadow.probability_of_default == pytest.approx(score.probability_of_default, abs=1e-9)
        assert (shadow.score_value, shadow.band, shadow.decision) == (score.score, score.band, score.decision)


def test_shadow_scores_never_change_the_dossier_its_score_or_its_decision(
    champion, marketplace, sent, django_capture_on_commit_callbacks
):
    challenger = challenger_of(other_model())
    scores = score_batch(marketplace, 6, django_capture_on_commit_callbacks)
    before = {
        s.pk: (s.probability_of_default, s.decision, s.model_version_id, s.dossier.decision, s.dossier.status)
        for s in Score.objects.select_related("dossier").filter(pk__in=[s.pk for s in scores])
    }

    shadow_score_many(sent[0])

    after = {
        s.pk: (s.probability_of_default, s.decision, s.model_version_id, s.dossier.decision, s.dossier.status)
        for s in Score.objects.select_related("dossier").filter(pk__in=[s.pk for s in scores])
    }
    assert after == before
    for shadow in ShadowScore.objects.filter(model_version=challenger).select_related("score__dossier"):
        score = Score.objects.select_related("snapshot", "policy_version", "dossier").get(pk=shadow.score_id)
        expected = policy_apply(
            score.policy_version,
            pd=shadow.probability_of_default,
            features=score.snapshot.features,
            requested_amount=float(score.dossier.requested_amount),
            naf_code=score.dossier.naf_code,
        )
        assert shadow.decision == expected.decision


def test_the_shadow_task_twice_records_one_shadow_per_score(
    champion, marketplace, sent, django_capture_on_commit_callbacks
):
    challenger_of(other_model())
    scores = score_batch(marketplace, 3, django_capture_on_commit_callbacks)

    shadow_score_many(sent[0])
    shadow_score_many(sent[0])

    assert ShadowScore.objects.count() == len(scores)


def test_without_a_challenger_no_shadow_task_is_sent(champion, marketplace, sent, django_capture_on_commit_callbacks):
    score_batch(marketplace, 3, django_capture_on_commit_callbacks)
    assert sent == []


def test_a_shadow_path_that_fails_never_holds_up_scoring(
    champion, marketplace, monkeypatch, django_capture_on_commit_callbacks
):
    challenger_of(other_model())

    def broken(ids):
        raise RuntimeError("the shadow queue is on fire")

    monkeypatch.setattr(shadow_score_many, "delay", broken)

    scores = score_batch(marketplace, 3, django_capture_on_commit_callbacks)

    assert len(scores) == 3 and Dossier.objects.filter(status="scored").count() == 3
    assert not ShadowScore.objects.exists()


def test_the_shadow_summary_compares_decisions_pds_and_points(
    champion, marketplace, sent, django_capture_on_commit_callbacks
):
    challenger = challenger_of(other_model())
    scores = score_batch(marketplace, 8, django_capture_on_commit_callbacks)
    shadow_score_many(sent[0])
    shadows = {s.score_id: s for s in ShadowScore.objects.filter(model_version=challenger)}

    summary = shadow_summary(challenger)

    assert summary["n"] == 8 and summary["model"] == challenger.label
    agreed = sum(shadows[s.pk].decision == s.decision for s in scores)
    assert summary["agreed"] == agreed and summary["agreement"] == pytest.approx(agreed / 8)
    assert sum(cell["n"] for cell in summary["crosstab"]) == 8
    for cell in summary["crosstab"]:
        assert cell["n"] == sum(
            1 for s in scores if (s.decision, shadows[s.pk].decision) == (cell["champion"], cell["challenger"])
        )
    assert summary["champion_mean_pd"] == pytest.approx(sum(s.probability_of_default for s in scores) / 8)
    assert summary["challenger_mean_pd"] == pytest.approx(sum(x.probability_of_default for x in shadows.values()) / 8)
    differences = sorted(shadows[s.pk].score_value - s.score for s in scores)
    assert differences[0] <= summary["score_difference"]["p50"] <= summary["score_difference"]["p90"] <= differences[-1]


def test_the_summary_of_a_challenger_without_shadow_scores_is_empty(champion):
    summary = shadow_summary(challenger_of(other_model()))
    assert (summary["n"], summary["agreement"], summary["crosstab"]) == (0, None, [])
    assert summary["score_difference"]["p50"] is None
