"""Overrides: an analyst replacing the decision in force, for a coded reason, with four eyes when exposure rises.

An override that raises exposure (``override_needs_approval`` says why) waits, ``pending``, for a
senior analyst other than its author: until then the decision in force does not change and the
partner is told nothing. Any other override is final at once. Each step leaves an audit row on the
dossier; an override that becomes final sends ``decision.overridden`` to the partner in the same
transaction, with codes only (no names, no free text).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from alerts.services import events_publish
from riskoffice.audit import Actor, audit_record
from riskoffice.roles import SENIOR_ANALYST, user_roles
from scoring.models import Score

from .models import Decision, Dossier, Override, OverrideReason

# Why an override waits for a second, senior analyst (Override.approval_reasons; docs/backoffice.md).
REFUSE_TO_GRANT = "refuse_to_grant"  # refuse or refer → accept or guarantee
ABOVE_RECOMMENDED_LIMIT = "above_recommended_limit"  # accept above the latest score's limit, or with none
ABOVE_AMOUNT = "above_amount"  # a requested amount above settings.OVERRIDE_APPROVAL_AMOUNT
KNOCKOUT = "knockout"  # the latest score fired a knock-out rule: granting is always a policy exception
APPROVAL_REASON_LABELS = {
    REFUSE_TO_GRANT: gettext_lazy("grants credit the policy refused or referred"),
    ABOVE_RECOMMENDED_LIMIT: gettext_lazy("accepts above the recommended limit, or with no limit"),
    ABOVE_AMOUNT: gettext_lazy("the amount is above the approval threshold"),
    KNOCKOUT: gettext_lazy("a knock-out rule fired"),
}

# The decisions an analyst may put in force; "refer" is the policy's way of asking for one.
OVERRIDE_DECISIONS = (Decision.ACCEPT, Decision.GUARANTEE, Decision.REFUSE)
# Exposure each decision grants, to tell an override that raises it from one that lowers it.
_EXPOSURE = {Decision.REFUSE: 0, Decision.REFER: 0, Decision.GUARANTEE: 1, Decision.ACCEPT: 2}


def reason_label(reason: OverrideReason | None) -> str:
    """A reason code's label in the active language (French unless English is asked for)."""
    if reason is None:
        return ""
    return reason.label_en if (translation.get_language() or "").startswith("en") else reason.label_fr


def override_needs_approval(dossier: Dossier, score: Score | None, to_decision: str) -> list[str]:
    """Why overriding the dossier's decision in force to ``to_decision`` needs four eyes; [] when final at once.

    Only an override that raises exposure can need them: one that lowers it (accept → guarantee or
    refuse) or keeps none granted (refer → refuse) is final at once.
    """
    from_decision = dossier.decision
    if _EXPOSURE.get(to_decision, 0) <= _EXPOSURE.get(from_decision, 0):
        return []
    reasons = []
    if from_decision not in (Decision.ACCEPT, Decision.GUARANTEE):
        reasons.append(REFUSE_TO_GRANT)
    limit = score.recommended_limit if score is not None else None
    if to_decision == Decision.ACCEPT and (limit is None or dossier.requested_amount > limit):
        reasons.append(ABOVE_RECOMMENDED_LIMIT)
    if dossier.requested_amount > Decimal(settings.OVERRIDE_APPROVAL_AMOUNT):
        reasons.append(ABOVE_AMOUNT)
    if score is not None and any(rule.startswith("knockout:") for rule in score.rules_fired):
        reasons.append(KNOCKOUT)
    return reasons


@transaction.atomic
def dossier_override(
    *, dossier: Dossier, decision: str, reason_code: OverrideReason | str | None, reason: str, user: AbstractBaseUser
) -> Override:
    """Ask to replace the decision in force, for a coded reason and a text: final at once, or pending four eyes."""
    reason = (reason or "").strip()
    code = _active_reason(reason_code)
    errors = {}
    if decision not in OVERRIDE_DECISIONS:
        errors["decision"] = _("Choose accept, guarantee or refuse.")
    if code is None:
        errors["reason_code"] = _("Choose a reason code from the list.")
    if not reason:
        errors["reason"] = _("An override needs a reason.")
    if errors:
        raise ValidationError(errors)
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.status != Dossier.Status.SCORED:
        raise ValidationError(_("Only a scored dossier can be overridden."))
    if decision == dossier.decision:
        raise ValidationError(
            {
                "decision": _("The decision is already %(decision)s.")
                % {"decision": dossier.get_decision_display().lower()}
            }
        )
    if dossier.overrides.filter(status=Override.Status.PENDING).exists():
        raise ValidationError(
            _("An override of this dossier already awaits approval: a senior analyst approves or rejects it first.")
        )
    score = (
        Score.objects.filter(dossier=dossier).order_by("-created_at").only("recommended_limit", "rules_fired").first()
    )
    approval_reasons = override_needs_approval(dossier, score, decision)
    override = Override.objects.create(
        dossier=dossier,
        from_decision=dossier.decision,
        to_decision=decision,
        reason_code=code,
        reason=reason,
        decided_by=user,
        status=Override.Status.PENDING if approval_reasons else Override.Status.FINAL,
        approval_reasons=approval_reasons,
    )
    if approval_reasons:
        audit_record(
            actor=Actor(user=user),
            action="dossier.override_requested",
            obj=dossier,
            before={"decision": dossier.decision, "overridden": dossier.decision_overridden},
            after={
                "to_decision": decision,
                "reason_code": code.code,
                "approval_reasons": approval_reasons,
                "override_id": override.pk,
            },
        )
    else:
        _override_put_in_force(dossier, override, user=user, action="dossier.overridden")
    return override


