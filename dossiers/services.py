"""Dossier writes: creation, the stored assessment, overrides, outcomes, statements. Each leaves an audit row.

The dossier's state (pending → scored or failed) changes in ``dossiers.batch`` and nowhere else:
``scoring.assessment.assess_many`` computes, ``dossiers_record_assessments`` stores.
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

from riskoffice.audit import Actor, audit_record
from riskoffice.models import Partner
from riskoffice.queueing import enqueue
from scoring.models import FinancialStatement, Score
from scoring.statements import statement_errors, statement_figures

from .allowance import sandbox_allowance_charge
from .batch import (
    dossier_fail,
    dossiers_claim,
    dossiers_requeue_stalled,
    dossiers_score_claimed,
    lease_until,
    scoring_wake_up,
)
from .identifiers import vat_for_siren
from .models import Company, Decision, Dossier, Individual, Outcome, Override

logger = logging.getLogger(__name__)
__all__ = ["dossier_fail", "dossiers_requeue_stalled"]  # re-exported: where the scoring batch keeps them


@transaction.atomic
def dossier_create(
    *,
    partner: Partner | None,
    siren: str,
    requested_amount: Decimal,
    bank_tokens: list[str],
    actor: Actor,
    statements: list[dict] | None = None,
    score_here: bool = False,
) -> Dossier:
    """Create a B2B dossier, with the financial statements the partner supplied, and enqueue its scoring.

    ``score_here``: the caller scores it itself right after commit (``dossier_score_here``) instead.
    """
    company, _ = Company.objects.get_or_create(siren=siren, defaults={"vat": vat_for_siren(siren)})
    dossier = _dossier_open(partner, actor, requested_amount, bank_tokens, company=company, score_here=score_here)
    for values in statements or []:
        FinancialStatement.objects.create(
            company=company, source=FinancialStatement.Source.PARTNER, supplied_by_client=actor.client, **values
        )
    after = {"siren": siren, "requested_amount": str(requested_amount), "bank_tokens": len(bank_tokens)}
    if statements:
        after["financial_statements"] = [_statement_audit(values) for values in statements]
    audit_record(actor=actor, action="dossier.created", obj=dossier, after=after)
    sandbox_allowance_charge(actor.client)  # last: its lock on the client is held only until commit
    return dossier


@transaction.atomic
def dossier_create_individual(
    *,
    partner: Partner | None,
    reference: str,
    requested_amount: Decimal,
    bank_tokens: list[str],
    actor: Actor,
    score_here: bool = False,
) -> Dossier:
    """Create a B2C dossier for the partner's individual ``reference`` and enqueue its scoring.

    References are the partner's own: the same reference from two partners is two people.
    ``score_here`` as for ``dossier_create``.
    """
    individual, _ = Individual.objects.get_or_create(partner=partner, reference=reference)
    dossier = _dossier_open(partner, actor, requested_amount, bank_tokens, individual=individual, score_here=score_here)
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
    sandbox_allowance_charge(actor.client)  # last: its lock on the client is held only until commit
    return dossier


def _dossier_open(
    partner: Partner | None,
    actor: Actor,
    requested_amount: Decimal,
    bank_tokens: list[str],
    *,
    company: Company | None = None,
    individual: Individual | None = None,
    score_here: bool = False,
) -> Dossier:
    """A pending dossier on a company (B2B) or an individual (B2C); its scoring is enqueued after commit.

    With ``score_here`` it is created claimed by the caller, which scores it after commit: no
    message, no worker. Should the caller die first, the claim lapses and the sweep sends it.
    """
    dossier = Dossier.objects.create(
        partner=partner,
        api_client=actor.client,
        company=company,
        individual=individual,
        segment="b2b" if company is not None else "b2c",
        requested_amount=requested_amount,
        bank_tokens_json=json.dumps(bank_tokens),
        claimed_until=lease_until() if score_here else None,
        attempts=1 if score_here else 0,
    )
    if not score_here:
        transaction.on_commit(scoring_wake_up)
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


class CreditNotGranted(ValidationError):
    """An outcome labels a credit that was granted: a refused dossier has no repayment to learn from."""

    problem_status, problem_slug, problem_title = 409, "credit-not-granted", "Credit not granted"


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
    if dossier.decision not in GRANTED:
        raise CreditNotGranted(
            f"The decision in force is {dossier.get_decision_display().lower()}: no credit was granted, "
            "so there is no repayment or default to record."
        )
    decided_on = _decision_date(dossier)
    if occurred_on < decided_on:
        raise ValidationError(
            {"occurred_on": f"The outcome date cannot precede the decision in force ({decided_on.isoformat()})."}
        )
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


GRANTED = (Decision.ACCEPT, Decision.GUARANTEE)


def _decision_date(dossier: Dossier) -> date:
    """The day the decision in force was taken: the latest override's, else the latest score's."""
    override = dossier.overrides.order_by("-created_at").values_list("created_at", flat=True).first()
    scored = dossier.scores.order_by("-created_at").values_list("created_at", flat=True).first()
    return timezone.localtime(override or scored or dossier.created_at).date()


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


def dossier_score_here(*, dossier_id: Any) -> tuple[Dossier, Score] | None:
    """Score, in this process, a dossier created with ``score_here``: the dossier and its score, or None.

    None when it was not scored here: failed (no champion), set aside for a retry, or handed to the
    workers because scoring it raised.
    """
    from .tasks import score_dossier

    try:
        return dossiers_score_claimed([dossier_id]).stored.get(Dossier._meta.pk.to_python(dossier_id))
    except Exception:
        logger.exception("Scoring dossier %s in the request failed; handed to the workers", dossier_id)
        Dossier.objects.filter(pk=dossier_id, status=Dossier.Status.PENDING).update(claimed_until=None)
        enqueue(score_dossier, str(dossier_id))
        return None


def dossier_score(*, dossier_id: Any) -> Score | None:
    """Score one pending dossier now, alone (commands, the back-office, a request that waits); None if not scored.

    It is claimed like any batch's dossier, so a scorer already holding it is not raced and a
    dossier scored meanwhile is left alone: safe to run twice.
    """
    ids = dossiers_claim(first=dossier_id, limit=1, others=False)
    if not ids:
        return None
    stored = dossiers_score_claimed(ids).stored.get(ids[0])
    return stored[1] if stored else None
