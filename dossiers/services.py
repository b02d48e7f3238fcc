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
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

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
from .models import Company, Dossier, Individual
from .outcomes import (  # re-exported: the API, the back-office and the tests import them from here
    OUTCOME_AMOUNTS,
    CreditNotGranted,
    DossierNotScored,
    OutcomeAlreadyRecorded,
    outcome_correct,
    outcome_record,
)
from .overrides import dossier_override  # re-exported: the API and the tests import it from here

logger = logging.getLogger(__name__)
__all__ = [  # re-exported: the scoring batch's (dossiers.batch) and the outcomes' (dossiers.outcomes)
    "OUTCOME_AMOUNTS",
    "CreditNotGranted",
    "DossierNotScored",
    "OutcomeAlreadyRecorded",
    "dossier_fail",
    "dossier_override",
    "dossiers_requeue_stalled",
    "outcome_correct",
    "outcome_record",
]


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
    individual, _ = Individual.objects.get_or_create_for_reference(partner, reference)
    dossier = _dossier_open(partner, actor, requested_amount, bank_tokens, individual=individual, score_here=score_here)
    audit_record(
        actor=actor,
        action="dossier.created",
        obj=dossier,
        after={
            "individual_id": individual.pk,  # never the reference itself: audit rows are not encrypted
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


def statement_add(
    *, dossier: Dossier, values: dict[str, Any], user: AbstractBaseUser, error_prefix: str = ""
) -> FinancialStatement:
    """Check and store a statement an analyst read from the applicant's accounts; the caller audits it.

    ``error_prefix`` names the form's fields when the statement is part of a larger form (a challenge's).
    """
    if not dossier.company_id:
        raise ValidationError(_("Financial statements belong to a company's dossier."))
    errors = statement_errors(values)
    if errors:
        raise ValidationError(
            {name if name == NON_FIELD_ERRORS else f"{error_prefix}{name}": e for name, e in errors.items()}
        )
    return FinancialStatement.objects.create(
        company_id=dossier.company_id,
        fiscal_year_end=values["fiscal_year_end"],
        source=FinancialStatement.Source.ANALYST,
        supplied_by_user=user,
        **statement_figures(values),
    )


@transaction.atomic
def statement_record(*, dossier: Dossier, values: dict[str, Any], user: AbstractBaseUser) -> FinancialStatement:
    """Record a financial statement an analyst read from the applicant's accounts, for the dossier's company."""
    statement = statement_add(dossier=dossier, values=values, user=user)
    fiscal_year_end, figures = values["fiscal_year_end"], statement_figures(values)
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
