"""Dossier writes: creation, the stored assessment, overrides, outcomes, statements. Each leaves an audit row.

The dossier's state (pending → scored or failed) changes here and nowhere else:
``scoring.assessment.assess`` computes, ``dossier_record_assessment`` stores.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.services import event_publish
from riskoffice.audit import Actor, audit_record
from riskoffice.models import Partner
from riskoffice.queueing import enqueue, enqueue_on_commit, requeue_claim
from scoring.assessment import Assessment, AssessmentUnavailable, assess
from scoring.models import FeatureSnapshot, FinancialStatement, Score
from scoring.statements import statement_errors, statement_figures

from .allowance import sandbox_allowance_charge
from .identifiers import vat_for_siren
from .models import Company, Decision, Dossier, Individual, Outcome, Override
from .representation import score_representation

logger = logging.getLogger(__name__)
SYSTEM = Actor.of_system("scoring")


@transaction.atomic
def dossier_create(
    *,
    partner: Partner | None,
    siren: str,
    requested_amount: Decimal,
    bank_tokens: list[str],
    actor: Actor,
    statements: list[dict] | None = None,
) -> Dossier:
    """Create a B2B dossier, with the financial statements the partner supplied, and enqueue its scoring."""
    sandbox_allowance_charge(actor.client)
    company, _ = Company.objects.get_or_create(siren=siren, defaults={"vat": vat_for_siren(siren)})
    dossier = _dossier_open(partner, actor, requested_amount, bank_tokens, company=company)
    for values in statements or []:
        FinancialStatement.objects.create(
            company=company, source=FinancialStatement.Source.PARTNER, supplied_by_client=actor.client, **values
        )
    after = {"siren": siren, "requested_amount": str(requested_amount), "bank_tokens": len(bank_tokens)}
    if statements:
        after["financial_statements"] = [_statement_audit(values) for values in statements]
    audit_record(actor=actor, action="dossier.created", obj=dossier, after=after)
    return dossier


@transaction.atomic
def dossier_create_individual(
    *,
    partner: Partner | None,
    reference: str,
    requested_amount: Decimal,
    bank_tokens: list[str],
    actor: Actor,
) -> Dossier:
    """Create a B2C dossier for the partner's individual ``reference`` and enqueue its scoring.

    References are the partner's own: the same reference from two partners is two people.
    """
    sandbox_allowance_charge(actor.client)
    individual, _ = Individual.objects.get_or_create(partner=partner, reference=reference)
    dossier = _dossier_open(partner, actor, requested_amount, bank_tokens, individual=individual)
    audit_record(
        actor=actor,
        action="dossier.created",
        obj=dossier,
        after={
            "individual_reference": reference,
            "requested_amount": str(requested_amount),
            "bank_tokens": len(bank_tokens),
        },
    )
    return dossier


def _dossier_open(
    partner: Partner | None,
    actor: Actor,
    requested_amount: Decimal,
    bank_tokens: list[str],
    *,
    company: Company | None = None,
    individual: Individual | None = None,
) -> Dossier:
    """A pending dossier on a company (B2B) or an individual (B2C); its scoring is enqueued after commit."""
    from .tasks import score_dossier

    dossier = Dossier.objects.create(
        partner=partner,
        api_client=actor.client,
        company=company,
        individual=individual,
        segment="b2b" if company is not None else "b2c",
        requested_amount=requested_amount,
        bank_tokens_json=json.dumps(bank_tokens),
    )
    enqueue_on_commit(score_dossier, str(dossier.pk))
    return dossier


@transaction.atomic
def dossier_override(*, dossier: Dossier, decision: str, reason: str, user: AbstractBaseUser) -> Override:
    """Replace the decision in force with another, for a stated reason; recorded as an override."""
    reason = (reason or "").strip()
    if decision not in Decision.values:
        raise ValidationError({"decision": "Choose accept, guarantee or refuse."})
    if not reason:
        raise ValidationError({"reason": "An override needs a reason."})
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.status != Dossier.Status.SCORED:
        raise ValidationError("Only a scored dossier can be overridden.")
    if decision == dossier.decision:
        raise ValidationError({"decision": f"The decision is already {dossier.get_decision_display().lower()}."})
    override = Override.objects.create(
        dossier=dossier, from_decision=dossier.decision, to_decision=decision, reason=reason, decided_by=user
    )
    before = {"decision": dossier.decision, "overridden": dossier.decision_overridden}
    dossier.decision = decision
    dossier.decision_overridden = True
    dossier.save(update_fields=["decision", "decision_overridden", "updated_at"])
    audit_record(
        actor=Actor(user=user),
        action="dossier.overridden",
        obj=dossier,
        before=before,
        after={"decision": decision, "overridden": True, "reason": reason, "override_id": override.pk},
    )
    return override


class OutcomeAlreadyRecorded(ValidationError):
    """The dossier has its outcome; only a default may still be written off."""

    problem_status, problem_slug, problem_title = 409, "outcome-already-recorded", "Outcome already recorded"


class DossierNotScored(ValidationError):
    """Outcomes label scored dossiers: one still pending or failed has nothing to learn from."""

    problem_status, problem_slug, problem_title = 409, "dossier-not-scored", "Dossier not scored"


OUTCOME_AMOUNTS = ("granted_amount", "outstanding_amount", "written_off_amount")


@transaction.atomic
def outcome_record(
    *,
    dossier: Dossier,
    status: str,
    occurred_on: date,
    actor: Actor,
    amounts: dict[str, Decimal | None] | None = None,
) -> tuple[Outcome, bool]:
    """Record what became of the credit, the label the next model learns from; returns it and whether it is new.

    One outcome per dossier, except that a default may later be written off: that updates the
    outcome (its date becomes the write-off's, the default stays in the audit trail).
    ``amounts`` may give granted_amount, outstanding_amount and written_off_amount (euros, >= 0).
    """
    amounts = {name: value for name, value in (amounts or {}).items() if value is not None}
    _outcome_check(status, occurred_on, amounts)
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.status != Dossier.Status.SCORED:
        raise DossierNotScored("Only a scored dossier can have an outcome.")
    if occurred_on < timezone.localtime(dossier.created_at).date():
        raise ValidationError({"occurred_on": "The outcome date cannot precede the application."})
    outcome = Outcome.objects.filter(dossier=dossier).first()
    if outcome is not None:
        return _outcome_write_off(outcome, status=status, occurred_on=occurred_on, amounts=amounts, actor=actor), False
    outcome = Outcome.objects.create(
        dossier=dossier,
        status=status,
        occurred_on=occurred_on,
        recorded_by=actor.user,
        reported_by_client=actor.client,
        **amounts,
    )
    audit_record(
        actor=actor,
        action="dossier.outcome_recorded",
        obj=dossier,
        after={"outcome": status, "occurred_on": occurred_on.isoformat(), **_amounts_audit(amounts)},
    )
    return outcome, True


def _outcome_check(status: str, occurred_on: date, amounts: dict[str, Decimal]) -> None:
    errors: dict[str, str] = {}
    if status not in Outcome.Status.values:
        errors["status"] = "An outcome is repaid, defaulted or written off."
    if occurred_on > timezone.localdate():
        errors["occurred_on"] = "The outcome date cannot be in the future."
    for name in set(amounts) - set(OUTCOME_AMOUNTS):
        errors[name] = "Unknown amount."
    for name, value in amounts.items():
        if name in OUTCOME_AMOUNTS and value < 0:
            errors[name] = "Amounts cannot be negative."
    if status == Outcome.Status.WRITTEN_OFF and "written_off_amount" not in amounts:
        errors["written_off_amount"] = "A write-off states the amount written off."
    elif status != Outcome.Status.WRITTEN_OFF and "written_off_amount" in amounts:
        errors["written_off_amount"] = "Only a write-off states an amount written off."
    if errors:
        raise ValidationError(errors)


def _outcome_write_off(
    outcome: Outcome, *, status: str, occurred_on: date, amounts: dict[str, Decimal], actor: Actor
) -> Outcome:
    """A defaulted credit written off: the one change an outcome accepts, audited with what it replaced."""
    if outcome.status != Outcome.Status.DEFAULTED or status != Outcome.Status.WRITTEN_OFF:
        raise OutcomeAlreadyRecorded("An outcome is already recorded for this dossier.")
    if occurred_on < outcome.occurred_on:
        raise ValidationError({"occurred_on": "The write-off cannot precede the default."})
    before = {
        "outcome": outcome.status,
        "occurred_on": outcome.occurred_on.isoformat(),
        **_amounts_audit({name: getattr(outcome, name) for name in OUTCOME_AMOUNTS}),
    }
    outcome.status = Outcome.Status.WRITTEN_OFF
    outcome.occurred_on = occurred_on
    for name, value in amounts.items():
        setattr(outcome, name, value)
    outcome.recorded_by = actor.user
    outcome.reported_by_client = actor.client
    outcome.save(
        update_fields=["status", "occurred_on", *OUTCOME_AMOUNTS, "recorded_by", "reported_by_client", "updated_at"]
    )
    audit_record(
        actor=actor,
        action="dossier.outcome_written_off",
        obj=outcome.dossier,
        before=before,
        after={
            "outcome": outcome.status,
            "occurred_on": occurred_on.isoformat(),
            **_amounts_audit({name: getattr(outcome, name) for name in OUTCOME_AMOUNTS}),
        },
    )
    return outcome


def _amounts_audit(amounts: dict[str, Decimal | None]) -> dict[str, str]:
    return {name: f"{value:.2f}" for name, value in amounts.items() if value is not None}


@transaction.atomic
def statement_record(*, dossier: Dossier, values: dict[str, Any], user: AbstractBaseUser) -> FinancialStatement:
    """Record a financial statement an analyst read from the applicant's accounts, for the dossier's company."""
    if not dossier.company_id:
        raise ValidationError("Financial statements belong to a company's dossier.")
    errors = statement_errors(values)
    if errors:
        raise ValidationError(errors)
    fiscal_year_end, figures = values["fiscal_year_end"], statement_figures(values)
    statement = FinancialStatement.objects.create(
        company_id=dossier.company_id,
        fiscal_year_end=fiscal_year_end,
        source=FinancialStatement.Source.ANALYST,
        supplied_by_user=user,
        **figures,
    )
    audit_record(
        actor=Actor(user=user),
        action="dossier.statement_recorded",
        obj=dossier,
        after={"statement_id": statement.pk, **_statement_audit({"fiscal_year_end": fiscal_year_end, **figures})},
    )
    return statement


def _statement_audit(values: dict[str, Any]) -> dict[str, str]:
    return {
        name: value.isoformat() if isinstance(value, date) else str(value)
        for name, value in values.items()
        if value is not None
    }


def dossier_score(*, dossier_id: Any) -> Score | None:
    """Assess a pending dossier and store the assessment; None when there was nothing to score. Safe to run twice."""
    dossier = Dossier.objects.select_related("company", "individual", "partner").filter(pk=dossier_id).first()
    if dossier is None or dossier.status != Dossier.Status.PENDING:
        return None
    try:
        assessment = assess(dossier)
    except AssessmentUnavailable as exc:
        dossier_fail(dossier_id=dossier.pk, detail=str(exc))
        return None
    return dossier_record_assessment(dossier_id=dossier.pk, assessment=assessment)


@transaction.atomic
def dossier_record_assessment(*, dossier_id: Any, assessment: Assessment) -> Score | None:
    """Store an assessment as the dossier's score and move it from pending to scored, with its audit row and event.

    The sources were called outside any transaction; here, under a row lock, the
    dossier must still be pending, so a duplicate task writes nothing.
    """
    dossier = (
        Dossier.objects.select_for_update(of=("self",))
        .select_related("company", "individual", "partner")
        .get(pk=dossier_id)
    )
    if dossier.status != Dossier.Status.PENDING:
        return None
    if dossier.company_id and assessment.registry_identity:
        company = dossier.company
        company.name = assessment.registry_identity.get("name", company.name)
        company.naf_code = assessment.registry_identity.get("naf_code", company.naf_code)
        company.save(update_fields=["name", "naf_code"])
    score = _score_store(dossier, assessment)
    result = assessment.policy_result
    before = {"status": dossier.status, "decision": dossier.decision}
    dossier.status = Dossier.Status.SCORED
    dossier.status_detail = ""
    dossier.applicant_name = (assessment.applicant_identity.get("name") or "")[:200]
    dossier.naf_code = (assessment.applicant_identity.get("naf_code") or "")[:6]
    if not dossier.decision_overridden:
        dossier.decision = result.decision
    dossier.save(update_fields=["status", "status_detail", "decision", "applicant_name", "naf_code", "updated_at"])
    audit_record(
        actor=SYSTEM,
        action="dossier.scored",
        obj=dossier,
        before=before,
        after={
            "status": dossier.status,
            "decision": dossier.decision,
            "score_id": score.pk,
            "model_version": assessment.model_version.label,
            "policy_version": assessment.policy.label,
            "rules_fired": result.rules_fired,
        },
    )
    if dossier.partner_id:
        event_publish(
            partner=dossier.partner,
            event_type="score.completed",
            payload=score_representation(dossier, score),
        )
    return score


def _score_store(dossier: Dossier, assessment: Assessment) -> Score:
    """The assessment's rows: the features as collected, and the score with its versions and reasons."""
    snapshot = FeatureSnapshot.objects.create(
        dossier=dossier,
        features=assessment.features,
        provenance=assessment.provenance,
        collected_at=timezone.now(),
    )
    result = assessment.policy_result
    return Score.objects.create(
        dossier=dossier,
        snapshot=snapshot,
        model_version=assessment.model_version,
        policy_version=assessment.policy,
        probability_of_default=assessment.probability_of_default,
        score=assessment.score,
        band=assessment.band,
        decision=result.decision,
        recommended_limit=result.recommended_limit,
        rules_fired=result.rules_fired,
        base_value=assessment.explanation.base_value,
        contributions=assessment.explanation.contributions,
        factors=assessment.factors,
        data_flags=assessment.data_flags,
    )


@transaction.atomic
def dossier_fail(*, dossier_id: Any, detail: str) -> None:
    """A pending dossier that cannot be scored becomes failed, with the reason the partner and analysts read."""
    dossier = Dossier.objects.select_for_update().get(pk=dossier_id)
    if dossier.status != Dossier.Status.PENDING:
        return
    dossier.status = Dossier.Status.FAILED
    dossier.status_detail = detail[:300]
    dossier.save(update_fields=["status", "status_detail", "updated_at"])
    audit_record(actor=SYSTEM, action="dossier.scoring_failed", obj=dossier, after={"detail": detail})


def dossiers_requeue_stalled() -> list[Any]:
    """Enqueue again the pending dossiers whose message was lost (broker down at commit, worker lost), backing off."""
    from .tasks import score_dossier

    claimed = requeue_claim(Dossier.objects.filter(status=Dossier.Status.PENDING), waiting_since="updated_at")
    for dossier_id in claimed:
        if not enqueue(score_dossier, str(dossier_id)):
            break  # the broker is down: the claimed rest wait for their back-off, as they would anyway
    return claimed
