"""The score as partners and analysts see it: one representation for the API, the webhook and the back-office."""

from __future__ import annotations

from typing import Any

from riskoffice.subjects.review import dossier_decision_final, latest_review, review_representation
from scoring.model.engine import factors_in_decision_order
from scoring.models import Score

from .models import Dossier, Outcome

LANGUAGES = ("fr", "en")


def _amount(value: Any) -> str | None:
    return None if value is None else str(value)


def outcome_representation(outcome: Outcome) -> dict[str, Any]:
    """What became of the credit, as ``POST /api/v1/scores/{id}/outcome`` answers and the score carries it."""
    return {
        "status": outcome.status,
        "occurred_on": outcome.occurred_on.isoformat(),
        "granted_amount": _amount(outcome.granted_amount),
        "outstanding_amount": _amount(outcome.outstanding_amount),
        "written_off_amount": _amount(outcome.written_off_amount),
        "recorded_at": outcome.created_at.isoformat(),
        "updated_at": outcome.updated_at.isoformat(),
    }


def _outcome_of(dossier: Dossier) -> dict[str, Any] | None:
    try:
        outcome = dossier.outcome  # no query when the selector joined it (select_related("outcome"))
    except Outcome.DoesNotExist:
        return None
    return outcome_representation(outcome)


def score_representation(dossier: Dossier, score: Score | None, *, lang: str = "fr") -> dict[str, Any]:
    """The dossier with its latest score: what ``GET /api/v1/scores/{id}`` answers and ``score.completed`` carries.

    ``lang`` picks the language of the explanation texts (French unless asked otherwise).
    """
    lang = lang if lang in LANGUAGES else "fr"
    body: dict[str, Any] = {
        "id": str(dossier.pk),
        "status": dossier.status,
        "created_at": dossier.created_at.isoformat(),
        "company": {
            "siren": dossier.company.siren,
            "vat": dossier.company.vat,
            "name": dossier.applicant_name or dossier.company.name,
        }
        if dossier.company_id
        else None,
        "individual": {"reference": dossier.individual.reference} if dossier.individual_id else None,
        "requested_amount": str(dossier.requested_amount),
        "score": None,
        "probability_of_default": None,
        "band": None,
        "decision": dossier.decision or None,
        "recommendation": None,
        "recommended_limit": None,
        "explainability": [],
        "model_version": None,
        "policy_version": None,
        "scored_at": None,
        "outcome": _outcome_of(dossier),
        # GDPR Art. 22: a person may ask for a human review; while it is open the decision is not final.
        "human_review": review_representation(latest_review(dossier)),
        "decision_final": dossier_decision_final(dossier),
    }
    if dossier.status == Dossier.Status.FAILED:
        body["error"] = dossier.status_detail
    if score is not None:
        body.update(
            {
                "score": score.score,
                "probability_of_default": round(score.probability_of_default, 6),
                "band": score.band,
                "recommendation": score.decision,
                "decision_overridden": dossier.decision_overridden,
                "recommended_limit": str(score.recommended_limit) if score.recommended_limit is not None else None,
                "explainability": [
                    {
                        "feature": f["feature"],
                        "text": f["text"][lang],
                        "direction": f["direction"],
                        "contribution": f["contribution"],
                        "value": f["value"],
                    }
                    # Ordered for the decision in force: a refusal leads with what raised the risk.
                    for f in factors_in_decision_order(score.factors, dossier.decision or score.decision)
                ],
                "model_version": score.model_version.label,
                "policy_version": score.policy_version.label,
                "scored_at": score.created_at.isoformat(),
                "score_version": score.version,
                "score_trigger": score.trigger,
            }
        )
    return body
