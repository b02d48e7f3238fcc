"""Versions of the model: training one on the labelled dossiers, registering it, promoting it to champion."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from riskoffice.audit import Actor, audit_record
from scoring.model.training import train_segment
from scoring.models import DEFAULT_OUTCOMES, FeatureSnapshot, ModelVersion
from scoring.selectors import champion_for


def labelled_history(segment: str) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """Rows, labels and application dates of every dossier with an outcome and a feature snapshot.

    Oldest application first; a dossier scored more than once contributes its latest snapshot.
    """
    snapshots = (
        FeatureSnapshot.objects.filter(dossier__segment=segment, dossier__outcome__isnull=False)
        .order_by("dossier__created_at", "dossier_id", "collected_at")
        .values_list("dossier_id", "features", "dossier__outcome__status", "dossier__created_at")
    )
    latest: dict[Any, tuple[dict[str, Any], str, Any]] = {}
    for dossier_id, features, outcome, created_at in snapshots.iterator(chunk_size=2000):
        latest[dossier_id] = (features, outcome, created_at)  # the last one per dossier wins, order kept
    rows = [features for features, _, _ in latest.values()]
    labels = [1 if outcome in DEFAULT_OUTCOMES else 0 for _, outcome, _ in latest.values()]
    dates = [created_at.isoformat() for _, _, created_at in latest.values()]
    return rows, labels, dates


@transaction.atomic
def model_register(*, segment: str, trained: Any, trained_by: str, promote: bool) -> ModelVersion:
    next_version = (ModelVersion.objects.filter(segment=segment).aggregate(v=Max("version"))["v"] or 0) + 1
    model_version = ModelVersion.objects.create(
        segment=segment,
        version=next_version,
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
    )
    actor = Actor.of_system(trained_by or "train_model")
    audit_record(
        actor=actor,
        action="model.registered",
        obj=model_version,
        after={"version": model_version.label, "metrics": trained.metrics},
    )
    if promote:
        model_promote(model_version=model_version, actor=actor)
    return model_version


@transaction.atomic
def model_promote(*, model_version: ModelVersion, actor: Actor) -> ModelVersion:
    """Make a version the segment's champion; the previous champion retires."""
    previous = champion_for(model_version.segment)
    if previous and previous.pk != model_version.pk:
        previous.status = ModelVersion.Status.RETIRED
        previous.save(update_fields=["status"])
    model_version.status = ModelVersion.Status.CHAMPION
    model_version.promoted_at = timezone.now()
    model_version.save(update_fields=["status", "promoted_at"])
    audit_record(
        actor=actor,
        action="model.promoted",
        obj=model_version,
        before={"champion": previous.label if previous else None},
        after={"champion": model_version.label},
    )
    return model_version


def model_train_from_dossiers(
    *, segment: str = "b2b", trained_by: str = "train_model", promote: bool = True
) -> ModelVersion:
    trained = train_segment(segment, *labelled_history(segment))
    return model_register(segment=segment, trained=trained, trained_by=trained_by, promote=promote)
