"""Versions of the model: training one on the labelled dossiers, registering it, promoting it to champion."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from dossiers.models import Outcome
from riskoffice.audit import Actor, audit_record
from scoring.model.training import train_segment
from scoring.models import DEFAULT_OUTCOMES, FeatureSnapshot, ModelVersion


@dataclass(frozen=True)
class LabelledHistory:
    """The rows a model learns from, oldest application first, and what was left out and why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    # Repaid credits whose performance window has not yet run: "good so far" is not a label.
    immature: int = 0
    # Outcomes with no features from before the outcome: nothing known at decision time to learn from.
    without_snapshot: int = 0
    window_months: int = 12

    @property
    def defaults(self) -> int:
        return sum(self.labels)

    def summary(self) -> str:
        return (
            f"Labelled set: {len(self.rows)} files ({self.defaults} defaults); left out: {self.immature} not yet "
            f"matured (window {self.window_months} months), {self.without_snapshot} without a score."
        )


@dataclass(frozen=True)
class DecidedOutcome:
    """A matured outcome with what the decision in force stood on: its time (``decided_at``) and ``payload``."""

    dossier_id: Any
    defaulted: bool
    applied_at: datetime
    outcome_recorded_at: datetime
    decided_at: datetime
    payload: tuple[Any, ...]


def decided_outcomes(
    segment: str, decisions: QuerySet, *, now: datetime | None = None, window_months: int | None = None
) -> tuple[list[DecidedOutcome], int, int]:
    """The segment's matured outcomes, oldest application first, each with the artefact its decision stood on.

    ``decisions`` yields ``(dossier_id, at, *payload)`` for the segment's dossiers: feature snapshots
    (``labelled_history``) or scores (``backtest``). The rule both share, in one place:

    - point in time: a dossier's artefact is the latest one made before its outcome was recorded and no later
      than the day the outcome occurred (a re-score after a default is not what the credit was granted on);
    - matured: a default or write-off counts whenever it happened; a repaid credit only once ``window_months``
      (``OUTCOME_PERFORMANCE_WINDOW_MONTHS``) have passed since that artefact.

    Returns the matured files, the repaid ones not yet matured, and the outcomes without an artefact. Two
    queries whatever the size of the book: the outcomes, then the artefacts that precede them.
    """
    now = now or timezone.now()
    window_months = settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS if window_months is None else window_months
    matured_before = now - relativedelta(months=window_months)
    outcomes = list(
        Outcome.objects.filter(dossier__segment=segment)
        .order_by("dossier__created_at", "dossier_id")
        .values_list("dossier_id", "status", "occurred_on", "created_at", "dossier__created_at")
    )
    last_day = {dossier_id: occurred_on for dossier_id, _, occurred_on, _, _ in outcomes}
    decided: dict[Any, tuple[datetime, tuple[Any, ...]]] = {}
    for dossier_id, at, *payload in decisions.iterator(chunk_size=2000):
        occurred_on = last_day.get(dossier_id)  # None: an outcome recorded since the first query
        if occurred_on is None or timezone.localtime(at).date() > occurred_on:
            continue  # made after the outcome occurred, though before it was recorded
        kept = decided.get(dossier_id)
        if kept is None or at > kept[0]:
            decided[dossier_id] = (at, tuple(payload))
    files: list[DecidedOutcome] = []
    immature = without_decision = 0
    for dossier_id, status, _, recorded_at, applied_at in outcomes:
        if dossier_id not in decided:
            without_decision += 1
            continue
        at, payload = decided[dossier_id]
        defaulted = status in DEFAULT_OUTCOMES
        if not defaulted and at > matured_before:
            immature += 1
            continue
        files.append(DecidedOutcome(dossier_id, defaulted, applied_at, recorded_at, at, payload))
    return files, immature, without_decision


def labelled_history(segment: str, *, now: datetime | None = None, window_months: int | None = None) -> LabelledHistory:
    """The segment's matured outcomes, each with the features the decision was taken on (point in time).

    The rule is ``decided_outcomes``'s, on feature snapshots. Every score (first scoring, challenge, retry)
    collects its own snapshot, and a re-score replaces the decision in force, overrides included
    (``dossiers.batch``): so a challenge before the outcome is the decision the credit was granted on, while a
    re-score after it — or a statement, an event, a data point recorded later — never feeds the row. The
    performance window runs from that snapshot's collection; a loan granted last week and repaid would
    otherwise teach "good".
    """
    window_months = settings.OUTCOME_PERFORMANCE_WINDOW_MONTHS if window_months is None else window_months
    snapshots = (
        FeatureSnapshot.objects.filter(dossier__segment=segment, collected_at__lt=F("dossier__outcome__created_at"))
        .order_by()
        .values_list("dossier_id", "collected_at", "features")
    )
    files, immature, without_snapshot = decided_outcomes(segment, snapshots, now=now, window_months=window_months)
    return LabelledHistory(
        rows=[file.payload[0] for file in files],
        labels=[1 if file.defaulted else 0 for file in files],
        dates=[file.applied_at.isoformat() for file in files],
        immature=immature,
        without_snapshot=without_snapshot,
        window_months=window_months,
    )


