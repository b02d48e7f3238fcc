"""The right to erasure (GDPR Art. 17), within the legal retention of credit files.

A dossier on which credit was granted is kept, as the law on credit files requires, until the retention
period after the credit closed has run; the retention task (``riskoffice.register.tasks``) anonymises it
then. Every other dossier is anonymised at once. Anonymising keeps the scores (PD, band, decision,
contributions, features) for model governance, with nothing left that points to the person.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.models import NegativeEvent, WebhookDelivery
from alerts.services import events_publish
from dossiers.models import Challenge, Company, Dossier, Individual, Outcome, OutcomeCorrection, Override
from riskoffice.audit import Actor, audit_record
from riskoffice.models import AuditEvent

from .models import SubjectRequest

# What replaces a free text that must not be empty (the database requires an override's reason, a
# challenge's justification and source) once it is anonymised.
ANONYMISED = "[anonymised]"
GRANTED = ("accept", "guarantee")
# A credit is closed once repaid or written off; a default is still being recovered.
CLOSED_OUTCOMES = (Outcome.Status.REPAID, Outcome.Status.WRITTEN_OFF)
DEFAULT_RETENTION_YEARS = 5
# Keys of audit rows and event payloads that hold personal data or free text about the person.
PERSONAL_KEYS = frozenset(
    {
        "individual_reference",
        "reference",
        "applicant_name",
        "name",
        "reason",
        "note",
        "review_note",
        "justification",
        "source_reference",
        "statement",
    }
)

# The keys that name the person: all a dossier kept under retention loses when its subject is erased.
REFERENCE_KEYS = frozenset({"individual_reference", "reference"})


# --- retention ---------------------------------------------------------------------------------------


def credit_file_retention() -> relativedelta:
    """How long a granted credit's file is kept after the credit closed.

    The register's ``credit_files`` data category says, where it exists; else ``SUBJECTS_CREDIT_FILE_RETENTION_YEARS``.
    """
    try:
        from riskoffice.register.models import DataCategory
    except ImportError:
        DataCategory = None
    if DataCategory is not None:
        category = DataCategory.objects.filter(code="credit_files").first()
        period = _period_of(category) if category is not None else None
        if period is not None:
            return period
    return relativedelta(years=getattr(settings, "SUBJECTS_CREDIT_FILE_RETENTION_YEARS", DEFAULT_RETENTION_YEARS))


def _period_of(category: Any) -> relativedelta | None:
    for name, unit in (("retention_years", "years"), ("retention_months", "months"), ("retention_days", "days")):
        value = getattr(category, name, None)
        if value:
            return relativedelta(**{unit: int(value)})
    value = getattr(category, "retention", None)
    if hasattr(value, "days"):
        return relativedelta(days=value.days)
    return None


@dataclass
class Retention:
    """Whether a dossier must be kept, why (a code, docs/gdpr.md), and until when (None: until the credit closes).

    ``why``: ``no_credit_granted``, ``retention_over`` (erasable), ``credit_not_closed``, ``credit_closed_recently``.
    """

    kept: bool
    until: date | None = None
    why: str = ""


def dossier_retention(dossier: Dossier, *, today: date | None = None) -> Retention:
    """Kept when credit was granted and has not been closed for longer than the credit files' retention period."""
    today = today or timezone.localdate()
    if dossier.decision not in GRANTED:
        return Retention(kept=False, why="no_credit_granted")
    outcome = Outcome.objects.filter(dossier=dossier).first()
    if outcome is None or outcome.status not in CLOSED_OUTCOMES:
        return Retention(kept=True, until=None, why="credit_not_closed")
    until = outcome.occurred_on + credit_file_retention()
    if until > today:
        return Retention(kept=True, until=until, why="credit_closed_recently")
    return Retention(kept=False, why="retention_over")


# --- anonymising one dossier -------------------------------------------------------------------------


def _redact(value: Any, keys: frozenset[str] = PERSONAL_KEYS) -> Any:
    """A JSON value with the value of every key in ``keys`` replaced, recursively."""
    if isinstance(value, dict):
        return {
            key: (ANONYMISED if key in keys and item not in (None, "") else _redact(item, keys))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, keys) for item in value]
    return value


