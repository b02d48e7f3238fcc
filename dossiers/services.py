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

from .identifiers import vat_for_siren
from .models import Company, Decision, Dossier, Outcome, Override


@transaction.atomic
def dossier_create(
    *, partner: Partner | None, siren: str, requested_amount: Decimal, bank_tokens: list[str], actor: Actor,
) -> Dossier:
    """Create a B2B dossier and enqueue its scoring once the transaction commits."""
    from .tasks import score_dossier

    company, _ = Company.objects.get_or_create(siren=siren, defaults={"vat": vat_for_siren(siren)})
    dossier = Dossier.objects.create(
        partner=partner, company=company, segment="b2b", requested_amount=requested_amount,
        bank_tokens_json=json.dumps(bank_tokens),
    )
    audit_record(actor=actor, action="dossier.created", obj=dossier,
                 after={"siren": siren, "requested_amount": str(requested_amount),
                        "bank_tokens": len(bank_tokens)})
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
    audit_record(actor=Actor(user=user), action="dossier.overridden", obj=dossier, before=before,
                 after={"decision": decision, "overridden": True, "reason": reason, "override_id": override.pk})
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
    audit_record(actor=actor, action="dossier.outcome_recorded", obj=dossier,
                 after={"outcome": status, "occurred_on": occurred_on.isoformat()})
    return outcome


def stalled_dossier_ids() -> list[Any]:
    cutoff = timezone.now() - timedelta(seconds=settings.SCORING_STALL_SECONDS)
    return list(
        Dossier.objects.filter(status=Dossier.Status.PENDING, updated_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:500]
    )
