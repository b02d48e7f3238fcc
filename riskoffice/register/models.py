"""The GDPR Article 30 record of processing activities, and the retention period of each data category.

Admins keep the register in Django's admin; every change goes through ``riskoffice.register.services``, which
writes an immutable revision and an audit row. The retention task reads each data category's period.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length, Trim
from django.db.models.lookups import GreaterThan
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


class DataCategory(models.Model):
    """A kind of data the product keeps, how long, why that long, and what happens when the period has run."""

    class Action(models.TextChoices):
        DELETE = "delete", _("Delete")
        ANONYMISE = "anonymise", _("Anonymise")
        KEEP = "keep", _("Keep (no automatic action)")

    code = models.SlugField(
        _("code"), max_length=50, unique=True, help_text=_("The retention task's handler is chosen by this code.")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    retention_days = models.PositiveIntegerField(
        _("retention (days)"), help_text=_("How long the data is kept, counted as the category's description says.")
    )
    retention_basis = models.TextField(
        _("basis of the period"), help_text=_("Why this period: the legal text or the CNIL recommendation.")
    )
    action = models.CharField(_("action at the end of the period"), max_length=10, choices=Action.choices)
    is_active = models.BooleanField(
        _("active"), default=True, help_text=_("An inactive category is not applied by the retention task.")
    )
    # The cutoff of the last real run, for handlers that can only tell old rows by reading them (encrypted
    # columns): rows older than it were already handled, so the next run reads only the rows after it.
    last_cutoff = models.DateTimeField(null=True, blank=True, editable=False)
    last_applied_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("data category")
        verbose_name_plural = _("data categories")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(retention_days__gt=0),
                name="datacategory_retention_positive",
                violation_error_message=_("The retention period must be at least one day."),
            ),
            models.CheckConstraint(
                condition=~models.Q(retention_basis=""),
                name="datacategory_has_basis",
                violation_error_message=_("State the basis of the retention period."),
            ),
            models.CheckConstraint(
                condition=~models.Q(name=""),
                name="datacategory_has_name",
                violation_error_message=_("A data category needs a name."),
            ),
            models.CheckConstraint(
                condition=models.Q(action__in=["delete", "anonymise", "keep"]),
                name="datacategory_action_valid",
                violation_error_message=_("The action is delete, anonymise or keep."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.retention_days} d)"


class LegalBasis(models.TextChoices):
    """GDPR Article 6(1)."""

    CONSENT = "consent", _("Consent (Art. 6(1)(a))")
    CONTRACT = "contract", _("Contract (Art. 6(1)(b))")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation (Art. 6(1)(c))")
    VITAL_INTERESTS = "vital_interests", _("Vital interests (Art. 6(1)(d))")
    PUBLIC_TASK = "public_task", _("Public task (Art. 6(1)(e))")
    LEGITIMATE_INTERESTS = "legitimate_interests", _("Legitimate interests (Art. 6(1)(f))")


# Art. 30(1) text fields that may never be empty: each has a named database constraint of its own.
MANDATORY_TEXT_FIELDS = (
    "name",
    "reference",
    "controller_name",
    "controller_contact",
    "dpo_contact",
    "purposes",
    "legal_basis_detail",
    "data_subject_categories",
    "personal_data_categories",
    "recipients",
    "retention_summary",
    "security_measures",
    "data_sources",
)


def _not_empty(field: str) -> models.CheckConstraint:
    # Trimmed, so a field of spaces is as empty as a blank one.
    return models.CheckConstraint(
        condition=GreaterThan(Length(Trim(field)), 0),
        name=f"activity_{field}_not_empty",
        violation_error_message=format_lazy(
            _("A processing activity needs its {field} (GDPR Art. 30)."), field=field.replace("_", " ")
        ),
    )


class ProcessingActivity(models.Model):
    """One entry of the record of processing activities (GDPR Art. 30(1)), every field it requires."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    reference = models.CharField(_("reference"), max_length=30, unique=True, help_text=_("e.g. PA-01"))
    controller_name = models.CharField(_("controller"), max_length=200)
    controller_contact = models.TextField(_("controller's contact details"))
    dpo_contact = models.TextField(_("data protection officer's contact"))
    joint_controller = models.TextField(_("joint controller"), blank=True)
    representative = models.TextField(_("controller's representative"), blank=True)
    purposes = models.TextField(_("purposes of the processing"))
    legal_basis = models.CharField(_("legal basis"), max_length=25, choices=LegalBasis.choices)
    legal_basis_detail = models.TextField(_("legal basis in detail"))
    data_subject_categories = models.TextField(_("categories of data subjects"))
    personal_data_categories = models.TextField(_("categories of personal data"))
    recipients = models.TextField(_("categories of recipients"))
    recipient_partners = models.ManyToManyField(
        "riskoffice.Partner",
        blank=True,
        related_name="processing_activities",
        verbose_name=_("recipients: which partners"),
    )
    third_country_transfers = models.BooleanField(_("transfers to third countries"), default=False)
    transfer_countries = models.TextField(_("third countries or international organisations"), blank=True)
    transfer_safeguards = models.TextField(_("safeguards of the transfers"), blank=True)
    retention_categories = models.ManyToManyField(
        DataCategory, blank=True, related_name="activities", verbose_name=_("data categories and their retention")
    )
    retention_summary = models.TextField(_("retention periods (summary)"))
    security_measures = models.TextField(_("security measures (Art. 32)"))
    automated_decision = models.BooleanField(
        _("automated decision-making (Art. 22)"),
        default=False,
        help_text=_("Decisions based solely on automated processing, profiling included."),
    )
    automated_decision_logic = models.TextField(
        _("logic involved, significance and consequences"),
        blank=True,
        help_text=_("Required when the activity makes automated decisions (Art. 13(2)(f), 15(1)(h), 22)."),
    )
    data_sources = models.TextField(_("sources of the data"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    class Meta:
        ordering = ["reference"]
        verbose_name = _("processing activity")
        verbose_name_plural = _("processing activities")
        constraints = [
            *(_not_empty(field) for field in MANDATORY_TEXT_FIELDS),
            models.CheckConstraint(
                condition=models.Q(legal_basis__in=[choice.value for choice in LegalBasis]),
                name="activity_legal_basis_valid",
                violation_error_message=_("The legal basis is one of GDPR Art. 6(1)."),
            ),
            models.CheckConstraint(
                condition=models.Q(third_country_transfers=False)
                | (~models.Q(transfer_countries="") & ~models.Q(transfer_safeguards="")),
                name="activity_transfers_documented",
                violation_error_message=_("Transfers to third countries name the countries and their safeguards."),
            ),
            models.CheckConstraint(
                condition=models.Q(automated_decision=False) | ~models.Q(automated_decision_logic=""),
                name="activity_automated_decision_has_logic",
                violation_error_message=_("An automated decision describes the logic involved."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} — {self.name}"

    def clean(self) -> None:
        # The same rules as the constraints, on the field they are about, so a form shows them there.
        errors: dict[str, str] = {}
        if self.third_country_transfers:
            if not (self.transfer_countries or "").strip():
                errors["transfer_countries"] = _("Name the countries the data is transferred to.")
            if not (self.transfer_safeguards or "").strip():
                errors["transfer_safeguards"] = _(
                    "State the safeguards of the transfers (adequacy decision, standard contractual clauses…)."
                )
        if self.automated_decision and not (self.automated_decision_logic or "").strip():
            errors["automated_decision_logic"] = _(
                "Describe the logic involved, its significance and its consequences for the person."
            )
        for field in MANDATORY_TEXT_FIELDS:
            value = getattr(self, field)
            if value and not str(value).strip():
                errors[field] = _("This field cannot be blank.")
        if errors:
            raise ValidationError(errors)


class ProcessingActivityRevision(models.Model):
    """What an activity said after one change: every field (M2M by name), who changed it, when, and what changed.

    Written by the services only, never edited: the history of the register, for the supervisory authority.
    """

    activity = models.ForeignKey(ProcessingActivity, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField(_("revision"))
    snapshot = models.JSONField(_("snapshot"))
    changed_fields = models.JSONField(_("changed fields"), default=list)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_by_system = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        ordering = ["activity", "-number"]
        verbose_name = _("revision")
        verbose_name_plural = _("revisions")
        constraints = [
            models.UniqueConstraint(
                fields=["activity", "number"],
                name="activity_revision_unique_number",
                violation_error_message=_("An activity has one revision per number."),
            ),
            models.CheckConstraint(
                condition=models.Q(changed_by__isnull=False) | ~models.Q(changed_by_system=""),
                name="activity_revision_has_author",
                violation_error_message=_("A revision names who made the change."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity_id} r{self.number}"

    @property
    def author(self) -> str:
        return self.changed_by.get_username() if self.changed_by_id else self.changed_by_system
