"""Negative events: reported by partners (``POST /api/v1/events``), found in BODACC, or recorded by analysts."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dossiers.identifiers import vat_for_siren
from dossiers.models import Company, Individual
from riskoffice.audit import Actor, audit_record
from riskoffice.models import ApiClient
from riskoffice.roles import CAN_DECIDE, has_any_role

from .models import NegativeEvent
from .monitoring import negative_event_announce
from .selectors import negative_events_reported_by

# --- negative events partners report ------------------------------------------------------------

Kind = NegativeEvent.Kind
PARTNER_EVENT_KINDS = (Kind.INSOLVENCY_PROCEEDING, Kind.PAYMENT_DELAY, Kind.SEPA_INCIDENT, Kind.DEBT_COLLECTION)
# What makes two reports of one event id the same report.
EVENT_CONTENT = ("company_id", "individual_id", "kind", "occurred_on", "amount", "days_late", "reason_code", "details")


class EventIdReused(ValidationError):
    """The client already reported this event id with other content."""

    problem_status, problem_slug, problem_title = 409, "event-id-reused", "Event id reused"


@transaction.atomic
def negative_event_report(
    *,
    client: ApiClient,
    event_id: str,
    kind: str,
    occurred_on: date,
    siren: str = "",
    reference: str = "",
    amount: Decimal | None = None,
    days_late: int | None = None,
    reason_code: str = "",
    details: dict[str, Any] | None = None,
) -> tuple[NegativeEvent, bool]:
    """Store a negative event a partner reports about a company (``siren``) or its individual (``reference``).

    Returns the event and whether it is new: the same ``event_id`` again from the same client
    with the same content is the stored event (a retry), with other content ``EventIdReused``.
    Two concurrent reports of one id meet the database's unique constraint; the loser reads the winner's.
    """
    _event_check(event_id, kind, occurred_on, siren, reference, amount, days_late, reason_code)
    values = {
        **_event_subject(client, siren=siren, reference=reference),
        "kind": kind,
        "occurred_on": occurred_on,
        "amount": amount,
        "days_late": days_late,
        "reason_code": reason_code,
        "details": details or {},
    }
    stored = negative_events_reported_by(client).filter(partner_event_id=event_id).first()
    if stored is not None:
        return _event_same_or_conflict(stored, values), False
    try:
        with transaction.atomic():  # a savepoint: the transaction stays usable after a duplicate
            event = NegativeEvent.objects.create(
                **values, source=f"partner:{client.partner_id}", reported_by=client, partner_event_id=event_id
            )
    except IntegrityError:
        stored = negative_events_reported_by(client).filter(partner_event_id=event_id).first()
        if stored is None:
            raise
        return _event_same_or_conflict(stored, values), False
    audit_record(actor=Actor(client=client), action="negative_event.reported", obj=event, after=_event_audit(event))
    negative_event_announce(event=event)  # only a new event: a retry of the same id alerts nobody twice
    return event, True


# --- negative events analysts record (the company page, alerts.views) ----------------------------------

ANALYST_EVENT_KINDS = (*PARTNER_EVENT_KINDS, Kind.ACCOUNTS_PUBLISHED)


@transaction.atomic
def negative_event_record(
    *,
    user: AbstractBaseUser,
    company: Company,
    kind: str,
    occurred_on: date,
    amount: Decimal | None = None,
    days_late: int | None = None,
    reason_code: str = "",
    note: str = "",
) -> NegativeEvent:
    """An analyst records a negative event on a company: audited, announced (alert, event, re-score).

    Visible to every partner (source "analyst"), unlike a partner's report; the note stays internal.
    Raises ValidationError keyed by field.
    """
    # Analysts read these in the back-office: in their language.
    if not has_any_role(user, CAN_DECIDE):
        raise PermissionDenied(_("Only analysts and senior analysts record negative events."))
    errors = _event_errors(ANALYST_EVENT_KINDS, kind, occurred_on, amount, days_late, reason_code)
    if occurred_on is None:
        errors["occurred_on"] = _("Give the date of the event.")
    if "days_late" not in errors and days_late is not None and not 1 <= days_late <= 3650:
        errors["days_late"] = _("Days late run from 1 to 3650.")
    if "reason_code" not in errors and reason_code and not re.fullmatch(r"[A-Z0-9]{4}", reason_code.upper()):
        errors["reason_code"] = _("A SEPA reason code is four letters or digits, e.g. AM04.")
    if len(note) > 1000:
        errors["note"] = _("Keep the note under 1000 characters.")
    if errors:
        raise ValidationError(errors)
    event = NegativeEvent.objects.create(
        company=company,
        kind=kind,
        occurred_on=occurred_on,
        amount=amount,
        days_late=days_late,
        reason_code=reason_code.upper(),
        details={"note": note} if note.strip() else {},
        source="analyst",
        recorded_by=user,
    )
    audit_record(actor=Actor(user=user), action="negative_event.recorded", obj=event, after=_event_audit(event))
    negative_event_announce(event=event)
    return event


def _event_check(
    event_id: str,
    kind: str,
    occurred_on: date,
    siren: str,
    reference: str,
    amount: Decimal | None,
    days_late: int | None,
    reason_code: str,
) -> None:
    errors = _event_errors(PARTNER_EVENT_KINDS, kind, occurred_on, amount, days_late, reason_code)
    if not event_id or len(event_id) > 100:
        errors["event_id"] = "Give your own id for the event, 1 to 100 characters."
    if bool(siren) == bool(reference):
        errors["subject"] = "The event is about a company (SIREN) or an individual (reference), exactly one."
    if errors:
        raise ValidationError(errors)


def _event_errors(
    kinds: tuple[str, ...],
    kind: str,
    occurred_on: date | None,
    amount: Decimal | None,
    days_late: int | None,
    reason_code: str,
) -> dict[str, str]:
    """What is wrong with an event's fields, however it came in. In the request's language: the partner API
    always answers in English (riskoffice.middleware.LocaleMiddleware), the back-office in the analyst's."""
    errors: dict[str, str] = {}
    if kind not in kinds:
        errors["kind"] = _("Choose one of: %(kinds)s.") % {"kinds": ", ".join(kinds)}
    if occurred_on is not None and occurred_on > timezone.localdate():
        errors["occurred_on"] = _("The event date cannot be in the future.")
    if amount is not None and amount < 0:
        errors["amount"] = _("The amount cannot be negative.")
    if days_late is not None and kind != Kind.PAYMENT_DELAY:
        errors["days_late"] = _("Only a payment delay has days late.")
    if reason_code and kind != Kind.SEPA_INCIDENT:
        errors["reason_code"] = _("Only a SEPA incident has a reason code.")
    return errors


