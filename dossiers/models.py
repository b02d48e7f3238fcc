"""Applicants, dossiers, decisions and outcomes."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext_lazy as _
from django_cryptography.fields import encrypt

from riskoffice.keys import reference_digest, reference_digests
from scoring.models import DEFAULT_OUTCOMES, Decision, Segment

__all__ = [
    "Challenge",
    "Company",
    "Decision",
    "Dossier",
    "Individual",
    "Outcome",
    "OutcomeImport",
    "Override",
    "OverrideReason",
    "Segment",
]


class Company(models.Model):
    """A company known by its SIREN; its details come from the data sources."""

    siren = models.CharField(max_length=9, unique=True)
    vat = models.CharField(max_length=13, blank=True)
    name = models.CharField(max_length=200, blank=True)
    naf_code = models.CharField(max_length=6, blank=True)
    # The most the team recommends granting this company in total; analysts lower it from an alert (audited).
    recommended_limit = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "companies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(recommended_limit__isnull=True) | models.Q(recommended_limit__gte=0),
                name="company_limit_not_negative",
                violation_error_message="A recommended limit cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'Company'} ({self.siren})"


class IndividualQuerySet(models.QuerySet):
    """Every lookup by reference goes through here: the reference is encrypted, its keyed digest is searchable.

    A reference matches if its digest under any key of the ring does (during a key rotation both are on file).
    """

    def matching_reference(self, reference: str) -> IndividualQuerySet:
        """Individuals (of any partner: filter further) known by exactly ``reference``."""
        return self.filter(reference_digest__in=reference_digests(reference))

    def matching_references(self, references) -> IndividualQuerySet:
        return self.filter(reference_digest__in=[d for r in references for d in reference_digests(r)])

    def for_reference(self, partner, reference: str) -> Individual | None:
        """The partner's individual known by ``reference`` (``partner`` an object, an id or None), or None."""
        return self.filter(partner_id=getattr(partner, "pk", partner)).matching_reference(reference).first()

    def get_or_create_for_reference(self, partner, reference: str) -> tuple[Individual, bool]:
        """The partner's individual known by ``reference``, created if new (race-safe: the digest is unique)."""
        partner_id = getattr(partner, "pk", partner)
        found = self.for_reference(partner_id, reference)
        if found is not None:
            return found, False
        try:
            with transaction.atomic():
                return self.create(partner_id=partner_id, reference=reference), True
        except IntegrityError:
            return self.filter(partner_id=partner_id).matching_reference(reference).get(), False


class Individual(models.Model):
    """A natural person, known only by the partner's internal reference: no name, no national id.

    The reference is encrypted; ``reference_digest`` (HMAC-SHA256 under the keyring's lookup key, computed on
    save) is what lookups and the uniqueness per partner use: see ``IndividualQuerySet.for_reference``.
    """

    partner = models.ForeignKey(
        "riskoffice.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="individuals"
    )
    reference = encrypt(models.CharField(max_length=100))
    reference_digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the person's data was erased on request (Art. 17): the row stays so the dossiers keep their history.
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = IndividualQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "reference_digest"], name="individual_unique_reference_per_partner"
            ),
        ]

    def __str__(self) -> str:
        return f"Individual {self.reference}"

    def save(self, *args, **kwargs) -> None:
        self.reference_digest = reference_digest(self.reference)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "reference" in update_fields:
            kwargs["update_fields"] = {*update_fields, "reference_digest"}
        super().save(*args, **kwargs)


