"""The right of access (GDPR Art. 15): everything held about a company or an individual, as one JSON document.

``subject_access_export`` reads; ``access_request_answer`` records the request, answers it and closes it.
The export names the logic of the automated decision (Art. 15(1)(h)) from the model and the policy in force.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.models import NegativeEvent, WebhookDelivery
from dossiers.identifiers import siren_error
from dossiers.models import Company, Dossier, Individual, Outcome
from dossiers.outcomes import correction_reasons
from riskoffice.audit import Actor, audit_record
from riskoffice.models import AuditEvent, Partner
from scoring.model.features import catalogue_for
from scoring.models import FinancialStatement, Score, Segment
from scoring.policy.apply import refer_rules
from scoring.selectors import champion_for, policy_current

from .models import SubjectRequest

# The answer is due one month after receipt (Art. 12(3)).
RESPONSE_TIME = relativedelta(months=1)


class UnknownSubject(ValidationError):
    """Nothing is held about the subject named: no company with this SIREN, no individual with this reference."""


def due_for(received_at: datetime) -> datetime:
    """When the answer to a request received at ``received_at`` is due: one calendar month later."""
    return received_at + RESPONSE_TIME


# --- finding the subject ------------------------------------------------------------------------------


def company_find(siren: str) -> Company:
    """The company with this SIREN, or ``UnknownSubject`` (a malformed SIREN is a ValidationError on ``siren``)."""
    siren = "".join((siren or "").split())
    problem = siren_error(siren)
    if problem:
        raise ValidationError({"siren": problem})
    company = Company.objects.filter(siren=siren).first()
    if company is None:
        raise UnknownSubject({"siren": _("No company with SIREN %(siren)s is on file.") % {"siren": siren}})
    return company


def individual_find(partner: Partner | str, reference: str) -> Individual:
    """The individual a partner knows by ``reference`` (a partner by instance or by name), or ``UnknownSubject``."""
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError({"reference": _("Give the partner's reference for the person.")})
    if not isinstance(partner, Partner):
        found = Partner.objects.filter(name=(partner or "").strip()).first()
        if found is None:
            raise UnknownSubject({"partner": _("No partner named %(name)s.") % {"name": partner}})
        partner = found
    individual = _individual_lookup(partner, reference)
    if individual is None:
        raise UnknownSubject(
            {"reference": _("%(partner)s has no individual with this reference on file.") % {"partner": partner.name}}
        )
    return individual


def _individual_lookup(partner: Partner, reference: str) -> Individual | None:
    # The reference is stored encrypted; its keyed digest is what finds it (dossiers.models).
    found = Individual.objects.for_reference(partner, reference)
    return found.first() if isinstance(found, QuerySet) else found


# --- the export --------------------------------------------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def subject_access_export(*, company: Company | None = None, individual: Individual | None = None) -> dict[str, Any]:
    """Everything held about one subject, JSON-serialisable; exactly one of ``company`` and ``individual``."""
    if (company is None) == (individual is None):
        raise ValueError("Export one subject: a company or an individual.")
    subject_filter = Q(company=company) if company is not None else Q(individual=individual)
    dossiers = list(
        Dossier.objects.filter(subject_filter)
        .select_related("partner", "company", "individual", "outcome")
        .prefetch_related(
            "overrides__reason_code",
            "challenges",
            "scores__model_version",
            "scores__policy_version",
            "scores__snapshot",
        )
        .order_by("created_at")
    )
    requests = SubjectRequest.objects.filter(subject_filter | Q(dossier__in=[d.pk for d in dossiers])).order_by(
        "received_at"
    )
    segment = Segment.B2B if company is not None else Segment.B2C
    return {
        "generated_at": timezone.now().isoformat(),
        "controller_note": _(
            "This document lists every piece of data riskoffice holds about you, where it came from, "
            "and how automated decisions about you are made."
        ),
        "subject": _identity(company, individual),
        "dossiers": [_dossier(d) for d in dossiers],
        "negative_events": [_event(e) for e in NegativeEvent.objects.filter(subject_filter).order_by("occurred_on")],
        "financial_statements": [_statement(s) for s in FinancialStatement.objects.filter(company=company)]
        if company is not None
        else [],
        "subject_requests": [_request(r) for r in requests],
        "recipients": _recipients(dossiers),
        "logic": automated_decision_logic(segment),
    }


def _identity(company: Company | None, individual: Individual | None) -> dict[str, Any]:
    if company is not None:
        return {
            "type": "company",
            "siren": company.siren,
            "vat": company.vat,
            "name": company.name,
            "naf_code": company.naf_code,
            "on_file_since": _iso(company.created_at),
            "source": _("Public company registers (INSEE Sirene) and the partners that asked for a score."),
        }
    return {
        "type": "individual",
        "partner": individual.partner.name if individual.partner_id else None,
        "reference": individual.reference,
        "on_file_since": _iso(individual.created_at),
        "erased_at": _iso(getattr(individual, "erased_at", None)),
        "source": _("The partner that asked for a score; riskoffice holds no name and no national identifier."),
    }


def _dossier(dossier: Dossier) -> dict[str, Any]:
    try:
        outcome: Outcome | None = dossier.outcome
    except Outcome.DoesNotExist:
        outcome = None
    return {
        "id": str(dossier.pk),
        "partner": dossier.partner.name if dossier.partner_id else None,
        "segment": dossier.segment,
        "applicant_name": dossier.applicant_name,
        "requested_amount": _amount(dossier.requested_amount),
        "bank_accounts_connected": len(dossier.bank_tokens),
        "status": dossier.status,
        "decision": dossier.decision or None,
        "decision_overridden": dossier.decision_overridden,
        "created_at": _iso(dossier.created_at),
        "anonymised_at": _iso(getattr(dossier, "anonymised_at", None)),
        "scores": [_score(s) for s in sorted(dossier.scores.all(), key=lambda s: s.version)],
        "overrides": [
            {
                "from_decision": o.from_decision,
                "to_decision": o.to_decision,
                "reason_code": o.reason_code.code if o.reason_code_id else None,
                "reason_label": o.reason_code.label_en if o.reason_code_id else None,
                "reason": o.reason,
                "status": o.status,
                "review_note": o.review_note,
                "decided_at": _iso(o.created_at),
                "reviewed_at": _iso(o.reviewed_at),
            }
            for o in sorted(dossier.overrides.all(), key=lambda o: o.created_at)
        ],
        "challenges": [
            {
                "justification": c.justification,
                "source_reference": c.source_reference,
                "corrections": c.corrections,
                "raised_at": _iso(c.created_at),
            }
            for c in sorted(dossier.challenges.all(), key=lambda c: c.created_at)
        ],
        "outcome": None
        if outcome is None
        else {
            "status": outcome.status,
            "occurred_on": _iso(outcome.occurred_on),
            "granted_amount": _amount(outcome.granted_amount),
            "outstanding_amount": _amount(outcome.outstanding_amount),
            "written_off_amount": _amount(outcome.written_off_amount),
            "recorded_at": _iso(outcome.created_at),
        },
        "outcome_corrections": _outcome_corrections(dossier),
    }


def _outcome_corrections(dossier: Dossier) -> list[dict[str, Any]]:
    """Each correction of the outcome: when, what it was, what it became, and why (the encrypted reason)."""
    events = list(
        AuditEvent.objects.filter(
            object_type="dossiers.dossier", object_id=str(dossier.pk), action="dossier.outcome_corrected"
        ).order_by("at")
    )
    reasons = correction_reasons(events)
    return [{"at": _iso(e.at), "before": e.before, "after": e.after, "reason": reasons.get(e.pk, "")} for e in events]


def _score(score: Score) -> dict[str, Any]:
    return {
        "version": score.version,
        "trigger": score.trigger,
        "scored_at": _iso(score.created_at),
        "probability_of_default": round(score.probability_of_default, 6),
        "score": score.score,
        "band": score.band,
        "recommendation": score.decision,
        "recommended_limit": _amount(score.recommended_limit),
        "policy_rules_fired": score.rules_fired,
        "factors": [
            {
                "feature": f["feature"],
                "text": f["text"]["en"] if isinstance(f.get("text"), dict) else f.get("text"),
                "text_fr": f["text"].get("fr") if isinstance(f.get("text"), dict) else None,
                "direction": f.get("direction"),
                "contribution": f.get("contribution"),
            }
            for f in score.factors
        ],
        "model_version": score.model_version.label,
        "policy_version": score.policy_version.label,
        "features_used": score.snapshot.features,
        "features_provenance": score.snapshot.provenance,
        "data_flags": score.data_flags,
    }


def _event(event: NegativeEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "occurred_on": _iso(event.occurred_on),
        "amount": _amount(event.amount),
        "days_late": event.days_late,
        "reason_code": event.reason_code,
        "details": event.details,
        "source": event.source,
        "recorded_at": _iso(event.created_at),
    }


def _statement(statement: FinancialStatement) -> dict[str, Any]:
    figures = ("revenue", "net_income", "ebitda", "equity", "total_assets", "current_assets", "current_liabilities")
    return {
        "fiscal_year_end": _iso(statement.fiscal_year_end),
        "source": statement.source,
        **{name: _amount(getattr(statement, name)) for name in (*figures, "financial_debt")},
        "recorded_at": _iso(statement.created_at),
    }


def _request(request: SubjectRequest) -> dict[str, Any]:
    return {
        "kind": request.kind,
        "status": request.status,
        "received_at": _iso(request.received_at),
        "due_at": _iso(request.due_at),
        "completed_at": _iso(request.completed_at),
        "statement": request.statement,
        "resolution_note": request.resolution_note,
    }


def _recipients(dossiers: list[Dossier]) -> list[dict[str, Any]]:
    """Which partners received data about the subject: the events sent to their webhooks, by type and date."""
    ids = [str(d.pk) for d in dossiers]
    if not ids:
        return []
    deliveries = (
        WebhookDelivery.objects.filter(payload__data__id__in=ids)
        .select_related("endpoint__partner")
        .order_by("created_at")
    )
    return [
        {
            "partner": d.endpoint.partner.name,
            "event_type": d.event_type,
            "dossier": d.payload.get("data", {}).get("id"),
            "created_at": _iso(d.created_at),
            "delivered_at": _iso(d.delivered_at),
            "status": d.status,
        }
        for d in deliveries
    ]


def automated_decision_logic(segment: str) -> dict[str, Any]:
    """Meaningful information about the logic involved (Art. 15(1)(h)), from the model and policy in force."""
    champion = champion_for(segment)
    policy = policy_current(segment)
    thresholds = None
    if policy is not None:
        knockouts = policy.knockouts or {}
        thresholds = {
            "policy_version": policy.label,
            "accept_below_pd": policy.accept_max_pd,
            "guarantee_below_pd": policy.guarantee_max_pd,
            "refuse_from_pd": policy.guarantee_max_pd,
            "knockouts": {
                "open_insolvency_proceeding_refuses": bool(knockouts.get("open_insolvency_proceeding", True)),
                "sanctioned_naf_codes": list(knockouts.get("sanctioned_naf_codes", [])),
                "max_amount": knockouts.get("max_amount"),
            },
            "referral": refer_rules(policy),
            "explanation": _(
                "A probability of default below %(accept)s recommends accepting; below %(guarantee)s, accepting "
                "with a guarantee; from %(guarantee)s, refusing. Knock-out rules (an open insolvency proceeding, "
                "a sanctioned activity, an amount above the maximum) refuse whatever the probability. When the "
                "data behind a score is too thin, the dossier is referred to an analyst instead."
            )
            % {"accept": policy.accept_max_pd, "guarantee": policy.guarantee_max_pd},
        }
    return {
        "model": {
            "kind": _(
                "Gradient-boosted decision trees (XGBoost) predicting the probability that the credit defaults "
                "(is not repaid) within its term, trained on past credits and what became of them."
            ),
            "version": champion.label if champion is not None else None,
            "trained_on": champion.training_window if champion is not None else None,
        },
        "data_used": [
            {"feature": f.name, "meaning": f.meaning, "source": f.source, "label": f.label_en}
            for f in catalogue_for(segment)
        ],
        "factors": _(
            "Each factor is the exact contribution of one data point to the predicted risk, computed with "
            "TreeSHAP (exact Shapley values for tree models): the contributions add up, with the base value, "
            "to the score. The factors listed first moved the decision most."
        ),
        "policy": thresholds,
        "significance": _(
            "The score is a recommendation to the partner that offers the credit: accept, ask for a guarantee, "
            "refuse, or refer to an analyst. A refusal means the partner may not offer the credit or may ask for "
            "a guarantee; analysts can override the recommendation with a recorded reason."
        ),
        "human_review": _(
            "You may ask for a human to review any automated decision, express your point of view and contest "
            "it: ask the partner that offered the credit, which forwards the request to riskoffice, or write to "
            "the data protection officer. An analyst reviews it and answers within one month."
        ),
    }


# --- answering an access request ------------------------------------------------------------------


@transaction.atomic
def access_request_answer(
    *,
    user: AbstractBaseUser,
    received_at: datetime,
    company: Company | None = None,
    individual: Individual | None = None,
    statement: str = "",
) -> tuple[SubjectRequest, dict[str, Any]]:
    """Record an access request received at ``received_at``, answer it with the export, and close it."""
    export = subject_access_export(company=company, individual=individual)
    now = timezone.now()
    request = SubjectRequest.objects.create(
        kind=SubjectRequest.Kind.ACCESS,
        channel=SubjectRequest.Channel.BACK_OFFICE,
        company=company,
        individual=individual,
        requested_by_user=user,
        statement=statement,
        received_at=received_at,
        due_at=due_for(received_at),
        status=SubjectRequest.Status.COMPLETED,
        completed_at=now,
        completed_by=user,
        resolution={"answered": "export", "dossiers": len(export["dossiers"])},
    )
    audit_record(
        actor=Actor(user=user),
        action="subject_request.access_answered",
        obj=request,
        after={"dossiers": len(export["dossiers"]), "due_at": request.due_at.isoformat()},
    )
    access_log_export(dossier_ids=[d["id"] for d in export["dossiers"]], user=user, request_id=request.pk)
    return request, export


def access_log_export(
    *, dossier_ids: list[str], user: AbstractBaseUser | None = None, label: str = "", request_id: int | None = None
) -> None:
    """The access log's record of a full export (``riskoffice.accesslog``), where that app provides one.

    From the back-office (``user``) or a command (``label``): the dossiers it disclosed, never the subject's name.
    """
    try:
        from riskoffice.accesslog.services import access_log_record
    except ImportError:
        return
    access_log_record(
        channel="back_office" if user is not None else "command",
        action="export",
        user=user,
        label=label,
        route="subjects:access-new" if user is not None else "",
        object_type="subjects.subjectrequest" if request_id is not None else "dossiers.dossier",
        object_id=str(request_id) if request_id is not None else "",
        object_ids=dossier_ids,
    )