def _event_subject(client: ApiClient, *, siren: str, reference: str) -> dict[str, Any]:
    """The company, shared by every partner, or the individual, known by the client's partner's reference."""
    if siren:
        company, _ = Company.objects.get_or_create(siren=siren, defaults={"vat": vat_for_siren(siren)})
        return {"company": company, "individual": None}
    individual, _ = Individual.objects.get_or_create_for_reference(client.partner_id, reference)
    return {"company": None, "individual": individual}


def _event_same_or_conflict(stored: NegativeEvent, values: dict[str, Any]) -> NegativeEvent:
    given = NegativeEvent(**values)
    differing = [name for name in EVENT_CONTENT if getattr(stored, name) != getattr(given, name)]
    if differing:
        names = ", ".join(name.removesuffix("_id") for name in differing)
        raise EventIdReused(
            f"Event id {stored.partner_event_id!r} was already reported with other content ({names}); "
            "report a different event under a new id."
        )
    return stored


def _event_audit(event: NegativeEvent) -> dict[str, Any]:
    return {
        "event_id": event.partner_event_id,
        "kind": event.kind,
        "occurred_on": event.occurred_on.isoformat(),
        "siren": event.company.siren if event.company_id else None,
        "individual_id": event.individual_id,  # never the reference itself: audit rows are not encrypted
        "amount": None if event.amount is None else str(event.amount),
        "days_late": event.days_late,
        "reason_code": event.reason_code,
        "details": event.details,
    }
