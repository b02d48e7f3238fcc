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
from scoring.sources import gather_for_dossier


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
    model_version = champion_for(dossier.segment)
    policy = policy_current(dossier.segment)
    if model_version is None or policy is None:
        raise AssessmentUnavailable("No champion model or current policy for this segment; train and promote a model.")
    gathered = gather_for_dossier(dossier)
    requested = float(dossier.requested_amount)
    features = features_for(dossier.segment, gathered, requested)
    explanation = engine.explain_one(engine.model_load(model_version), features)
    pd = explanation.probability_of_default
    identity = dict(gathered.identity)
    return Assessment(
        model_version=model_version,
        policy=policy,
        features=jsonable_features(features),
        provenance=gathered.provenance(),
        data_flags=gathered.flags,
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
