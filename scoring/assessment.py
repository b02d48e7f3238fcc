"""Assessing a dossier: gather its data, build its features, predict and explain, apply the policy.

``assess`` reads and computes; it writes nothing. The dossier's owner
(``dossiers.services.dossier_record_assessment``) stores what it returns and moves
the dossier's state, so a duplicate task or a dossier decided meanwhile is handled
in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scoring.model import engine
from scoring.model.features import features_for, jsonable_features
from scoring.models import ModelVersion, PolicyVersion
from scoring.policy.apply import PolicyResult, policy_apply
from scoring.policy.scale import band_for, score_for
from scoring.selectors import champion_for, policy_current
from scoring.sources import GatheredData, gather_for_dossier
from scoring.sources.on_file import analyst_flags, analyst_values_apply, analyst_values_for, on_file_for


class AssessmentUnavailable(Exception):
    """The segment cannot be scored now (no champion model or no current policy); the message says why."""


@dataclass(frozen=True)
class Assessment:
    model_version: ModelVersion
    policy: PolicyVersion
    features: dict[str, Any]  # JSON-ready: missing values are None
    provenance: dict[str, Any]
    data_flags: list[str]
    # What the registry says of the company, to update the shared Company row; empty when the
    # identity came from the sandbox, whose invented names must never reach other partners.
    registry_identity: dict[str, Any]
    # The applicant's name and NAF code as this dossier's sources gave them (sandbox included).
    applicant_identity: dict[str, Any]
    explanation: engine.Explanation
    factors: list[dict[str, Any]]
    policy_result: PolicyResult
    score: int
    band: str

    @property
    def probability_of_default(self) -> float:
        return self.explanation.probability_of_default


def assess(dossier: Any) -> Assessment:
    """The assessment of a dossier with its segment's champion and current policy; raises AssessmentUnavailable."""
    outcome = assess_many([dossier])[dossier.pk]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def assess_many(dossiers: list[Any]) -> dict[Any, Assessment | Exception]:
    """Assessments of many dossiers, the model run once per segment on one matrix: {pk: assessment or error}.

    What is on file is read in two queries for all of them; each segment's champion and policy
    once; TreeSHAP is computed row by row inside XGBoost, so every dossier gets the very
    contributions it would get alone. A dossier whose data could not be gathered gets its
    exception, the others their assessment: one bad dossier does not fail a batch.
    """
    results: dict[Any, Assessment | Exception] = {}
    on_file = on_file_for(dossiers)
    supplied = analyst_values_for(dossiers)  # data points analysts supplied in challenges, over the sources'
    for segment in sorted({d.segment for d in dossiers}):
        members = [d for d in dossiers if d.segment == segment]
        model_version, policy = champion_for(segment), policy_current(segment)
        if model_version is None or policy is None:
            unavailable = AssessmentUnavailable(
                "No champion model or current policy for this segment; train and promote a model."
            )
            results.update(dict.fromkeys((d.pk for d in members), unavailable))
            continue
        ready = []
        for dossier in members:
            try:
                gathered = gather_for_dossier(dossier, on_file[dossier.pk])
                analyst_values_apply(gathered, segment, supplied.get(dossier.pk))
                ready.append((dossier, gathered, features_for(segment, gathered, float(dossier.requested_amount))))
            except Exception as exc:  # noqa: BLE001 - kept with its dossier, which the caller retries alone
                results[dossier.pk] = exc
        if not ready:
            continue
        explanations = engine.explain_many(engine.model_load(model_version), [features for _, _, features in ready])
        for (dossier, gathered, features), explanation in zip(ready, explanations, strict=True):
            flags = analyst_flags(gathered.flags, features, segment, supplied.get(dossier.pk))
            results[dossier.pk] = _assessment(dossier, model_version, policy, gathered, features, explanation, flags)
    return results


def _assessment(
    dossier: Any,
    model_version: ModelVersion,
    policy: PolicyVersion,
    gathered: GatheredData,
    features: dict[str, Any],
    explanation: engine.Explanation,
    data_flags: list[str],
) -> Assessment:
    requested = float(dossier.requested_amount)
    pd = explanation.probability_of_default
    identity = dict(gathered.identity)
    return Assessment(
        model_version=model_version,
        policy=policy,
        features=jsonable_features(features),
        provenance=gathered.provenance(),
        data_flags=data_flags,
        registry_identity={} if gathered.sandbox else identity,
        applicant_identity=identity,
        explanation=explanation,
        factors=engine.factors_from(explanation, features),
        policy_result=policy_apply(
            policy, pd=pd, features=features, requested_amount=requested, naf_code=identity.get("naf_code", "")
        ),
        score=score_for(pd, dossier.segment),
        band=band_for(pd),
    )
