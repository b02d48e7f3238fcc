"""Outcomes: what became of a granted credit, the label the next model learns from.

One service per act, shared by the back-office forms, the partner API and the CSV import:
``outcome_record`` (a new outcome, or the write-off of a default) and ``outcome_correct``
(any field changed, with a reason). Both apply the same checks — a scored dossier whose decision
in force granted credit, a date neither before that decision nor in the future, the write-off
amount rules — write an audit row and send the partner an event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.services import events_publish
from riskoffice.audit import Actor, audit_record
from riskoffice.models import AuditEvent

from .models import Decision, Dossier, Outcome, OutcomeCorrection, Override

OUTCOME_AMOUNTS = ("granted_amount", "outstanding_amount", "written_off_amount")
GRANTED = (Decision.ACCEPT, Decision.GUARANTEE)
# Where an outcome came from, as the partner's event says it.
Source = Literal["back-office", "api", "import"]


class OutcomeAlreadyRecorded(ValidationError):
    """The dossier has its outcome; only a default may still be written off (anything else is a correction)."""

    problem_status, problem_slug, problem_title = 409, "outcome-already-recorded", "Outcome already recorded"


class CreditNotGranted(ValidationError):
    """An outcome labels a credit that was granted: a refused dossier has no repayment to learn from."""

    problem_status, problem_slug, problem_title = 409, "credit-not-granted", "Credit not granted"


class DossierNotScored(ValidationError):
    """Outcomes label scored dossiers: one still pending or failed has nothing to learn from."""

    problem_status, problem_slug, problem_title = 409, "dossier-not-scored", "Dossier not scored"


class NoOutcomeToCorrect(ValidationError):
    """A correction changes a recorded outcome; a dossier without one gets a new outcome instead."""

    problem_status, problem_slug, problem_title = 409, "no-outcome-to-correct", "No outcome to correct"


@transaction.atomic
def outcome_record(
    *,
    dossier: Dossier,
    status: str,
    occurred_on: date,
    actor: Actor,
    amounts: dict[str, Decimal | None] | None = None,
    source: Source | None = None,
) -> tuple[Outcome, bool]:
    """Record what became of the credit, the label the next model learns from; returns it and whether it is new.

    One outcome per dossier, except that a default may later be written off: that updates the
    outcome (its date becomes the write-off's, the default stays in the audit trail). Any other
    change is a correction (``outcome_correct``), an act of its own with a reason.
    ``amounts`` may give granted_amount, outstanding_amount and written_off_amount (euros, >= 0).
    ``source`` names the door for the partner's event; by default the API for a client, else the back-office.
    """
    amounts = {name: value for name, value in (amounts or {}).items() if value is not None}
    _outcome_check(status, occurred_on, amounts)
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    _granted_check(dossier, occurred_on)
    outcome = Outcome.objects.filter(dossier=dossier).first()
    if outcome is not None:
        outcome = _outcome_write_off(outcome, status=status, occurred_on=occurred_on, amounts=amounts, actor=actor)
        _outcome_event(dossier, outcome, "outcome.recorded", source or _source_of(actor))
        return outcome, False
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
    _outcome_event(dossier, outcome, "outcome.recorded", source or _source_of(actor))
    return outcome, True


@transaction.atomic
def outcome_correct(
    *,
    dossier: Dossier,
    status: str,
    occurred_on: date,
    amounts: dict[str, Decimal | None],
    reason: str,
    actor: Actor,
    source: Source | None = None,
) -> Outcome:
    """Correct a recorded outcome, for a stated reason: audited with what it was, what it is and why.

    Any field may change; the result must pass the checks a new outcome passes. ``amounts`` names
    the amounts to set (None clears one); an amount it does not name keeps its recorded value.
    A correction that changes nothing is refused, so the trail never holds an empty one.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("A correction needs a reason.")})
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    outcome = Outcome.objects.filter(dossier=dossier).first()
    if outcome is None:
        raise NoOutcomeToCorrect(_("This dossier has no outcome to correct: record one instead."))
    unknown = sorted(set(amounts) - set(OUTCOME_AMOUNTS))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, _("Unknown amount.")))
    current = {name: getattr(outcome, name) for name in OUTCOME_AMOUNTS}
    corrected = {**current, **amounts}
    given = {name: value for name, value in corrected.items() if value is not None}
    _outcome_check(status, occurred_on, given)
    _granted_check(dossier, occurred_on)
    before = _outcome_audit(outcome.status, outcome.occurred_on, current)
    after = _outcome_audit(status, occurred_on, corrected)
    if before == after:
        raise ValidationError(_("Nothing changed: the correction states the outcome as it is recorded."))
    outcome.status = status
    outcome.occurred_on = occurred_on
    for name, value in corrected.items():
        setattr(outcome, name, value)
    outcome.save(update_fields=["status", "occurred_on", *OUTCOME_AMOUNTS, "updated_at"])
    correction = OutcomeCorrection.objects.create(outcome=outcome, reason=reason)
    # The reason stays on the correction, encrypted: the trail names it by id (docs/security.md).
    audit_record(
        actor=actor,
        action="dossier.outcome_corrected",
        obj=dossier,
        before=before,
        after={**after, "correction_id": correction.pk},
    )
    _outcome_event(dossier, outcome, "outcome.corrected", source or _source_of(actor))
    return outcome


