"""Retraining a segment's model from its outcomes, and the senior analyst's decisions on what it made.

A run (``RetrainingRun``) is queued by the schedule, by enough new mature outcomes, by a senior analyst or
by ``train_model``; a Celery task executes it: the labelled set (matured outcomes, features as they were
at decision time), a time-ordered split whose latest ``MODEL_HOLDOUT_SHARE`` is the out-of-time holdout,
a challenger trained on the earlier rows, the comparison with the champion on the holdout (with the
promotion gates), the PSI reference, and the challenger registered. Nothing is promoted by a run, except
the first model of a segment (there is nothing to compare it with): a senior analyst approves a challenger
whose gates passed, or rejects it, and can roll the champion back to the previous one.

Every decision writes an audit row in its transaction. Workers pick up a promoted model on their next
assessment: the champion is looked up per batch (``scoring.assessment.assess_many``) and its booster
parsed once per process per version (``engine.model_load``), so no restart and no failed request.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from dossiers.models import Outcome
from riskoffice.audit import Actor, audit_record
from riskoffice.queueing import enqueue_on_commit
from riskoffice.roles import SENIOR_ANALYST, has_any_role
from scoring.model import engine
from scoring.model.registry import LabelledHistory, labelled_history, model_promote, model_register
from scoring.model.training import MIN_ROWS, train_segment
from scoring.models import DEFAULT_OUTCOMES, ModelVersion, RetrainingRun
from scoring.selectors import champion_for

logger = logging.getLogger(__name__)


class GovernanceError(Exception):
    """A decision on a model that cannot be taken as asked; the message is for the user (translated)."""


# --- starting and running a retraining ---------------------------------------------------------------------------


def _actor(user: Any, system: str) -> Actor:
    return Actor(user=user) if user is not None else Actor.of_system(system)


@transaction.atomic
def retraining_start(*, segment: str, trigger: str, user: Any = None, enqueue: bool = True) -> RetrainingRun:
    """Queue a retraining of ``segment``; its task is sent after commit (``enqueue=False``: the caller runs it).

    One run per segment is queued or running at a time (a database constraint): a second start raises
    GovernanceError.
    """
    if trigger == RetrainingRun.Trigger.MANUAL and not has_any_role(user, {SENIOR_ANALYST}):
        raise PermissionDenied(_("Only a senior analyst may start a retraining."))
    busy = _("A retraining of this segment is already queued or running; wait for it to finish.")
    if RetrainingRun.objects.filter(segment=segment, status__in=_ACTIVE).exists():
        raise GovernanceError(busy)
    try:
        with transaction.atomic():
            run = RetrainingRun.objects.create(segment=segment, trigger=trigger, started_by=user)
    except IntegrityError:  # another start won the race between the check and the insert
        raise GovernanceError(busy) from None
    audit_record(
        actor=_actor(user, f"retraining:{trigger}"),
        action="model.retraining_started",
        obj=run,
        after={"segment": segment, "trigger": trigger},
    )
    if enqueue:
        from scoring.model.tasks import retrain_model  # the tasks module imports this one

        enqueue_on_commit(retrain_model, run.pk)
    return run


_ACTIVE = (RetrainingRun.Status.QUEUED, RetrainingRun.Status.RUNNING)


class RetrainingFailed(Exception):
    """A run that cannot produce a challenger, for a reason the back-office shows as it is (translated)."""


def _stage(run: RetrainingRun, stage: str, progress: int) -> None:
    """What the run does now, committed at once (outside any transaction) so the back-office can follow it.

    Stored in English (``gettext_noop``) and translated where it is shown, in the reader's language.
    """
    run.stage, run.progress, run.heartbeat_at = stage, progress, timezone.now()
    RetrainingRun.objects.filter(pk=run.pk).update(stage=stage, progress=progress, heartbeat_at=run.heartbeat_at)


def retraining_execute(*, run_id: int) -> RetrainingRun | None:
    """The task's body: run a queued retraining to a challenger (or a first champion), or fail it readably.

    Only a queued run is taken (a conditional update), so a duplicate message does nothing.
    """
    now = timezone.now()
    claimed = RetrainingRun.objects.filter(pk=run_id, status=RetrainingRun.Status.QUEUED).update(
        status=RetrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0
    )
    run = RetrainingRun.objects.filter(pk=run_id).first()
    if not claimed or run is None:
        return run
    try:
        _execute(run)
    except RetrainingFailed as exc:
        _fail(run, str(exc))
    except Exception as exc:  # a run must end; the traceback goes to the log, not the back-office
        logger.exception("Retraining run %s failed", run.pk)
        _fail(
            run,
            _("The retraining stopped on an unexpected error (%(error)s); see the worker's log.")
            % {"error": type(exc).__name__},
        )
    run.refresh_from_db()
    return run


def _execute(run: RetrainingRun) -> None:
    segment = run.segment
    _stage(run, gettext_noop("Reading the labelled set"), 5)
    history = labelled_history(segment)
    run.labelled = _labelled_summary(history, segment)
    history, older = _recent(history, settings.MODEL_RETRAIN_WINDOW_MONTHS)
    if settings.MODEL_RETRAIN_WINDOW_MONTHS:
        run.labelled.update(
            {
                "retrain_window_months": settings.MODEL_RETRAIN_WINDOW_MONTHS,
                "window_rows": len(history.rows),
                "older_left_out": older,
            }
        )
        run.labelled["summary"] += " " + (
            f"Retraining window: the last {settings.MODEL_RETRAIN_WINDOW_MONTHS} months of applications; "
            f"{older} older files left out."
        )
    run.labelled_rows = len(history.rows)
    run.save(update_fields=["labelled_rows", "labelled"])

    _stage(run, gettext_noop("Splitting out the out-of-time holdout"), 15)
    champion = champion_for(segment)
    champion_trained_to = (champion.training_window or {}).get("to") if champion else None
    train, holdout = _time_split(history, champion_trained_to, older)
    run.labelled.update({"train_rows": len(train[0]), "holdout_rows": len(holdout[0])})
    run.save(update_fields=["labelled"])

    _stage(run, gettext_noop("Training the challenger"), 25)
    try:
        trained = train_segment(segment, *train)
    except ValueError as exc:
        raise RetrainingFailed(
            _("Not enough labelled files to train on the rows before the holdout: %(reason)s.") % {"reason": exc}
        ) from None
    challenger = engine.model_from_trained(trained)

    _stage(run, gettext_noop("Comparing with the champion on the holdout"), 70)
    from scoring.model.comparison import compare_on_holdout
    from scoring.model.drift import reference_build

    rows, labels, dates = holdout
    comparison = compare_on_holdout(
        champion=engine.model_load(champion) if champion else None,
        challenger=challenger,
        rows=rows,
        labels=labels,
        dates=dates,
        segment=segment,
        champion_label=champion.label if champion else None,
        champion_trained_to=champion_trained_to,
        resamples=settings.MODEL_BOOTSTRAP_RESAMPLES,
    )
    reference = reference_build(model=challenger, rows=train[0], pds=engine.predict_pd(challenger, train[0]))

    _stage(run, gettext_noop("Registering the challenger"), 90)
    with transaction.atomic():
        model_version = model_register(
            segment=segment,
            trained=trained,
            trained_by=f"retraining run {run.pk}",
            promote=champion is None,  # the segment's first model: nothing to compare it with
            status=ModelVersion.Status.CHALLENGER,
            reference=reference,
            comparison=comparison,
        )
        model_version.comparison["challenger"]["label"] = model_version.label
        model_version.save(update_fields=["comparison"])
        run.status = RetrainingRun.Status.SUCCEEDED
        run.challenger = model_version
        run.stage = gettext_noop("Done")
        run.progress = 100
        run.finished_at = run.heartbeat_at = timezone.now()
        run.save(update_fields=["status", "challenger", "stage", "progress", "finished_at", "heartbeat_at"])
        audit_record(
            actor=Actor.of_system(f"retraining run {run.pk}"),
            action="model.retraining_succeeded",
            obj=run,
            after={
                "model": model_version.label,
                "status": model_version.status,
                "gates_passed": comparison.get("passed"),
                "labelled_rows": run.labelled_rows,
            },
        )


def matured_outcomes_count(segment: str, *, now: Any = None) -> int:
    """Outcomes recorded by ``now`` that count as labels, in one COUNT: defaults, and repaid credits decided a
    window or more before ``now``.

    An upper bound of ``labelled_history``'s rows (which also need a snapshot before the outcome), cheap
    enough for the sweep that runs every few minutes; runs store it, the sweep compares with it.
    """
    now = now or timezone.now()
    matured_before = now - relativedelta(months=settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS)
    return (
        Outcome.objects.filter(dossier__segment=segment, created_at__lte=now)
        .filter(Q(status__in=DEFAULT_OUTCOMES) | Q(dossier__created_at__lte=matured_before))
        .count()
    )


def _labelled_summary(history: LabelledHistory, history_segment: str) -> dict[str, Any]:
    return {
        "rows": len(history.rows),
        "defaults": history.defaults,
        "immature": history.immature,
        "without_snapshot": history.without_snapshot,
        "window_months": history.window_months,
        "summary": history.summary(),
        # What the sweep counts new outcomes against: the same cheap measure as it uses (matured_outcomes_count).
        "matured_outcomes": matured_outcomes_count(history_segment),
    }


def _recent(history: LabelledHistory, months: int) -> tuple[LabelledHistory, int]:
    """The files applied for in the last ``months`` months (0: every file), and how many older ones were left out.

    After a drift, older outcomes teach the risk as it was (docs/benchmarks.md, drift). The window counts
    from now, not from the latest file: repaid credits mature only after OUTCOME_PERFORMANCE_WINDOW_MONTHS,
    so a window shorter than that holds defaults and no repaid credit, and the holdout check says so.
    """
    if not months:
        return history, 0
    since = timezone.now() - relativedelta(months=months)
    keep = [i for i, date in enumerate(history.dates) if datetime.fromisoformat(date) >= since]
    recent = dataclasses.replace(
        history,
        rows=[history.rows[i] for i in keep],
        labels=[history.labels[i] for i in keep],
        dates=[history.dates[i] for i in keep],
    )
    return recent, len(history.rows) - len(keep)


def _time_split(
    history: LabelledHistory, champion_trained_to: str | None = None, older: int = 0
) -> tuple[tuple[list, list, list], tuple[list, list, list]]:
    """The earlier rows to train on, and the out-of-time holdout both models are judged on.

    The holdout is the latest MODEL_HOLDOUT_SHARE of the labelled set. When the champion trained on part of
    those files (its training window reaches into them) but the files dated after its window hold
    MODEL_GATE_MIN_DEFAULTS defaults and repaid credits too, the holdout is those files alone: a smaller
    holdout that neither model has seen beats a larger one where the champion is judged on what it learnt
    (its figures would be optimistic and a sound challenger would fail the gates). Otherwise the latest
    share stays the holdout and the comparison says how many of its files the champion saw.
    """
    n = len(history.rows)
    holdout_n = round(n * settings.MODEL_HOLDOUT_SHARE)
    if n - holdout_n < MIN_ROWS or holdout_n == 0:
        if older:
            raise RetrainingFailed(
                _(
                    "The last %(months)d months of applications (MODEL_RETRAIN_WINDOW_MONTHS) hold %(rows)d matured "
                    "files, %(older)d older ones left out: too few to train a model and keep a holdout (training "
                    "needs at least %(min)d labelled rows before the holdout). Widen the window: repaid credits "
                    "mature only after %(performance)d months."
                )
                % {
                    "months": settings.MODEL_RETRAIN_WINDOW_MONTHS,
                    "rows": n,
                    "older": older,
                    "min": MIN_ROWS,
                    "performance": settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS,
                }
            )
        raise RetrainingFailed(
            _(
                "The labelled set has %(rows)d matured files: too few to train a model and keep a holdout "
                "(training needs at least %(min)d labelled rows before the holdout)."
            )
            % {"rows": n, "min": MIN_ROWS}
        )
    cut = n - holdout_n
    if champion_trained_to and history.dates[cut] <= champion_trained_to:
        unseen = next((i for i, date in enumerate(history.dates) if date > champion_trained_to), n)
        unseen_defaults = sum(history.labels[unseen:])
        if unseen_defaults >= settings.MODEL_GATE_MIN_DEFAULTS and unseen_defaults < n - unseen:
            cut = unseen
    holdout_labels = history.labels[cut:]
    if sum(holdout_labels) == 0 or sum(holdout_labels) == len(holdout_labels):
        raise RetrainingFailed(
            _(
                "The holdout (the latest %(rows)d files) needs defaults and repaid credits both to compare models; "
                "record more outcomes."
            )
            % {"rows": n - cut}
        )
    return (
        (history.rows[:cut], history.labels[:cut], history.dates[:cut]),
        (history.rows[cut:], holdout_labels, history.dates[cut:]),
    )


def _fail(run: RetrainingRun, error: str) -> None:
    with transaction.atomic():
        now = timezone.now()
        RetrainingRun.objects.filter(pk=run.pk).update(
            status=RetrainingRun.Status.FAILED, error=error, finished_at=now, heartbeat_at=now
        )
        audit_record(
            actor=Actor.of_system(f"retraining run {run.pk}"),
            action="model.retraining_failed",
            obj=run,
            before={"status": run.status, "stage": run.stage},
            after={"status": RetrainingRun.Status.FAILED, "error": error},
        )


def comparison_lines(comparison: dict[str, Any]) -> list[str]:
    """A stored comparison as plain lines (the command's output): the holdout, each metric, the gates."""
    if not comparison:
        return ["No comparison."]
    holdout = comparison["holdout"]
    lines = [
        f"Out-of-time holdout: {holdout['rows']} files ({holdout['defaults']} defaults), "
        f"{str(holdout['from'])[:10]} to {str(holdout['to'])[:10]}."
    ]
    champion, challenger = comparison.get("champion"), comparison["challenger"]
    difference = comparison.get("difference") or {}
    for metric in ("auc", "gini", "ks", "brier", "mean_pd"):
        parts = [f"  {metric.upper() if metric != 'mean_pd' else 'mean PD':8}"]
        for side in (champion, challenger):
            if side is None:
                continue
            value, (low, high) = side.get(metric), (side.get("ci") or {}).get(metric) or (None, None)
            parts.append(f"{side.get('label') or '?'} {_figure(value)} [{_figure(low)}, {_figure(high)}]")
        change = difference.get(metric)
        if change:
            parts.append(
                f"difference {_figure(change['value'], signed=True)} "
                f"({_figure(change['low'], signed=True)} to {_figure(change['high'], signed=True)})"
            )
        lines.append("  ".join(parts))
    lines.append("Promotion gates:")
    for gate in comparison.get("gates", []):
        lines.append(f"  [{'pass' if gate['passed'] else 'FAIL'}] {gate['name']}: {gate['detail']}")
    return lines


def _figure(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


# --- the senior analyst's decisions ------------------------------------------------------------------------------


def _require_senior(user: Any) -> None:
    if not has_any_role(user, {SENIOR_ANALYST}):
        raise PermissionDenied(_("Only a senior analyst decides on models."))


def _locked_challenger(model_version: ModelVersion, nothing_to_do: str) -> ModelVersion:
    """The version, locked, if it is still its segment's challenger; else ``nothing_to_do`` as the refusal."""
    locked = ModelVersion.objects.select_for_update().defer("booster_ubj").get(pk=model_version.pk)
    if locked.status != ModelVersion.Status.CHALLENGER:
        raise GovernanceError(nothing_to_do % {"model": locked.label, "status": locked.get_status_display()})
    return locked


@transaction.atomic
def challenger_approve(*, model_version: ModelVersion, user: Any, note: str) -> ModelVersion:
    """Promote a challenger whose gates passed: it becomes the champion, the champion retires."""
    _require_senior(user)
    locked = _locked_challenger(
        model_version, _("%(model)s is not the challenger (it is %(status)s): there is nothing to approve.")
    )
    if not (locked.comparison or {}).get("passed"):
        failed = [g.get("name", "?") for g in (locked.comparison or {}).get("gates", []) if not g.get("passed")]
        raise GovernanceError(
            _("%(model)s did not pass the promotion gates (%(gates)s): it cannot be approved.")
            % {"model": locked.label, "gates": ", ".join(failed) or _("no comparison")}
        )
    compared_with = ((locked.comparison or {}).get("champion") or {}).get("label")
    current = champion_for(locked.segment)
    if current is not None and compared_with != current.label:
        raise GovernanceError(
            _(
                "%(model)s was compared with %(compared)s, but the champion is now %(champion)s: "
                "retrain to compare again."
            )
            % {"model": locked.label, "compared": compared_with or "-", "champion": current.label}
        )
    now = timezone.now()
    locked.decided_by, locked.decided_at, locked.decision_note = user, now, note.strip()
    locked.save(update_fields=["decided_by", "decided_at", "decision_note"])
    actor = Actor(user=user)
    audit_record(
        actor=actor,
        action="model.challenger_approved",
        obj=locked,
        before={"status": ModelVersion.Status.CHALLENGER},
        after={"status": ModelVersion.Status.CHAMPION, "note": locked.decision_note},
    )
    return model_promote(model_version=locked, actor=actor)


@transaction.atomic
def challenger_reject(*, model_version: ModelVersion, user: Any, note: str) -> ModelVersion:
    """Reject a challenger: it stops shadow-scoring and can never be promoted."""
    _require_senior(user)
    locked = _locked_challenger(
        model_version, _("%(model)s is not the challenger (it is %(status)s): there is nothing to reject.")
    )
    locked.status = ModelVersion.Status.REJECTED
    locked.decided_by, locked.decided_at, locked.decision_note = user, timezone.now(), note.strip()
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_record(
        actor=Actor(user=user),
        action="model.challenger_rejected",
        obj=locked,
        before={"status": ModelVersion.Status.CHALLENGER},
        after={"status": locked.status, "note": locked.decision_note},
    )
    return locked


def rollback_target(versions: Iterable[ModelVersion]) -> ModelVersion | None:
    """The version a rollback brings back: of the retired versions that were once champion, the one retired last
    (a version retired before ``retired_at`` was kept counts from its promotion). The Models page names it with
    the same rule, so the version it shows is the version that returns."""
    retired = [v for v in versions if v.status == ModelVersion.Status.RETIRED and v.promoted_at is not None]
    return max(retired, key=lambda v: (v.retired_at or v.promoted_at, v.version), default=None)


@transaction.atomic
def champion_rollback(*, segment: str, user: Any, note: str, seen_champion: int | None = None) -> ModelVersion:
    """The previous champion (``rollback_target``) returns; the current one retires.

    ``seen_champion``: the champion the senior analyst saw when deciding; if another decision replaced it since,
    the rollback is refused as stale rather than undoing a decision the analyst never saw.
    """
    _require_senior(user)
    locked = list(
        ModelVersion.objects.select_for_update()
        .defer("booster_ubj")
        .filter(segment=segment, status__in=[ModelVersion.Status.CHAMPION, ModelVersion.Status.RETIRED])
    )
    current = next((v for v in locked if v.status == ModelVersion.Status.CHAMPION), None)
    if seen_champion is not None and (current is None or current.pk != seen_champion):
        raise GovernanceError(
            _("The champion changed since this page was shown: nothing was rolled back. Review it again.")
        )
    previous = rollback_target(locked)
    if previous is None:
        raise GovernanceError(_("No previous champion of this segment to roll back to."))
    actor = Actor(user=user)
    audit_record(
        actor=actor,
        action="model.rolled_back",
        obj=previous,
        before={"champion": current.label if current else None},
        after={"champion": previous.label, "note": note.strip()},
    )
    return model_promote(model_version=previous, actor=actor)
