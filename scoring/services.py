"""Scoring writes: computing a dossier's score, training and promoting models, versioning policies."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from alerts.services import event_publish
from dossiers.models import Dossier
from riskoffice.audit import Actor, audit_record

from . import engine
from .features import catalogue_for, features_for
from .models import FeatureSnapshot, ModelVersion, PolicyVersion, Score
from .policy import policy_apply
from .scale import band_for, score_for
from .sources import gather_for_dossier
from .training import train_model

logger = logging.getLogger(__name__)
SYSTEM = Actor.of_system("scoring")


def champion_for(segment: str) -> ModelVersion | None:
    """The segment's champion. Its booster bytes are deferred: engine.model_load reads them once per process."""
    return (
        ModelVersion.objects.filter(segment=segment, status=ModelVersion.Status.CHAMPION).defer("booster_ubj").first()
    )


def policy_current(segment: str) -> PolicyVersion | None:
    return PolicyVersion.objects.filter(segment=segment, is_current=True).first()


def score_compute(*, dossier_id: Any) -> Score | None:
    """Gather data, predict, explain, apply the policy and store the Score. Safe to run twice.

    Sources are called outside the transaction; the write re-checks, under a row
    lock, that the dossier is still pending, so a duplicate task writes nothing.
    """
    dossier = Dossier.objects.select_related("company", "partner").filter(pk=dossier_id).first()
    if dossier is None or dossier.status != Dossier.Status.PENDING:
        return None
    model_version = champion_for(dossier.segment)
    policy = policy_current(dossier.segment)
    if model_version is None or policy is None:
        score_fail(dossier.pk, "No champion model or current policy for this segment; train and promote a model.")
        return None

    gathered = gather_for_dossier(dossier)
    requested = float(dossier.requested_amount)
    features = features_for(dossier.segment, gathered, requested)
    explanation = engine.explain_one(engine.model_load(model_version), features)
    pd = explanation.probability_of_default
    result = policy_apply(
        policy, pd=pd, features=features, requested_amount=requested, naf_code=gathered.identity.get("naf_code", "")
    )

    with transaction.atomic():
        locked = Dossier.objects.select_for_update().get(pk=dossier.pk)
        if locked.status != Dossier.Status.PENDING:
            return None
        if dossier.company_id and gathered.identity:
            company = dossier.company
            company.name = gathered.identity.get("name", company.name)
            company.naf_code = gathered.identity.get("naf_code", company.naf_code)
            company.save(update_fields=["name", "naf_code"])
        snapshot = FeatureSnapshot.objects.create(
            dossier=locked,
            features=jsonable_features(features),
            provenance=gathered.provenance(),
            collected_at=timezone.now(),
        )
        score = Score.objects.create(
            dossier=locked,
            snapshot=snapshot,
            model_version=model_version,
            policy_version=policy,
            probability_of_default=pd,
            score=score_for(pd, locked.segment),
            band=band_for(pd),
            decision=result.decision,
            recommended_limit=result.recommended_limit,
            rules_fired=result.rules_fired,
            base_value=explanation.base_value,
            contributions=explanation.contributions,
            factors=engine.factors_from(explanation, features),
            data_flags=gathered.flags,
        )
        before = {"status": locked.status, "decision": locked.decision}
        locked.status = Dossier.Status.SCORED
        locked.status_detail = ""
        if not locked.decision_overridden:
            locked.decision = result.decision
        locked.save(update_fields=["status", "status_detail", "decision", "updated_at"])
        audit_record(
            actor=SYSTEM,
            action="dossier.scored",
            obj=locked,
            before=before,
            after={
                "status": locked.status,
                "decision": locked.decision,
                "score_id": score.pk,
                "model_version": model_version.label,
                "policy_version": policy.label,
                "rules_fired": result.rules_fired,
            },
        )
        if locked.partner_id:
            event_publish(
                partner=locked.partner, event_type="score.completed", payload=score_event_payload(locked, score)
            )
    return score


def score_event_payload(dossier: Dossier, score: Score) -> dict[str, Any]:
    return {
        "id": str(dossier.pk),
        "status": dossier.status,
        "score": score.score,
        "probability_of_default": round(score.probability_of_default, 6),
        "band": score.band,
        "decision": dossier.decision,
        "model_version": score.model_version.label,
    }


def score_fail(dossier_id: Any, detail: str) -> None:
    with transaction.atomic():
        dossier = Dossier.objects.select_for_update().get(pk=dossier_id)
        if dossier.status != Dossier.Status.PENDING:
            return
        dossier.status = Dossier.Status.FAILED
        dossier.status_detail = detail[:300]
        dossier.save(update_fields=["status", "status_detail", "updated_at"])
        audit_record(actor=SYSTEM, action="dossier.scoring_failed", obj=dossier, after={"detail": detail})


def jsonable_features(features: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if v is None or (isinstance(v, float) and v != v) else v) for k, v in features.items()}


def labelled_history(segment: str) -> tuple[list[dict[str, Any]], list[int], list[str]]:
    """Rows, labels and application dates of every dossier with an outcome and a feature snapshot."""
    dossiers = (
        Dossier.objects.filter(segment=segment, outcome__isnull=False).select_related("outcome").order_by("created_at")
    )
    latest: dict[Any, dict[str, Any]] = {}
    snapshots = FeatureSnapshot.objects.filter(dossier__in=dossiers).order_by("dossier_id", "collected_at")
    for snapshot in snapshots.values("dossier_id", "features").iterator(chunk_size=2000):
        latest[snapshot["dossier_id"]] = snapshot["features"]  # the last one per dossier wins
    rows, labels, dates = [], [], []
    for dossier in dossiers.iterator(chunk_size=2000):
        features = latest.get(dossier.pk)
        if features is None:
            continue
        rows.append(features)
        labels.append(1 if dossier.outcome.status == "defaulted" else 0)
        dates.append(dossier.created_at.isoformat())
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
    rows, labels, dates = labelled_history(segment)
    catalogue = catalogue_for(segment)
    trained = train_model(
        rows,
        labels,
        dates,
        feature_names=[f.name for f in catalogue],
        categorical={f.name for f in catalogue if f.categorical},
        directions={f.name: f.direction for f in catalogue},
    )
    return model_register(segment=segment, trained=trained, trained_by=trained_by, promote=promote)