def _audit_redact(object_type: str, object_ids: list[str], keys: frozenset[str] = PERSONAL_KEYS) -> int:
    """Scrub personal keys from the audit rows of these objects: who did what, and when, stays.

    The audit trail is append-only; ``audit_redaction_allow`` lets this transaction rewrite before/after only.
    """
    _audit_redaction_allow()
    changed = 0
    for event in AuditEvent.objects.filter(object_type=object_type, object_id__in=object_ids):
        before, after = _redact(event.before, keys), _redact(event.after, keys)
        if (before, after) != (event.before, event.after):
            AuditEvent.objects.filter(pk=event.pk).update(before=before, after=after)
            changed += 1
    return changed


def _audit_redaction_allow() -> None:
    try:
        from riskoffice.audit import audit_redaction_allow
    except ImportError:  # an audit trail without the append-only guard needs no permission
        return
    audit_redaction_allow()


def _deliveries_redact(dossier_ids: list[str], keys: frozenset[str] = PERSONAL_KEYS) -> int:
    """Scrub personal data from the webhook outbox's copies of events about these dossiers."""
    changed = 0
    for delivery in WebhookDelivery.objects.filter(payload__data__id__in=dossier_ids):
        payload = _redact(delivery.payload, keys)
        if payload != delivery.payload:
            WebhookDelivery.objects.filter(pk=delivery.pk).update(payload=payload)
            changed += 1
    return changed


@transaction.atomic
def anonymise_dossier(dossier: Dossier, *, actor: Actor, reason: str) -> bool:
    """Strip a dossier of what identifies its applicant, keeping its scores; False when it already was.

    Cleared: bank tokens, the applicant's name, the free texts (override reasons and review notes, challenge
    justifications and sources, the person's statements), and the personal keys of its audit rows and webhook
    copies. A B2C dossier moves to an opaque individual of its own, so its scores point to nobody. ``reason``
    is a code (``erasure_request:12``, ``retention``): it lands in the audit row, so it never holds personal data.
    """
    dossier = Dossier.objects.select_for_update(of=("self",)).get(pk=dossier.pk)
    if is_anonymised(dossier):
        return False
    now = timezone.now()
    dossier.bank_tokens_json = "[]"
    dossier.applicant_name = ""
    fields = ["bank_tokens_json", "applicant_name", "updated_at"]
    if dossier.individual_id is not None:
        dossier.individual = _opaque_individual(now)
        fields.append("individual")
    if hasattr(dossier, "anonymised_at"):
        dossier.anonymised_at = now
        fields.append("anonymised_at")
    dossier.save(update_fields=fields)
    # Row by row: the texts are encrypted fields, which neither filter nor compare in SQL.
    overrides = list(Override.objects.filter(dossier=dossier))
    for override in overrides:
        override.reason = ANONYMISED
        override.review_note = ANONYMISED if override.review_note else ""
        override.save(update_fields=["reason", "review_note"])
    challenges = list(Challenge.objects.filter(dossier=dossier))
    for challenge in challenges:
        challenge.justification = challenge.source_reference = ANONYMISED
        challenge.save(update_fields=["justification", "source_reference"])
    OutcomeCorrection.objects.filter(outcome__dossier=dossier).update(reason=ANONYMISED)
    SubjectRequest.objects.filter(dossier=dossier).exclude(kind=SubjectRequest.Kind.ERASURE).update(
        statement="", resolution_note=""
    )
    _audit_redact("dossiers.dossier", [str(dossier.pk)])
    _audit_redact("dossiers.override", [str(o.pk) for o in overrides])
    _audit_redact("dossiers.challenge", [str(c.pk) for c in challenges])
    _deliveries_redact([str(dossier.pk)])
    audit_record(
        actor=actor,
        action="dossier.anonymised",
        obj=dossier,
        after={
            "reason": reason,
            "cleared": ["bank_tokens", "applicant_name", "override_texts", "challenge_texts", "applicant_link"],
            "kept": ["scores", "features", "decision", "amounts", "outcome"],
        },
    )
    return True


def is_anonymised(dossier: Dossier) -> bool:
    """Whether the dossier was anonymised: its ``anonymised_at``, or its audit trail where that field is absent."""
    if hasattr(dossier, "anonymised_at"):
        return dossier.anonymised_at is not None
    return AuditEvent.objects.filter(
        object_type="dossiers.dossier", object_id=str(dossier.pk), action="dossier.anonymised"
    ).exists()


