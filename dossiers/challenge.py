"""Challenging a score and retrying a failed dossier: both put the dossier back to scoring for a new version.

An analyst who disputes the recommendation corrects its inputs — the requested
amount, a financial statement, data points read off a document — with a
justification and the document's reference (``dossier_challenge``). The dossier goes
back to pending, claimed by the request, which re-scores it at once
(``dossier_rescore``); the batch (``dossiers.batch``) stores the next score version
with trigger ``challenge`` and the challenge it answers. Earlier versions stay.

A failed dossier is put back to pending the same way (``dossier_retry``). It keeps
the reason it failed in ``status_detail`` until it is scored: that is how the batch
knows the score answers a retry.

Data points a challenge supplies are kept on it (``Challenge.feature_values``) and
read by every later scoring of the dossier (``scoring.sources.on_file``). An override
awaiting approval is withdrawn: it was about a score that is no longer in force.
"""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.services import events_publish
from riskoffice.audit import Actor, audit_record
from scoring.models import Score
from scoring.selectors import champion_for, policy_current
from scoring.sources.on_file import ANALYST_FIELDS, analyst_value_error, statements_on_file
from scoring.statements import statement_figures

from .batch import lease_until, scoring_wake_up
from .models import Challenge, Dossier, Override
from .selectors import latest_score
from .services import dossier_score_here, statement_add

logger = logging.getLogger(__name__)

# The names a challenge's ``corrected`` list uses besides feature names.
REQUESTED_AMOUNT = "requested_amount"
FINANCIAL_STATEMENT = "financial_statement"


@transaction.atomic
def dossier_challenge(
    *,
    dossier: Dossier,
    user: AbstractBaseUser,
    justification: str,
    source_reference: str,
    requested_amount: Decimal | None = None,
    statement: dict[str, Any] | None = None,
    feature_values: dict[str, Any] | None = None,
) -> Challenge:
    """Record a challenge's corrections and put the dossier back to pending, claimed for ``dossier_rescore``.

    ``statement``: ``fiscal_year_end`` and figures, as ``scoring.statements`` names them.
    ``feature_values``: data points by feature name (``scoring.sources.on_file.ANALYST_FIELDS``).
    Only what differs from the score in force counts as a correction; a challenge corrects something.
    """
    justification, source_reference = (justification or "").strip(), (source_reference or "").strip()
    errors: dict[str, str] = {}
    if not justification:
        errors["justification"] = _("A challenge needs a justification.")
    if not source_reference:
        errors["source_reference"] = _("Name the document the corrections come from.")
    if errors:
        raise ValidationError(errors)
    dossier = Dossier.objects.select_for_update(of=("self",)).select_related("company", "partner").get(pk=dossier.pk)
    if dossier.status != Dossier.Status.SCORED:
        raise ValidationError(
            _("Only a scored dossier can be challenged: a pending one is being scored, a failed one can be retried.")
        )
    score = latest_score(dossier)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    if requested_amount is not None and requested_amount != dossier.requested_amount:
        if requested_amount <= 0:
            raise ValidationError({REQUESTED_AMOUNT: _("The requested amount must be positive.")})
        before[REQUESTED_AMOUNT], after[REQUESTED_AMOUNT] = f"{dossier.requested_amount:.2f}", f"{requested_amount:.2f}"
        dossier.requested_amount = requested_amount
    if statement:
        before[FINANCIAL_STATEMENT], after[FINANCIAL_STATEMENT] = _statement_correct(dossier, statement, user)
    supplied = _feature_values_check(dossier, score, feature_values or {})
    for name, value in supplied.items():
        before[name] = score.snapshot.features.get(name) if score else None
        after[name] = value
    if not after:
        raise ValidationError(
            {NON_FIELD_ERRORS: _("Correct at least one input: the amount, a statement or a data point.")}
        )
    challenge = Challenge.objects.create(
        dossier=dossier,
        raised_by=user,
        justification=justification,
        source_reference=source_reference,
        corrections={name: {"before": before[name], "after": after[name]} for name in after},
        feature_values=supplied,
    )
    _overrides_withdraw(dossier, user, reason=f"challenge {challenge.pk}")
    _dossier_back_to_scoring(dossier, status_detail="", extra_fields=[REQUESTED_AMOUNT])
    audit_record(
        actor=Actor(user=user),
        action="dossier.challenged",
        obj=dossier,
        before={**before, "score_version": score.version if score else None},
        after={
            **after,
            "challenge_id": challenge.pk,  # the justification is on the challenge, encrypted: never copied here
            "source_reference": source_reference,
        },
    )
    if dossier.partner_id:
        events_publish(
            [
                (
                    dossier.partner_id,
                    "dossier.challenged",
                    {
                        "id": str(dossier.pk),
                        "challenge_id": challenge.pk,
                        "corrected": list(after),
                        "source_reference": source_reference,
                        "challenged_at": challenge.created_at.isoformat(),
                    },
                )
            ]
        )
    return challenge