def _granted_check(dossier: Dossier, occurred_on: date) -> None:
    """Refuse unless the dossier is scored and its decision in force granted credit on or before ``occurred_on``."""
    if dossier.status != Dossier.Status.SCORED:
        raise DossierNotScored(_("Only a scored dossier can have an outcome."))
    if dossier.decision not in GRANTED:
        raise CreditNotGranted(
            _(
                "The decision in force is %(decision)s: no credit was granted, "
                "so there is no repayment or default to record."
            )
            % {"decision": str(dossier.get_decision_display()).lower()}
        )
    decided_on = decision_date(dossier)
    if occurred_on < decided_on:
        raise ValidationError(
            {
                "occurred_on": _("The outcome date cannot precede the decision in force (%(date)s).")
                % {"date": decided_on.isoformat()}
            }
        )


def decision_date(dossier: Dossier) -> date:
    """The day the decision in force was taken: the override in force's, else the latest score's.

    An override awaiting approval (four eyes) or rejected is not in force; an approved one took
    effect when it was approved.
    """
    if dossier.decision_overridden:
        override = (
            dossier.overrides.filter(status__in=[Override.Status.FINAL, Override.Status.APPROVED])
            .order_by("-created_at")
            .values("created_at", "reviewed_at")
            .first()
        )
        if override is not None:
            return timezone.localtime(override["reviewed_at"] or override["created_at"]).date()
    scored = dossier.scores.order_by("-created_at").values_list("created_at", flat=True).first()
    return timezone.localtime(scored or dossier.created_at).date()


def _outcome_check(status: str, occurred_on: date, amounts: dict[str, Decimal]) -> None:
    errors: dict[str, str] = {}
    if status not in Outcome.Status.values:
        errors["status"] = _("An outcome is repaid, defaulted or written off.")
    if occurred_on > timezone.localdate():
        errors["occurred_on"] = _("The outcome date cannot be in the future.")
    for name in set(amounts) - set(OUTCOME_AMOUNTS):
        errors[name] = _("Unknown amount.")
    for name, value in amounts.items():
        if name in OUTCOME_AMOUNTS and value < 0:
            errors[name] = _("Amounts cannot be negative.")
    if status == Outcome.Status.WRITTEN_OFF and "written_off_amount" not in amounts:
        errors["written_off_amount"] = _("A write-off states the amount written off.")
    elif status != Outcome.Status.WRITTEN_OFF and "written_off_amount" in amounts:
        errors["written_off_amount"] = _("Only a write-off states an amount written off.")
    if errors:
        raise ValidationError(errors)


def _outcome_write_off(
    outcome: Outcome, *, status: str, occurred_on: date, amounts: dict[str, Decimal], actor: Actor
) -> Outcome:
    """A defaulted credit written off: the one change a new report may make, audited with what it replaced."""
    if outcome.status != Outcome.Status.DEFAULTED or status != Outcome.Status.WRITTEN_OFF:
        raise OutcomeAlreadyRecorded(_("An outcome is already recorded for this dossier."))
    if occurred_on < outcome.occurred_on:
        raise ValidationError({"occurred_on": _("The write-off cannot precede the default.")})
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


def _outcome_audit(status: str, occurred_on: date, amounts: dict[str, Decimal | None]) -> dict[str, str]:
    return {"outcome": status, "occurred_on": occurred_on.isoformat(), **_amounts_audit(amounts)}


def _source_of(actor: Actor) -> Source:
    return "api" if actor.client is not None else "back-office"


def _outcome_event(dossier: Dossier, outcome: Outcome, event_type: str, source: Source) -> None:
    """The partner hears of it in this transaction (outbox); a dossier from the historical book has no partner."""
    if dossier.partner_id is None:
        return
    payload = {
        "id": str(dossier.pk),
        "status": outcome.status,
        "occurred_on": outcome.occurred_on.isoformat(),
        **{name: _amount_text(getattr(outcome, name)) for name in OUTCOME_AMOUNTS},
        "source": source,
    }
    events_publish([(dossier.partner_id, event_type, payload)])


def _amount_text(value: Decimal | None) -> str | None:
    # As the API's outcome representation writes amounts: a string with two decimals, or null.
    return None if value is None else f"{Decimal(value):.2f}"


# --- reads for the dossier page ------------------------------------------------------------------


def outcome_corrections(history: Iterable[AuditEvent]) -> list[dict[str, Any]]:
    """The corrections of a dossier's outcome among its audit events: when, by whom, why, and what changed."""
    labels = {
        "outcome": _("status"),
        "occurred_on": _("date"),
        "granted_amount": _("amount granted"),
        "outstanding_amount": _("amount outstanding"),
        "written_off_amount": _("amount written off"),
    }
    statuses = dict(Outcome.Status.choices)
    events = [event for event in history if event.action == "dossier.outcome_corrected"]
    reasons = correction_reasons(events)
    corrections = []
    for event in events:
        before, after = event.before or {}, event.after or {}
        changes = []
        for name, label in labels.items():
            was, now = before.get(name), after.get(name)
            if was != now:
                if name == "outcome":
                    was, now = statuses.get(was, was), statuses.get(now, now)
                changes.append({"field": label, "was": was or "—", "now": now or "—"})
        corrections.append(
            {"at": event.at, "by": event.actor_label, "reason": reasons.get(event.pk, ""), "changes": changes}
        )
    return corrections


def correction_reasons(events: Iterable[AuditEvent]) -> dict[int, str]:
    """The reason of each ``dossier.outcome_corrected`` event, by event id, read from its correction in one query."""
    ids = {event.pk: (event.after or {}).get("correction_id") for event in events}
    texts = dict(OutcomeCorrection.objects.filter(pk__in={i for i in ids.values() if i}).values_list("pk", "reason"))
    return {event_id: texts.get(correction_id, "") for event_id, correction_id in ids.items()}