def _opaque_individual(now: datetime) -> Individual:
    """A person of no one: the anonymised dossier's applicant, with no partner and an opaque reference."""
    individual = Individual(partner=None, reference=f"anonymised-{uuid.uuid4()}")
    if hasattr(individual, "erased_at"):
        individual.erased_at = now
    individual.save()
    return individual


# --- erasing a subject ----------------------------------------------------------------------------


@dataclass
class DossierErasure:
    id: str
    partner_id: int | None
    action: str  # "anonymised" now, "kept" under retention, "already_anonymised"
    kept_until: str | None = None
    why: str = ""


@dataclass
class ErasureReport:
    """What an erasure did (or, in a dry run, would do): per dossier, anonymised now or kept until when."""

    subject: str
    dry_run: bool
    dossiers: list[DossierErasure] = field(default_factory=list)
    subject_erased: bool = False
    negative_events_deleted: int = 0
    partners_notified: list[int] = field(default_factory=list)

    @property
    def anonymised(self) -> list[DossierErasure]:
        return [d for d in self.dossiers if d.action == "anonymised"]

    @property
    def kept(self) -> list[DossierErasure]:
        return [d for d in self.dossiers if d.action == "kept"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def erase_subject(
    *,
    individual: Individual | None = None,
    company: Company | None = None,
    actor: Actor,
    request: SubjectRequest | None = None,
    dry_run: bool = False,
) -> ErasureReport:
    """Erase what may be erased about an individual or a company, keep what the law requires, tell the partners.

    Idempotent: a second run anonymises nothing new, and tells partners only of what it changed.
    With ``dry_run`` nothing is written: the report is the preview of what would happen.
    """
    if (company is None) == (individual is None):
        raise ValueError("Erase one subject: a company or an individual.")
    with transaction.atomic():
        report = _erase(individual=individual, company=company, actor=actor, request=request, dry_run=dry_run)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _erase(
    *,
    individual: Individual | None,
    company: Company | None,
    actor: Actor,
    request: SubjectRequest | None,
    dry_run: bool,
) -> ErasureReport:
    subject = Q(company=company) if company is not None else Q(individual=individual)
    report = ErasureReport(subject="company" if company is not None else "individual", dry_run=dry_run)
    reason = f"erasure_request:{request.pk}" if request is not None and request.pk else "erasure"
    dossiers = list(Dossier.objects.filter(subject).select_related("partner").order_by("created_at"))
    for dossier in dossiers:
        entry = DossierErasure(id=str(dossier.pk), partner_id=dossier.partner_id, action="anonymised")
        if is_anonymised(dossier):
            entry.action = "already_anonymised"
        else:
            retention = dossier_retention(dossier)
            if retention.kept:
                entry.action, entry.why = "kept", retention.why
                entry.kept_until = retention.until.isoformat() if retention.until else None
            elif dry_run:
                entry.why = retention.why
            else:
                entry.why = retention.why
                if not anonymise_dossier(dossier, actor=actor, reason=reason):
                    entry.action = "already_anonymised"
        report.dossiers.append(entry)
    if individual is not None:
        events = NegativeEvent.objects.filter(individual=individual)
        _audit_redact("alerts.negativeevent", [str(pk) for pk in events.values_list("pk", flat=True)])
        report.negative_events_deleted, _deleted = events.delete()
        report.subject_erased = _individual_erase(individual, actor=actor, reason=reason)
    else:
        report.subject_erased = False  # a SIREN is public-register data: the company row stays
    if report.anonymised or report.subject_erased:
        report.partners_notified = _partners_notify(report, dossiers, individual=individual, company=company)
    return report


def _individual_erase(individual: Individual, *, actor: Actor, reason: str) -> bool:
    """Replace the person's reference by an opaque one; False when that was done already."""
    individual = Individual.objects.select_for_update().get(pk=individual.pk)
    if getattr(individual, "erased_at", None) is not None or individual.reference.startswith("erased-"):
        return False
    individual.reference = f"erased-{uuid.uuid4()}"
    if hasattr(individual, "erased_at"):
        individual.erased_at = timezone.now()
    individual.save()  # every field: the reference's digest follows it
    # The person's own words in their other requests (their erasure request stays whole: it is the record).
    SubjectRequest.objects.filter(individual=individual).exclude(kind=SubjectRequest.Kind.ERASURE).update(
        statement="", resolution_note=""
    )
    _audit_redact("dossiers.individual", [str(individual.pk)])
    for dossier_id in Dossier.objects.filter(individual=individual).values_list("pk", flat=True):
        # Dossiers kept under retention stay linked to the (now opaque) individual, whole (the credit file),
        # but their audit rows and webhook copies lose the reference the person was known by.
        _audit_redact("dossiers.dossier", [str(dossier_id)], REFERENCE_KEYS)
        _deliveries_redact([str(dossier_id)], REFERENCE_KEYS)
    audit_record(actor=actor, action="individual.erased", obj=individual, after={"reason": reason})
    return True


def _partners_notify(
    report: ErasureReport, dossiers: list[Dossier], *, individual: Individual | None, company: Company | None
) -> list[int]:
    """One ``data_subject.erased`` event per partner that holds data about the subject: its own score ids only."""
    ids = [str(d.pk) for d in dossiers]
    partners: dict[int, set[str]] = {}
    for dossier in dossiers:
        if dossier.partner_id:
            partners.setdefault(dossier.partner_id, set()).add(str(dossier.pk))
    for partner_id, dossier_id in WebhookDelivery.objects.filter(payload__data__id__in=ids).values_list(
        "endpoint__partner_id", "payload__data__id"
    ):
        partners.setdefault(partner_id, set()).add(dossier_id)
    if individual is not None and individual.partner_id:
        partners.setdefault(individual.partner_id, set())
    by_id = {entry.id: entry for entry in report.dossiers}
    events = []
    for partner_id, dossier_ids in sorted(partners.items()):
        entries = [by_id[i] for i in sorted(dossier_ids) if i in by_id]
        events.append(
            (
                partner_id,
                "data_subject.erased",
                {
                    "subject_type": report.subject,
                    "scores": [
                        {"id": e.id, "erased": False, "kept_until": e.kept_until, "why_kept": e.why}
                        if e.action == "kept"
                        else {"id": e.id, "erased": True}
                        for e in entries
                    ],
                    "erased": [
                        "applicant identity",
                        "bank tokens",
                        "free-text notes",
                        *(["individual reference", "negative events"] if individual is not None else []),
                    ],
                    "instruction": "Delete or anonymise your copy of the erased data; keep what you must by law.",
                },
            )
        )
    events_publish(events)
    return [event[0] for event in events]


# --- erasure requests from the back-office --------------------------------------------------------


@transaction.atomic
def erasure_request_record(
    *,
    user: Any,
    received_at: datetime,
    company: Company | None = None,
    individual: Individual | None = None,
    statement: str = "",
) -> SubjectRequest:
    """Record an erasure request, open until an admin confirms it after the preview."""
    from .access import due_for

    request = SubjectRequest.objects.create(
        kind=SubjectRequest.Kind.ERASURE,
        channel=SubjectRequest.Channel.BACK_OFFICE,
        company=company,
        individual=individual,
        requested_by_user=user,
        statement=statement,
        received_at=received_at,
        due_at=due_for(received_at),
    )
    audit_record(
        actor=Actor(user=user),
        action="subject_request.received",
        obj=request,
        after={"kind": request.kind, "due_at": request.due_at.isoformat()},
    )
    return request


def erasure_request_preview(request: SubjectRequest) -> ErasureReport:
    """What confirming the request would anonymise now, and what it would keep, until when and why."""
    return erase_subject(
        individual=request.individual, company=request.company, actor=Actor.of_system("preview"), dry_run=True
    )


@transaction.atomic
def erasure_request_carry_out(*, request: SubjectRequest, user: Any) -> ErasureReport:
    """Erase the request's subject and close the request with the report as its resolution."""
    request = SubjectRequest.objects.select_for_update().get(pk=request.pk)
    if request.kind != SubjectRequest.Kind.ERASURE or request.status != SubjectRequest.Status.OPEN:
        raise ValidationError(_("This request is not an open erasure request."))
    report = erase_subject(
        individual=request.individual, company=request.company, actor=Actor(user=user), request=request
    )
    request.status = SubjectRequest.Status.COMPLETED
    request.completed_at = timezone.now()
    request.completed_by = user
    request.resolution = report.as_dict()
    request.save(update_fields=["status", "completed_at", "completed_by", "resolution"])
    audit_record(
        actor=Actor(user=user),
        action="subject_request.erasure_completed",
        obj=request,
        after={
            "anonymised": len(report.anonymised),
            "kept": [{"id": d.id, "until": d.kept_until} for d in report.kept],
        },
    )
    return report