def _statement_correct(
    dossier: Dossier, values: dict[str, Any], user: AbstractBaseUser
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A statement read from the applicant's accounts, recorded for the company: (the one it supersedes, it)."""
    previous = statements_on_file(dossier)
    statement = statement_add(dossier=dossier, values=values, user=user, error_prefix="statement_")
    fiscal_year_end, figures = values["fiscal_year_end"], statement_figures(values)
    before = {"detail": previous.detail, **(previous.data or {})} if previous.status == "ok" else None
    return before, {"statement_id": statement.pk, **_jsonable({"fiscal_year_end": fiscal_year_end, **figures})}


def _feature_values_check(dossier: Dossier, score: Score | None, values: dict[str, Any]) -> dict[str, Any]:
    """The data points that change something, as JSON numbers; a ValidationError names any the segment does not take."""
    fields = ANALYST_FIELDS.get(dossier.segment, {})
    errors: dict[str, str] = {}
    supplied: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        field = fields.get(name)
        if field is None:
            errors[f"feature_{name}"] = _("This data point cannot be supplied for this dossier.")
            continue
        problem = analyst_value_error(field, value)
        if problem:
            errors[f"feature_{name}"] = problem
            continue
        number = int(value) if field.integer else float(value)
        current = score.snapshot.features.get(name) if score else None
        if current is None or float(current) != float(number):
            supplied[name] = number
    if errors:
        raise ValidationError(errors)
    return supplied


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, date) else f"{value:.2f}" if isinstance(value, Decimal) else value
        for name, value in values.items()
    }


def _overrides_withdraw(dossier: Dossier, user: AbstractBaseUser, *, reason: str) -> None:
    """Overrides awaiting approval were about the score a re-score replaces: withdrawn, each audited."""
    pending = list(
        Override.objects.select_for_update()
        .filter(dossier=dossier, status=Override.Status.PENDING)
        .values_list("pk", "to_decision")
    )
    if not pending:
        return
    Override.objects.filter(pk__in=[pk for pk, _ in pending]).update(status=Override.Status.WITHDRAWN)
    for pk, to_decision in pending:
        audit_record(
            actor=Actor(user=user),
            action="dossier.override_withdrawn",
            obj=dossier,
            before={"override_id": pk, "status": Override.Status.PENDING, "to_decision": to_decision},
            after={"override_id": pk, "status": Override.Status.WITHDRAWN, "reason": f"re-scored after {reason}"},
        )


def _dossier_back_to_scoring(dossier: Dossier, *, status_detail: str, extra_fields: list[str] | None = None) -> None:
    """Pending again, claimed by this request (one attempt counted) for ``dossier_rescore`` after commit."""
    dossier.status = Dossier.Status.PENDING
    dossier.status_detail = status_detail
    dossier.claimed_until = lease_until()
    dossier.attempts = 1
    dossier.requeues = 0
    dossier.requeue_at = None
    dossier.save(
        update_fields=[
            "status",
            "status_detail",
            "claimed_until",
            "attempts",
            "requeues",
            "requeue_at",
            "updated_at",
            *(extra_fields or []),
        ]
    )


@transaction.atomic
def dossier_retry(*, dossier: Dossier, user: AbstractBaseUser) -> Dossier:
    """Put a failed dossier back to scoring, its attempts reset, claimed for ``dossier_rescore``.

    It keeps the reason it failed until it is scored: its next score is a ``retry``.
    """
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.status != Dossier.Status.FAILED:
        raise ValidationError(_("Only a failed dossier can be retried."))
    before = {"status": dossier.status, "status_detail": dossier.status_detail, "attempts": dossier.attempts}
    _overrides_withdraw(dossier, user, reason="a retry")
    _dossier_back_to_scoring(dossier, status_detail=dossier.status_detail or "Scoring failed.")
    audit_record(
        actor=Actor(user=user),
        action="dossier.retried",
        obj=dossier,
        before=before,
        after={"status": dossier.status, "attempts": dossier.attempts},
    )
    return dossier


def dossier_rescore(*, dossier_id: Any) -> Score | None:
    """Score now, in the request, a dossier ``dossier_challenge`` or ``dossier_retry`` claimed; None if not scored here.

    When its segment has no champion model or current policy, or scoring raises, it is left pending
    for the workers (the page says so) rather than failed in the analyst's hands.
    """
    dossier = Dossier.objects.only("segment", "status").get(pk=dossier_id)
    if dossier.status != Dossier.Status.PENDING:
        return None
    if champion_for(dossier.segment) is None or policy_current(dossier.segment) is None:
        Dossier.objects.filter(pk=dossier_id, status=Dossier.Status.PENDING).update(
            claimed_until=None, updated_at=timezone.now()
        )
        transaction.on_commit(scoring_wake_up)
        return None
    stored = dossier_score_here(dossier_id=dossier_id)
    return stored[1] if stored else None