@transaction.atomic
def model_register(
    *,
    segment: str,
    trained: Any,
    trained_by: str,
    promote: bool,
    status: str = ModelVersion.Status.CANDIDATE,
    reference: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
) -> ModelVersion:
    """Store a trained model as the segment's next version: a candidate, a challenger, or (``promote``) the champion.

    A new challenger supersedes one still awaiting a senior analyst's decision: that one is rejected, with a
    note naming its successor (a segment has one challenger at a time).
    """
    next_version = (ModelVersion.objects.filter(segment=segment).aggregate(v=Max("version"))["v"] or 0) + 1
    actor = Actor.of_system(trained_by or "train_model")
    if status == ModelVersion.Status.CHALLENGER and not promote:
        challenger_supersede(segment=segment, by_version=next_version, actor=actor)
    model_version = ModelVersion.objects.create(
        segment=segment,
        version=next_version,
        status=ModelVersion.Status.CANDIDATE if promote else status,
        booster_ubj=trained.booster_ubj,
        feature_names=trained.feature_names,
        categories=trained.categories,
        monotone_constraints=trained.monotone_constraints,
        params=trained.params,
        metrics=trained.metrics,
        training_window=trained.training_window,
        data_hash=trained.data_hash,
        trained_by=trained_by,
        calibration=trained.calibration,
        reference=reference or {},
        comparison=comparison or {},
    )
    audit_record(
        actor=actor,
        action="model.registered",
        obj=model_version,
        after={
            "version": model_version.label,
            "status": model_version.status,
            "metrics": trained.metrics,
            "gates_passed": (comparison or {}).get("passed"),
        },
    )
    if promote:
        model_promote(model_version=model_version, actor=actor)
    return model_version


def challenger_supersede(*, segment: str, by_version: int, actor: Actor) -> ModelVersion | None:
    """The segment's challenger still awaiting a decision, rejected because a newer one replaces it; audited."""
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(segment=segment, status=ModelVersion.Status.CHALLENGER)
        .defer("booster_ubj")
        .first()
    )
    if previous is None:
        return None
    previous.status = ModelVersion.Status.REJECTED
    previous.decided_at = timezone.now()
    previous.decision_note = f"superseded by v{by_version}"
    previous.save(update_fields=["status", "decided_at", "decision_note"])
    audit_record(
        actor=actor,
        action="model.challenger_superseded",
        obj=previous,
        before={"status": ModelVersion.Status.CHALLENGER},
        after={"status": previous.status, "note": previous.decision_note},
    )
    return previous


@transaction.atomic
def model_promote(*, model_version: ModelVersion, actor: Actor) -> ModelVersion:
    """Make a version the segment's champion; the previous champion retires (``retired_at``: rollback's order)."""
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(segment=model_version.segment, status=ModelVersion.Status.CHAMPION)
        .defer("booster_ubj")
        .first()
    )
    now = timezone.now()
    if previous and previous.pk != model_version.pk:
        previous.status = ModelVersion.Status.RETIRED
        previous.retired_at = now
        previous.save(update_fields=["status", "retired_at"])
    before_status = model_version.status
    model_version.status = ModelVersion.Status.CHAMPION
    model_version.promoted_at = now
    model_version.retired_at = None
    model_version.save(update_fields=["status", "promoted_at", "retired_at"])
    audit_record(
        actor=actor,
        action="model.promoted",
        obj=model_version,
        before={"champion": previous.label if previous else None, "status": before_status},
        after={"champion": model_version.label},
    )
    return model_version


def model_train_from_dossiers(
    *,
    segment: str = "b2b",
    trained_by: str = "train_model",
    promote: bool = True,
    history: LabelledHistory | None = None,
) -> ModelVersion:
    """Train on ``history`` (by default the segment's labelled history as of now), register, maybe promote."""
    if history is None:
        history = labelled_history(segment)
    trained = train_segment(segment, history.rows, history.labels, history.dates)
    return model_register(segment=segment, trained=trained, trained_by=trained_by, promote=promote)
