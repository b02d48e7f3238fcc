"""Negative events: reported by partners (``POST /api/v1/events``), found in BODACC, or recorded by analysts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from dossiers.identifiers import vat_for_siren
from dossiers.models import Company, Individual
from riskoffice.audit import Actor, audit_record
from riskoffice.models import ApiClient

from .models import NegativeEvent
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
    return event, True


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
    errors: dict[str, str] = {}
    if not event_id or len(event_id) > 100:
        errors["event_id"] = "Give your own id for the event, 1 to 100 characters."
    if kind not in PARTNER_EVENT_KINDS:
        errors["kind"] = f"Choose one of {', '.join(PARTNER_EVENT_KINDS)}."
    if occurred_on > timezone.localdate():
        errors["occurred_on"] = "The event date cannot be in the future."
    if bool(siren) == bool(reference):
        errors["subject"] = "The event is about a company (SIREN) or an individual (reference), exactly one."
    if amount is not None and amount < 0:
        errors["amount"] = "The amount cannot be negative."
    if days_late is not None and kind != Kind.PAYMENT_DELAY:
        errors["days_late"] = "Only a payment delay has days late."
    if reason_code and kind != Kind.SEPA_INCIDENT:
        errors["reason_code"] = "Only a SEPA incident has a reason code."
    if errors:
        raise ValidationError(errors)


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
