"""Dossier writes: creation from the API, overrides, outcomes. Each leaves an audit row."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from riskoffice.audit import Actor, audit_record
from riskoffice.models import Partner
from scoring.models import FinancialStatement
from scoring.sources import STATEMENT_FIGURES

from .identifiers import vat_for_siren
from .models import Company, Decision, Dossier, Individual, Outcome, Override


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
    from .tasks import score_dossier

    company, _ = Company.objects.get_or_create(siren=siren, defaults={"vat": vat_for_siren(siren)})
    dossier = Dossier.objects.create(
        partner=partner,
        company=company,
        segment="b2b",
        requested_amount=requested_amount,
        bank_tokens_json=json.dumps(bank_tokens),
    )
    for values in statements or []:
        FinancialStatement.objects.create(
            company=company, source=FinancialStatement.Source.PARTNER, supplied_by_client=actor.client, **values
        )
    after = {"siren": siren, "requested_amount": str(requested_amount), "bank_tokens": len(bank_tokens)}
    if statements:
        after["financial_statements"] = [_statement_audit(values) for values in statements]
    audit_record(actor=actor, action="dossier.created", obj=dossier, after=after)
    transaction.on_commit(lambda: score_dossier.delay(str(dossier.pk)))
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
    from .tasks import score_dossier

    individual, _ = Individual.objects.get_or_create(partner=partner, reference=reference)
    dossier = Dossier.objects.create(
        partner=partner,
        individual=individual,
        segment="b2c",
        requested_amount=requested_amount,
        bank_tokens_json=json.dumps(bank_tokens),
    )
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
    transaction.on_commit(lambda: score_dossier.delay(str(dossier.pk)))
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


@transaction.atomic
def outcome_record(*, dossier: Dossier, status: str, occurred_on: date, actor: Actor) -> Outcome:
    """Record whether the credit was repaid or defaulted: the label the next model learns from."""
    if status not in Outcome.Status.values:
        raise ValidationError({"status": "An outcome is repaid or defaulted."})
    if occurred_on > timezone.localdate():
        raise ValidationError({"occurred_on": "The outcome date cannot be in the future."})
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if occurred_on < timezone.localtime(dossier.created_at).date():
        raise ValidationError({"occurred_on": "The outcome date cannot precede the application."})
    if Outcome.objects.filter(dossier=dossier).exists():
        raise ValidationError("An outcome is already recorded for this dossier.")
    outcome = Outcome.objects.create(dossier=dossier, status=status, occurred_on=occurred_on, recorded_by=actor.user)
    audit_record(
        actor=actor,
        action="dossier.outcome_recorded",
        obj=dossier,
        after={"outcome": status, "occurred_on": occurred_on.isoformat()},
    )
    return outcome


@transaction.atomic
def statement_record(*, dossier: Dossier, values: dict[str, Any], user: AbstractBaseUser) -> FinancialStatement:
    """Record a financial statement an analyst read from the applicant's accounts, for the dossier's company."""
    if not dossier.company_id:
        raise ValidationError("Financial statements belong to a company's dossier.")
    fiscal_year_end = values.get("fiscal_year_end")
    if fiscal_year_end is None:
        raise ValidationError({"fiscal_year_end": "Give the last day of the fiscal year."})
    if fiscal_year_end > timezone.localdate():
        raise ValidationError({"fiscal_year_end": "A fiscal year still running has no statement yet."})
    figures = {name: values[name] for name in STATEMENT_FIGURES if values.get(name) is not None}
    if not figures:
        raise ValidationError("Give at least one figure.")
    for name in ("revenue", "total_assets"):
        if figures.get(name, 0) < 0:
            raise ValidationError({name: "Cannot be negative."})
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


def stalled_dossier_ids() -> list[Any]:
    cutoff = timezone.now() - timedelta(seconds=settings.SCORING_STALL_SECONDS)
    return list(
        Dossier.objects.filter(status=Dossier.Status.PENDING, updated_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
