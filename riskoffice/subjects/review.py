"""Human review of an automated decision (GDPR Art. 22(3)): asked for, tracked against its deadline, completed.

A person (through their partner's API, or by phone or mail to an analyst) may ask that a human review the
decision the policy took on their dossier, and say what they contest. While that request is open the
dossier's decision is not final. An analyst completes it either by confirming the decision (a human
looked, with a note) or, once an override made after the request is final, by recording it as changed:
the override flow (reason codes, four eyes) stays the one way a human changes a decision.

One open review per dossier is a database constraint (``subjectrequest_one_open_review_per_dossier``):
a second request while one is open joins it. Each step leaves an audit row on the dossier and sends the
partner an event (``human_review.requested``, ``human_review.completed``) in the same transaction, with
ids, dates and codes only: the person's statement and the analyst's note never leave the back-office.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.services import events_publish
from dossiers.models import Dossier, Override
from riskoffice.audit import Actor, audit_record
from riskoffice.models import ApiClient
from riskoffice.roles import ANALYST, CAN_DECIDE, SENIOR_ANALYST, user_roles

from .models import SubjectRequest

# The person's own words: long enough for a letter's substance, short enough to read on the dossier's page.
STATEMENT_MAX_LENGTH = 4000
NOTE_MAX_LENGTH = 4000
# Art. 12(3): answered within one month of receipt.
REVIEW_DEADLINE = relativedelta(months=1)
CONFIRMED, CHANGED = "confirmed", "changed"
Outcome = Literal["confirmed", "changed"]
# An override that put a decision in force: at once (final) or after a second analyst's approval.
OVERRIDE_IN_FORCE = (Override.Status.FINAL, Override.Status.APPROVED)
HUMAN_REVIEW = SubjectRequest.Kind.HUMAN_REVIEW


class DossierNotDecided(ValidationError):
    """Only a scored dossier carries an automated decision to review."""

    problem_status, problem_slug, problem_title = 409, "dossier-not-scored", "Dossier not scored"


# --- reads ---------------------------------------------------------------------------------------------------


def human_reviews_prefetch() -> Prefetch:
    """A dossier's human reviews, newest first, as ``dossier.human_reviews_newest_first``: one query per list."""
    reviews = (
        SubjectRequest.objects.filter(kind=HUMAN_REVIEW).select_related("completed_by").order_by("-received_at", "-pk")
    )
    return Prefetch("subject_requests", queryset=reviews, to_attr="human_reviews_newest_first")


def latest_review(dossier: Dossier) -> SubjectRequest | None:
    """The dossier's open review, else its latest completed one, else None (read from the prefetch when present)."""
    reviews = getattr(dossier, "human_reviews_newest_first", None)
    if reviews is None:
        reviews = list(human_reviews_prefetch().queryset.filter(dossier_id=dossier.pk))
        dossier.human_reviews_newest_first = reviews  # read once per object, as the prefetch would
    return next((r for r in reviews if r.status == SubjectRequest.Status.OPEN), reviews[0] if reviews else None)


def open_review(dossier: Dossier) -> SubjectRequest | None:
    review = latest_review(dossier)
    return review if review is not None and review.status == SubjectRequest.Status.OPEN else None


def dossier_decision_final(dossier: Dossier) -> bool:
    """Whether the dossier's decision is final: scored, decided, and no human review open on it."""
    return dossier.status == Dossier.Status.SCORED and bool(dossier.decision) and open_review(dossier) is None


def review_is_overdue(review: SubjectRequest, *, now: datetime | None = None) -> bool:
    return review.status == SubjectRequest.Status.OPEN and review.due_at < (now or timezone.now())


def review_representation(review: SubjectRequest | None) -> dict[str, Any] | None:
    """What the partner sees of a review: dates, status and outcome; never the statement nor the note."""
    if review is None:
        return None
    return {
        "id": review.pk,
        "status": review.status,
        "requested_at": review.received_at.isoformat(),
        "due_at": review.due_at.isoformat(),
        "completed_at": review.completed_at.isoformat() if review.completed_at else None,
        "outcome": review.resolution.get("outcome") if review.resolution else None,
    }


def final_override_since(dossier: Dossier, review: SubjectRequest) -> Override | None:
    """The newest override put in force after the review was asked for: what a "changed" review points to."""
    return (
        Override.objects.filter(dossier=dossier, status__in=OVERRIDE_IN_FORCE, created_at__gte=review.received_at)
        .order_by("-created_at", "-pk")
        .first()
    )


# --- writes --------------------------------------------------------------------------------------------------


