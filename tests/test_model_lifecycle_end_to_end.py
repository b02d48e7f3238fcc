"""Issue 12's loop, end to end, as the demo runs it: outcomes come in, a senior analyst retrains, compares,
approves, the new champion scores the next dossier, and a rollback brings the old one back.

Everything real: a labelled history in the database (``seed_demo``), ``train_model`` for the first champion,
the live server and a Celery worker process on the configured broker (the retraining runs in the worker, as a
senior analyst's click sends it), the partner through the API with a real token, the senior analyst through
the login form (two factors) and the models page.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from dossiers.models import Dossier
from riskoffice.audit import audit_history
from scoring.models import ModelVersion, RetrainingRun, Score
from scoring.selectors import champion_for

from .conftest import ALL_SCOPES, login, make_partner_client
from .test_monitoring_end_to_end import Partner, eventually

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SIRENS = ("552100554", "732829320", "443061841", "542107651")


def scored_by(partner: Partner, siren: str, worker) -> Score:
    """The partner asks for a score; the worker scores it; the score the dossier got."""
    created = partner.post("/api/v1/scores", {"company": {"siren": siren}, "requested_amount": 25000})
    assert created.status_code == 202, created.text
    score_id = created.json()["id"]
    eventually(
        lambda: partner.get(f"/api/v1/scores/{score_id}").json()["status"] == "scored",
        timeout=60,
        why=f"{siren} was not scored by the worker",
        worker=worker,
    )
    return Score.objects.filter(dossier_id=score_id).select_related("model_version").latest("created_at")


def test_outcomes_retrain_compare_approve_then_the_new_champion_scores_and_a_rollback_restores_the_old(
    live_server, reference_data, celery_worker_process, senior, client
):
    worker = celery_worker_process
    # A book with its history (outcomes matured), and its first model: trained on all but the latest files,
    # validated on those, champion.
    call_command("seed_demo", companies=2000, seed=7, stdout=open("/dev/null", "w"))
    call_command("train_model", stdout=open("/dev/null", "w"))
    first = champion_for("b2b")
    assert first is not None and first.comparison["passed"], first.comparison.get("gates")

    marketplace = make_partner_client("Learning Marketplace", sorted(ALL_SCOPES))
    partner = Partner(live_server.url, marketplace.client_id, marketplace.client_secret)
    assert scored_by(partner, SIRENS[0], worker).model_version_id == first.pk

    # An outcome comes back through the API: the credit defaulted (a default counts at once).
    dossier = Dossier.objects.get(pk=Score.objects.filter(model_version=first).latest("created_at").dossier_id)
    if dossier.decision not in ("accept", "guarantee"):
        Dossier.objects.filter(pk=dossier.pk).update(decision="accept")  # granted all the same, as an override would
    outcome = partner.post(
        f"/api/v1/scores/{dossier.pk}/outcome",
        {"status": "defaulted", "occurred_on": timezone.localdate().isoformat()},
    )
    assert outcome.status_code in (200, 201), outcome.text

    # The senior analyst starts a retraining from the models page; the worker runs it; its progress shows.
    login(client, senior)
    assert client.get(reverse("scoring:models")).status_code == 200
    started = client.post(reverse("scoring:model-retrain", args=["b2b"]))
    assert started.status_code == 302
    run = RetrainingRun.objects.get(segment="b2b", trigger=RetrainingRun.Trigger.MANUAL)
    assert run.started_by == senior
    eventually(
        lambda: RetrainingRun.objects.filter(pk=run.pk, status__in=["succeeded", "failed"]).exists(),
        timeout=180,
        why="the worker did not finish the retraining",
        worker=worker,
    )
    run.refresh_from_db()
    assert run.status == RetrainingRun.Status.SUCCEEDED, run.error
    assert run.labelled["rows"] >= 2000 - 1  # the history, plus the default just recorded if it matured
    progress = client.get(reverse("scoring:retraining-progress", args=[run.pk]))
    assert progress.status_code == 200 and "100" in progress.content.decode()

    # The comparison on the out-of-time holdout, with the gates, is on the page; the challenger shadow-scores.
    challenger = run.challenger
    assert challenger.status == ModelVersion.Status.CHALLENGER
    assert challenger.comparison["champion"]["label"] == first.label
    assert challenger.comparison["passed"], challenger.comparison["gates"]
    page = client.get(reverse("scoring:models")).content.decode()
    assert challenger.label in page and "AUC" in page and "Gini" in page and "KS" in page and "Brier" in page
    shadowed = scored_by(partner, SIRENS[1], worker)
    assert shadowed.model_version_id == first.pk, "the challenger decides nothing"
    eventually(
        lambda: shadowed.shadow_scores.filter(model_version=challenger).exists(),
        timeout=30,
        why="the challenger did not shadow-score the live dossier",
        worker=worker,
    )

    # Approved with a note: the challenger is the champion, and the next dossier is scored by it, no restart.
    approved = client.post(reverse("scoring:model-approve", args=[challenger.pk]), {"note": "Out-of-time check fine."})
    assert approved.status_code == 302
    challenger.refresh_from_db()
    assert challenger.status == ModelVersion.Status.CHAMPION and challenger.decided_by == senior
    assert [e.action for e in audit_history(challenger)][:2] == ["model.promoted", "model.challenger_approved"]
    assert scored_by(partner, SIRENS[2], worker).model_version_id == challenger.pk

    # One click rolls back: the previous champion returns and scores the next dossier.
    rollback = client.post(
        reverse("scoring:model-rollback", args=["b2b"]), {"note": "Back to v1 for now.", "champion": challenger.pk}
    )
    assert rollback.status_code == 302
    assert champion_for("b2b").pk == first.pk
    assert scored_by(partner, SIRENS[3], worker).model_version_id == first.pk
    challenger.refresh_from_db()
    assert challenger.status == ModelVersion.Status.RETIRED and challenger.retired_at is not None
