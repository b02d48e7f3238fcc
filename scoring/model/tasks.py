"""Celery tasks of model governance: thin, id-based, safe to run twice; the work is in the services they call."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dossiers.models import Outcome
from riskoffice.audit import Actor, audit_record
from riskoffice.queueing import enqueue
from scoring.model.drift_daily import drift_check_run
from scoring.model.retraining import (
    GovernanceError,
    matured_outcomes_count,
    retraining_execute,
    retraining_start,
)
from scoring.model.shadow import shadow_scores_record
from scoring.models import RetrainingRun, Segment
from scoring.selectors import champion_for

logger = logging.getLogger(__name__)

# A running retraining whose heartbeat (each stage) is older than this lost its worker: the sweep fails it.
RUN_STALLED_AFTER = timedelta(hours=2)
# A queued run no worker took (its message lost: broker down at commit) is sent again after this long.
RUN_REQUEUE_AFTER = timedelta(minutes=10)


@shared_task(name="scoring.model.tasks.retrain_model")
def retrain_model(run_id: int) -> None:
    retraining_execute(run_id=run_id)


@shared_task(name="scoring.model.tasks.retrain_scheduled")
def retrain_scheduled() -> list[int]:
    """Monthly: one run per segment that has a champion or outcomes to learn from (not one already active)."""
    started = []
    for segment in Segment.values:
        if champion_for(segment) is None and not Outcome.objects.filter(dossier__segment=segment).exists():
            continue
        try:
            started.append(retraining_start(segment=segment, trigger=RetrainingRun.Trigger.SCHEDULE).pk)
        except GovernanceError:
            logger.info("Scheduled retraining of %s skipped: one is already active", segment)
    return started


@shared_task(name="scoring.model.tasks.retrain_sweep")
def retrain_sweep() -> list[int]:
    """Every few minutes: fail runs whose worker died, resend lost ones, start a run on enough new outcomes."""
    runs_stalled_fail()
    runs_lost_requeue()
    return retrain_on_new_outcomes()


def runs_stalled_fail(*, now: Any = None) -> list[int]:
    now = now or timezone.now()
    failed = []
    stalled = RetrainingRun.objects.filter(
        status=RetrainingRun.Status.RUNNING, heartbeat_at__lt=now - RUN_STALLED_AFTER
    ).values_list("pk", flat=True)
    for pk in stalled:
        error = _("The worker running this retraining stopped (no progress for two hours); start it again.")
        with transaction.atomic():
            updated = RetrainingRun.objects.filter(
                pk=pk, status=RetrainingRun.Status.RUNNING, heartbeat_at__lt=now - RUN_STALLED_AFTER
            ).update(status=RetrainingRun.Status.FAILED, error=error, finished_at=now)
            if updated:
                audit_record(
                    actor=Actor.of_system("retrain_sweep"),
                    action="model.retraining_failed",
                    obj=RetrainingRun.objects.get(pk=pk),
                    before={"status": RetrainingRun.Status.RUNNING},
                    after={"status": RetrainingRun.Status.FAILED, "error": error},
                )
                failed.append(pk)
    return failed


def runs_lost_requeue(*, now: Any = None) -> list[int]:
    now = now or timezone.now()
    lost = list(
        RetrainingRun.objects.filter(
            status=RetrainingRun.Status.QUEUED, created_at__lt=now - RUN_REQUEUE_AFTER
        ).values_list("pk", flat=True)
    )
    for pk in lost:
        enqueue(retrain_model, pk)  # a duplicate finds the run no longer queued and does nothing
    return lost


def retrain_on_new_outcomes() -> list[int]:
    """A run for each segment with MODEL_RETRAIN_MIN_NEW_OUTCOMES matured outcomes since its last succeeded run."""
    threshold = settings.MODEL_RETRAIN_MIN_NEW_OUTCOMES
    started: list[int] = []
    if threshold <= 0:
        return started
    for segment in Segment.values:
        last = (
            RetrainingRun.objects.filter(segment=segment, status=RetrainingRun.Status.SUCCEEDED)
            .order_by("-finished_at", "-pk")
            .first()
        )
        if last is not None:
            baseline = (last.labelled or {}).get("matured_outcomes")
            baseline = (last.labelled_rows or 0) if baseline is None else baseline
        else:  # never retrained: count from the champion's training (by train_model), if there is one
            champion = champion_for(segment)
            baseline = matured_outcomes_count(segment, now=champion.created_at) if champion else 0
        if matured_outcomes_count(segment) - baseline < threshold:
            continue
        try:
            started.append(retraining_start(segment=segment, trigger=RetrainingRun.Trigger.OUTCOMES).pk)
        except GovernanceError:
            pass  # one is already queued or running: it learns from them
    return started


@shared_task(name="scoring.model.tasks.shadow_score_many")
def shadow_score_many(score_ids: list[Any]) -> int:
    return len(shadow_scores_record(score_ids=score_ids))


@shared_task(name="scoring.model.tasks.drift_check_daily")
def drift_check_daily() -> list[int]:
    """Daily: each segment's champion's drift check (one per model and day, so a second run adds nothing)."""
    checks = []
    for segment in Segment.values:
        check = drift_check_run(segment=segment)
        if check is not None:
            checks.append(check.pk)
    return checks