@transaction.atomic
def review_request(
    dossier: Dossier,
    *,
    client: ApiClient | None = None,
    user: AbstractBaseUser | None = None,
    statement: str = "",
) -> tuple[SubjectRequest, bool]:
    """Ask for a human review of the dossier's decision; returns the request and whether it is new.

    ``client`` (the partner's API client) or ``user`` (an analyst recording a request made by phone or
    mail) says who received it. A request while one is open joins it: the open one is returned, the
    new statement added to it.
    """
    if (client is None) == (user is None):
        raise ValueError("Give the API client or the back-office user who received the request, not both.")
    if user is not None and not user_roles(user) & CAN_DECIDE:
        raise PermissionDenied(_("Only an analyst records a request for human review."))
    statement = (statement or "").strip()
    if len(statement) > STATEMENT_MAX_LENGTH:
        raise ValidationError(
            {"statement": _("At most %(max)d characters.") % {"max": STATEMENT_MAX_LENGTH}}, code="max_length"
        )
    # The dossier's lock first, as every decision-changing write takes it: two requests at once make one review.
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.status != Dossier.Status.SCORED or not dossier.decision:
        raise DossierNotDecided(_("Only a scored dossier has a decision to review."))
    actor = Actor(user=user, client=client)
    existing = SubjectRequest.objects.filter(dossier=dossier, kind=HUMAN_REVIEW, status=SubjectRequest.Status.OPEN)
    review = existing.first()
    if review is not None:
        if statement and statement not in review.statement:
            review.statement = f"{review.statement}\n\n{statement}" if review.statement else statement
            review.save(update_fields=["statement"])
        audit_record(
            actor=actor,
            action="dossier.human_review_joined",
            obj=dossier,
            after={"request_id": review.pk, "statement_given": bool(statement)},
        )
        return review, False
    received_at = timezone.now()
    review = SubjectRequest.objects.create(
        kind=HUMAN_REVIEW,
        channel=SubjectRequest.Channel.PARTNER_API if client is not None else SubjectRequest.Channel.BACK_OFFICE,
        dossier=dossier,
        company_id=dossier.company_id,
        individual_id=dossier.individual_id,
        requested_by_client=client,
        requested_by_user=user,
        statement=statement,
        received_at=received_at,
        due_at=received_at + REVIEW_DEADLINE,
    )
    audit_record(
        actor=actor,
        action="dossier.human_review_requested",
        obj=dossier,
        before={"decision": dossier.decision, "decision_final": True},
        after={
            "decision": dossier.decision,
            "decision_final": False,
            "request_id": review.pk,
            "channel": review.channel,
            "due_at": review.due_at.isoformat(),
            # The statement is the person's: it stays on the request (which erasure can reach), not in the trail.
            "statement_given": bool(statement),
        },
    )
    if dossier.partner_id:
        events_publish(
            [
                (
                    dossier.partner_id,
                    "human_review.requested",
                    {
                        "id": str(dossier.pk),
                        "request_id": review.pk,
                        "channel": review.channel,
                        "decision": dossier.decision,
                        "requested_at": review.received_at.isoformat(),
                        "due_at": review.due_at.isoformat(),
                    },
                )
            ]
        )
    return review, True


@transaction.atomic
def review_complete(request: SubjectRequest, *, user: AbstractBaseUser, outcome: Outcome, note: str) -> SubjectRequest:
    """A human's answer to the review: the decision ``confirmed``, or ``changed`` by an override made since.

    "changed" needs an override put in force (final, or approved by a second analyst) after the request
    was received; "confirmed" keeps the decision in force, and cannot be given while an override awaits
    approval. The note (the reasons a person is told) is required.
    """
    if not user_roles(user) & CAN_DECIDE:
        raise PermissionDenied(_("Only an analyst completes a human review."))
    note = (note or "").strip()
    errors = {}
    if outcome not in (CONFIRMED, CHANGED):
        errors["outcome"] = _("Choose confirmed or changed.")
    if not note:
        errors["note"] = _("Completing a review takes a note: what was looked at, and why the decision stands or not.")
    elif len(note) > NOTE_MAX_LENGTH:
        errors["note"] = _("At most %(max)d characters.") % {"max": NOTE_MAX_LENGTH}
    if errors:
        raise ValidationError(errors)
    dossier = Dossier.objects.select_for_update().get(pk=request.dossier_id)
    review = SubjectRequest.objects.get(pk=request.pk, kind=HUMAN_REVIEW)
    if review.status != SubjectRequest.Status.OPEN:
        raise ValidationError(_("This review is already completed."))
    override = None
    if outcome == CHANGED:
        override = final_override_since(dossier, review)
        if override is None:
            raise ValidationError(
                {
                    "outcome": _(
                        "No override was put in force since the review was asked for: override the decision "
                        "first (and, when it needs four eyes, have it approved), then record the review as changed."
                    )
                }
            )
    elif dossier.overrides.filter(status=Override.Status.PENDING).exists():
        raise ValidationError(
            {"outcome": _("An override of this dossier awaits approval: have it approved or rejected first.")}
        )
    now = timezone.now()
    resolution: dict[str, Any] = {"outcome": outcome, "decision": dossier.decision}
    if override is not None:
        resolution |= {"override_id": override.pk, "previous_decision": override.from_decision}
    review.status = SubjectRequest.Status.COMPLETED
    review.completed_at = now
    review.completed_by = user
    review.resolution = resolution
    review.resolution_note = note
    review.save(update_fields=["status", "completed_at", "completed_by", "resolution", "resolution_note"])
    audit_record(
        actor=Actor(user=user),
        action="dossier.human_review_completed",
        obj=dossier,
        before={"request_id": review.pk, "status": SubjectRequest.Status.OPEN, "decision_final": False},
        after={"request_id": review.pk, "status": review.status, "decision_final": True, **resolution, "note": note},
    )
    if dossier.partner_id:
        events_publish(
            [
                (
                    dossier.partner_id,
                    "human_review.completed",
                    {
                        "id": str(dossier.pk),
                        "request_id": review.pk,
                        "outcome": outcome,
                        "decision": dossier.decision,
                        "previous_decision": resolution.get("previous_decision", dossier.decision),
                        "requested_at": review.received_at.isoformat(),
                        "completed_at": now.isoformat(),
                        "reviewed_by_role": SENIOR_ANALYST if SENIOR_ANALYST in user_roles(user) else ANALYST,
                    },
                )
            ]
        )
    return review