@transaction.atomic
def override_approve(*, override: Override, note: str, user: AbstractBaseUser) -> Override:
    """A second, senior analyst approves a pending override: it becomes the decision in force."""
    override, dossier, note = _override_review(override, note, user)
    if dossier.decision != override.from_decision:
        raise ValidationError(
            _(
                "The decision in force changed since this override was asked for (now %(decision)s): "
                "reject it, and ask again if it is still needed."
            )
            % {"decision": dossier.get_decision_display().lower()}
        )
    _override_close(override, status=Override.Status.APPROVED, note=note, user=user)
    _override_put_in_force(dossier, override, user=user, action="dossier.override_approved")
    return override


@transaction.atomic
def override_reject(*, override: Override, note: str, user: AbstractBaseUser) -> Override:
    """A second, senior analyst rejects a pending override: the decision in force stays."""
    override, dossier, note = _override_review(override, note, user)
    _override_close(override, status=Override.Status.REJECTED, note=note, user=user)
    audit_record(
        actor=Actor(user=user),
        action="dossier.override_rejected",
        obj=dossier,
        before={"override_id": override.pk, "status": Override.Status.PENDING, "decision": dossier.decision},
        after={
            "override_id": override.pk,
            "status": override.status,
            "decision": dossier.decision,
            "rejected_decision": override.to_decision,
        },
    )
    return override


def override_can_review(user: AbstractBaseUser, override: Override) -> bool:
    """Whether ``user`` may approve or reject ``override``: a senior analyst other than its author."""
    return (
        override.status == Override.Status.PENDING
        and SENIOR_ANALYST in user_roles(user)
        and override.decided_by_id != user.pk
    )


def overrides_listed(dossier: Dossier) -> list[Override]:
    """A dossier's overrides, newest first, with their people and labels: one query, for its page."""
    overrides = list(dossier.overrides.select_related("decided_by", "reviewed_by", "reason_code"))
    for override in overrides:
        override.reason_label = reason_label(override.reason_code)
        override.approval_reason_labels = [APPROVAL_REASON_LABELS.get(c, c) for c in override.approval_reasons]
    return overrides


def _active_reason(reason_code: OverrideReason | str | None) -> OverrideReason | None:
    if isinstance(reason_code, OverrideReason):
        return reason_code if reason_code.is_active else None
    if not reason_code:
        return None
    return OverrideReason.objects.filter(code=reason_code, is_active=True).first()


def _override_review(override: Override, note: str, user: AbstractBaseUser) -> tuple[Override, Dossier, str]:
    """The pending override, re-read under the dossier's lock, once the reviewer and the note are checked."""
    if SENIOR_ANALYST not in user_roles(user):
        raise PermissionDenied(_("Only a senior analyst approves or rejects an override."))
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Approving or rejecting an override takes a note.")})
    # Every override write locks the dossier first: one order of locks, no lost update.
    dossier = Dossier.objects.select_for_update().get(pk=override.dossier_id)
    override = Override.objects.select_related("reason_code").get(pk=override.pk)
    if override.status != Override.Status.PENDING:
        raise ValidationError(
            _("This override no longer awaits approval (%(status)s).") % {"status": override.get_status_display()}
        )
    if override.decided_by_id == user.pk:
        raise ValidationError(
            _("You asked for this override: another senior analyst approves or rejects it (four eyes).")
        )
    return override, dossier, note


def _override_close(override: Override, *, status: str, note: str, user: AbstractBaseUser) -> None:
    override.status = status
    override.reviewed_by = user
    override.reviewed_at = timezone.now()
    override.review_note = note
    override.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])


def _override_put_in_force(dossier: Dossier, override: Override, *, user: AbstractBaseUser, action: str) -> None:
    """The override's decision in force, audited as ``action``, and the partner told (codes only, no names)."""
    before = {"decision": dossier.decision, "overridden": dossier.decision_overridden}
    dossier.decision = override.to_decision
    dossier.decision_overridden = True
    dossier.save(update_fields=["decision", "decision_overridden", "updated_at"])
    four_eyes = override.status == Override.Status.APPROVED
    after = {
        "decision": dossier.decision,
        "overridden": True,
        "reason_code": override.reason_code.code,
        "override_id": override.pk,  # the texts (reason, note) are on the override, encrypted: never copied here
    }
    if four_eyes:
        after |= {"approval_reasons": override.approval_reasons}
    audit_record(actor=Actor(user=user), action=action, obj=dossier, before=before, after=after)
    if dossier.partner_id:
        overridden_at = override.reviewed_at if four_eyes else override.created_at
        events_publish(
            [
                (
                    dossier.partner_id,
                    "decision.overridden",
                    {
                        "id": str(dossier.pk),
                        "decision": dossier.decision,
                        "previous_decision": override.from_decision,
                        "reason_code": override.reason_code.code,
                        "overridden_at": overridden_at.isoformat(),
                        "four_eyes": four_eyes,
                        "approved_by_role": SENIOR_ANALYST if four_eyes else None,
                    },
                )
            ]
        )