class Dossier(models.Model):
    """One credit request: an applicant, an amount, the data to score it, and the decision."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SCORED = "scored", "Scored"
        FAILED = "failed", "Failed"

    class Origin(models.TextChoices):
        API = "api", "Partner API"
        HISTORY = "history", "Historical book"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.ForeignKey(
        "riskoffice.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="dossiers"
    )
    # The API client that asked for it: sandbox allowances and monthly usage are counted per client.
    api_client = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="dossiers"
    )
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.API)
    segment = models.CharField(max_length=3, choices=Segment.choices, default=Segment.B2B)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.PROTECT, related_name="dossiers")
    individual = models.ForeignKey(Individual, null=True, blank=True, on_delete=models.PROTECT, related_name="dossiers")
    requested_amount = models.DecimalField(max_digits=14, decimal_places=2)
    # Open-banking tokens, encrypted at rest (AES-256-CBC + HMAC via django-cryptography).
    bank_tokens_json = encrypt(models.TextField(default="[]"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    status_detail = models.CharField(max_length=300, blank=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decision_overridden = models.BooleanField(default=False)
    # Set when the dossier's personal data was anonymised (erasure or end of retention).
    anonymised_at = models.DateTimeField(null=True, blank=True)
    # The applicant's name and NAF code as this dossier's own sources gave them: a sandbox dossier's
    # invented identity stays here and never reaches the Company row that every partner shares.
    applicant_name = models.CharField(max_length=200, blank=True)
    naf_code = models.CharField(max_length=6, blank=True)
    # A scorer (a worker's batch, or the request that waits for its score) holds a pending dossier
    # until this time; a scorer that dies lets it go when it passes (dossiers.batch).
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Scoring attempts so far: a dossier that fails SCORING_MAX_ATTEMPTS times becomes failed.
    attempts = models.PositiveSmallIntegerField(default=0)
    # The sweep that re-enqueues a pending dossier whose message was lost backs off (riskoffice.queueing).
    requeues = models.PositiveSmallIntegerField(default=0)
    requeue_at = models.DateTimeField(null=True, blank=True)
    # The analyst who took the dossier from the queue ("take"), and when.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="assigned_dossiers"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The queue's "assigned to me" tab.
            models.Index(fields=["assigned_to", "-created_at"], name="dossier_assigned_created_idx"),
            # The company page and the exposure per SIREN: a company's dossiers, newest first.
            models.Index(fields=["company", "-created_at"], name="dossier_company_created_idx"),
            # The analyst queue (every status, newest first) and the usage page's month ranges.
            models.Index(fields=["-created_at"], name="dossier_created_idx"),
            # The analyst queue and the stalled-dossier sweep: dossiers by status, oldest first.
            models.Index(fields=["status", "created_at"], name="dossier_status_created_idx"),
            # A partner's dossiers (API scoping), newest first.
            models.Index(fields=["partner", "-created_at"], name="dossier_partner_created_idx"),
            # A client's sandbox allowance and monthly usage.
            models.Index(fields=["api_client", "created_at"], name="dossier_client_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(requested_amount__gt=0),
                name="dossier_amount_positive",
                violation_error_message="The requested amount must be positive.",
            ),
            models.CheckConstraint(
                condition=models.Q(segment="b2b", company__isnull=False, individual__isnull=True)
                | models.Q(segment="b2c", individual__isnull=False, company__isnull=True),
                name="dossier_applicant_matches_segment",
                violation_error_message="A B2B dossier names a company, a B2C dossier an individual.",
            ),
            models.CheckConstraint(
                condition=models.Q(decision_overridden=False) | ~models.Q(decision=""),
                name="dossier_override_has_decision",
                violation_error_message="An overridden dossier carries a decision.",
            ),
            models.CheckConstraint(
                condition=models.Q(assigned_to__isnull=True, assigned_at__isnull=True)
                | models.Q(assigned_to__isnull=False, assigned_at__isnull=False),
                name="dossier_assignment_whole",
                violation_error_message="An assigned dossier names the analyst and the time it was taken.",
            ),
        ]

    def __str__(self) -> str:
        return f"Dossier {self.short_id} — {self.applicant_label}"

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    @property
    def applicant_label(self) -> str:
        if self.company_id:
            return f"{self.applicant_name or self.company.name or 'Company'} ({self.company.siren})"
        return str(self.individual) if self.individual_id else "—"

    @property
    def bank_tokens(self) -> list[str]:
        return json.loads(self.bank_tokens_json or "[]")


class OverrideReason(models.Model):
    """A reason code an analyst picks when overriding a decision; senior analysts and admins keep the list."""

    code = models.SlugField(max_length=40, unique=True)
    label_fr = models.CharField(max_length=200)
    label_en = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True, help_text="Inactive codes stay on past overrides, not in the form.")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.label_fr}"


class Override(models.Model):
    """An analyst replacing the recommended decision, with a coded reason; never an ordinary approval.

    One that raises exposure waits for a second, senior analyst (four eyes): it is ``pending`` and
    the decision in force does not change until it is ``approved``. Others are ``final`` at once.
    """

    class Status(models.TextChoices):
        FINAL = "final", _("In force")
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        # A re-score replaced the score the override was about before it was approved.
        WITHDRAWN = "withdrawn", _("Withdrawn")

    dossier = models.ForeignKey(Dossier, on_delete=models.PROTECT, related_name="overrides")
    from_decision = models.CharField(max_length=10, choices=Decision.choices)
    to_decision = models.CharField(max_length=10, choices=Decision.choices)
    reason_code = models.ForeignKey(
        OverrideReason, null=True, blank=True, on_delete=models.PROTECT, related_name="overrides"
    )
    reason = encrypt(models.TextField())  # analyst free text: encrypted (riskoffice/crypto.py)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FINAL)
    # Why it needs four eyes (codes, docs/backoffice.md): empty for an override that is final at once.
    approval_reasons = models.JSONField(default=list, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = encrypt(models.TextField(blank=True))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The queue's "awaiting approval" tab.
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="override_pending_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(from_decision=models.F("to_decision")),
                name="override_changes_decision",
                violation_error_message="An override changes the decision.",
            ),
            models.UniqueConstraint(
                fields=["dossier"],
                condition=models.Q(status="pending"),
                name="override_one_pending_per_dossier",
                violation_error_message="A dossier has one override awaiting approval at a time.",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["approved", "rejected"], reviewed_by__isnull=False, reviewed_at__isnull=False
                )
                | (~models.Q(status__in=["approved", "rejected"]) & models.Q(reviewed_by__isnull=True)),
                name="override_reviewed_when_decided",
                violation_error_message="An approved or rejected override names its reviewer; no other does.",
            ),
            models.CheckConstraint(
                condition=models.Q(reviewed_by__isnull=True) | ~models.Q(reviewed_by=models.F("decided_by")),
                name="override_four_eyes",
                violation_error_message="An override is approved or rejected by someone other than its author.",
            ),
        ]


class Challenge(models.Model):
    """An analyst disputing the recommendation: corrected inputs, a justification, the source document.

    ``corrections`` records what changed, before and after (requested amount, a statement recorded,
    data points supplied or corrected); the re-score it asked for is the score that names it.
    """

    dossier = models.ForeignKey(Dossier, on_delete=models.PROTECT, related_name="challenges")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    justification = encrypt(models.TextField())  # analyst free text: encrypted
    source_reference = models.CharField(max_length=200, help_text="The document the corrections come from.")
    corrections = models.JSONField(default=dict, blank=True)
    # Data points the analyst supplied or corrected, by feature name: read by every later scoring.
    feature_values = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(source_reference=""),
                name="challenge_has_source",
                violation_error_message="A challenge names the document its corrections come from.",
            ),
        ]


class Outcome(models.Model):
    """What happened to the credit: repaid, defaulted or written off. Labels for the next model.

    Defaulted and written off are both defaults for the model; a defaulted credit may later be written off.
    """

    class Status(models.TextChoices):
        REPAID = "repaid", "Repaid"
        DEFAULTED = "defaulted", "Defaulted"
        WRITTEN_OFF = "written_off", "Written off"

    DEFAULT_STATUSES = DEFAULT_OUTCOMES

    dossier = models.OneToOneField(Dossier, on_delete=models.PROTECT, related_name="outcome")
    status = models.CharField(max_length=12, choices=Status.choices)
    occurred_on = models.DateField()
    # Amounts in euros, each optional except the amount written off: granted, still owed at default, written off.
    granted_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    outstanding_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    written_off_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reported_by_client = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["repaid", "defaulted", "written_off"]),
                name="outcome_status_valid",
                violation_error_message="An outcome is repaid, defaulted or written off.",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="written_off") | models.Q(written_off_amount__isnull=False),
                name="outcome_write_off_has_amount",
                violation_error_message="A write-off states the amount written off.",
            ),
            models.CheckConstraint(
                condition=(models.Q(granted_amount__isnull=True) | models.Q(granted_amount__gte=0))
                & (models.Q(outstanding_amount__isnull=True) | models.Q(outstanding_amount__gte=0))
                & (models.Q(written_off_amount__isnull=True) | models.Q(written_off_amount__gte=0)),
                name="outcome_amounts_not_negative",
                violation_error_message="Outcome amounts cannot be negative.",
            ),
        ]

    @property
    def is_default(self) -> bool:
        return self.status in self.DEFAULT_STATUSES


class OutcomeCorrection(models.Model):
    """Why an outcome was corrected: the analyst's free text, encrypted at rest. The audit row names it by id."""

    outcome = models.ForeignKey(Outcome, on_delete=models.CASCADE, related_name="corrections")
    reason = encrypt(models.TextField())
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Correction #{self.pk} of outcome {self.outcome_id}"


class OutcomeImport(models.Model):
    """A CSV of outcomes imported from the back-office, with its report row by row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    filename = models.CharField(max_length=200)
    encoding = models.CharField(max_length=20, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    rows_total = models.PositiveIntegerField(default=0)
    rows_recorded = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    # One entry per data row: {"line": n, "dossier": ..., "result": recorded|corrected|rejected, "errors": {...}}
    report = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rows_total__gte=models.F("rows_recorded") + models.F("rows_rejected")),
                name="outcomeimport_rows_add_up",
                violation_error_message="Recorded and rejected rows cannot exceed the rows in the file.",
            ),
        ]
