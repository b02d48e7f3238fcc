"""Drift: once a day, the PSI of each champion's live scores and features against its training reference.

Above MODEL_PSI_ALERT (0.25) a warning alert goes to senior analysts (the inbox and e-mail), once per
segment and day; a second check the same day records nothing new. Analysts do not see model alerts.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from alerts.models import Alert
from alerts.notify import email_alerts
from alerts.selectors import alerts_for_user
from dossiers.batch import dossiers_score_batch
from dossiers.services import dossier_create
from riskoffice.audit import Actor
from scoring.model import engine
from scoring.model.drift import reference_build
from scoring.model.drift_daily import drift_check_run
from scoring.model.synthetic import siren_from_number
from scoring.model.tasks import drift_check_daily
from scoring.models import DriftCheck, ModelVersion, Score

from .conftest import login

pytestmark = pytest.mark.django_db

LIVE_SCORES = 30


@pytest.fixture(autouse=True)
def small_window(settings) -> None:
    settings.MODEL_DRIFT_MIN_SCORES = 20  # thirty live scores are enough to compare here


@pytest.fixture
def live(champion, marketplace) -> list[Score]:
    """Thirty applications scored by the champion today."""
    for i in range(LIVE_SCORES):
        dossier_create(
            partner=marketplace.partner,
            siren=siren_from_number(90_000_000 + i),
            requested_amount=Decimal(10_000 + 1_000 * i),
            bank_tokens=["tok"] if i % 3 else [],
            actor=Actor(client=marketplace.api_client),
        )
    dossiers_score_batch(limit=LIVE_SCORES)
    scores = list(Score.objects.filter(model_version=champion).select_related("snapshot"))
    assert len(scores) == LIVE_SCORES
    return scores


def the_fullest_numeric_feature(champion: ModelVersion, scores: list[Score]) -> str:
    loaded = engine.model_load(champion)
    numeric = [name for name in loaded.feature_names if name not in loaded.categories]
    return max(numeric, key=lambda name: sum(s.snapshot.features.get(name) is not None for s in scores))


def reference_from(champion: ModelVersion, scores: list[Score], *, hide: str | None = None) -> None:
    """The champion's training reference, built from these very files (``hide``: that feature was never known)."""
    rows = [dict(s.snapshot.features) for s in scores]
    if hide:
        for row in rows:
            row[hide] = None
    reference = reference_build(
        model=engine.model_load(champion), rows=rows, pds=[s.probability_of_default for s in scores]
    )
    ModelVersion.objects.filter(pk=champion.pk).update(reference=reference)


@pytest.fixture
def drifted(champion, live) -> str:
    """Live files whose fullest feature was always missing in training: that feature drifted."""
    feature = the_fullest_numeric_feature(champion, live)
    reference_from(champion, live, hide=feature)
    return feature


@pytest.fixture
def people(senior, analyst):
    senior.email, analyst.email = "sam@lender.example", "alice@lender.example"
    senior.save(update_fields=["email"])
    analyst.save(update_fields=["email"])
    return senior, analyst


def test_a_drifted_population_raises_one_warning_alert_a_day(champion, drifted, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        [check_id] = drift_check_daily()

    check = DriftCheck.objects.get(pk=check_id)
    assert (check.segment, check.model_version, check.scores_compared) == ("b2b", champion, LIVE_SCORES)
    assert check.psi_max > 0.25 and check.psi_max_of == drifted and check.alerted
    assert check.psi_features[drifted] == check.psi_max
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.drift_check) == ("model_drift", "warning", check)
    assert alert.dedup_key == f"drift:b2b:{check.day.isoformat()}"
    assert alert.company is None and alert.individual is None
    assert len(callbacks) == 1  # the e-mail, after commit

    assert drift_check_daily() == [check_id]  # the same day again: nothing new
    assert (DriftCheck.objects.count(), Alert.objects.count()) == (1, 1)


def test_a_population_like_its_reference_is_recorded_without_an_alert(champion, live):
    reference_from(champion, live)

    check = drift_check_run(segment="b2b")

    assert check.scores_compared == LIVE_SCORES and check.psi_max < 0.1 and not check.alerted
    assert check.psi_score is not None
    assert not Alert.objects.exists()


def test_too_few_scores_are_recorded_as_such_and_raise_nothing(champion, live, settings):
    reference_from(champion, live)
    settings.MODEL_DRIFT_MIN_SCORES = 100

    check = drift_check_run(segment="b2b")

    assert (check.scores_compared, check.psi_score, check.psi_max) == (LIVE_SCORES, None, None)
    assert not Alert.objects.exists()


def test_a_champion_without_a_training_reference_is_not_checked(champion, live):
    assert drift_check_run(segment="b2b") is None
    assert not DriftCheck.objects.exists()


def test_only_senior_analysts_see_a_drift_alert_in_the_inbox(client, people, drifted):
    senior, analyst = people
    drift_check_run(segment="b2b")
    alert = Alert.objects.get()

    assert list(alerts_for_user(senior)) == [alert]
    assert list(alerts_for_user(analyst)) == []

    login(client, senior)
    page = client.get(reverse("alerts:inbox")).content.decode()
    assert f'data-alert="{alert.pk}"' in page
    assert "Model of segment b2b" in page and f"worst: {drifted}" in page
    assert 'data-testid="models-link"' in page
    client.logout()
    login(client, analyst)
    page = client.get(reverse("alerts:inbox")).content.decode()
    assert f'data-alert="{alert.pk}"' not in page
    assert client.get(reverse("alerts:inbox") + "?show=all").status_code == 200


def test_a_drift_alert_is_emailed_to_senior_analysts_only(people, drifted):
    senior, _ = people
    drift_check_run(segment="b2b")
    alert = Alert.objects.get()

    email_alerts([alert.pk])  # the task the check enqueued after commit

    assert [message.to for message in mail.outbox] == [[senior.email]]
    body = mail.outbox[0].body
    assert "Model of segment b2b" in body and drifted in body and "PSI" in body
    email_alerts([alert.pk])  # twice: sent once
    assert len(mail.outbox) == 1
