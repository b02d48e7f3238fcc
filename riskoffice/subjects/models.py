"""Requests a data subject (or someone on their behalf) makes, tracked against the legal deadline."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_cryptography.fields import encrypt


class SubjectRequest(models.Model):
    """One data-subject request: access (Art. 15), erasure (Art. 17) or human review of a decision (Art. 22).

    Answered within one month of receipt (``due_at``), extendable by two months with a reason (Art. 12(3)).
    """

    class Kind(models.TextChoices):
        ACCESS = "access", _("Access")
        ERASURE = "erasure", _("Erasure")
        HUMAN_REVIEW = "human_review", _("Human review")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        COMPLETED = "completed", _("Completed")
        REFUSED = "refused", _("Refused")

    class Channel(models.TextChoices):
        PARTNER_API = "partner_api", _("Partner API")
        BACK_OFFICE = "back_office", _("Back-office")

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    channel = models.CharField(max_length=15, choices=Channel.choices)
    # The subject: a company (SIREN), an individual (a partner's reference), or one dossier (human review).
    company = models.ForeignKey(
        "dossiers.Company", null=True, blank=True, on_delete=models.PROTECT, related_name="subject_requests"
    )
    individual = models.ForeignKey(
        "dossiers.Individual", null=True, blank=True, on_delete=models.PROTECT, related_name="subject_requests"
    )
    dossier = models.ForeignKey(
        "dossiers.Dossier", null=True, blank=True, on_delete=models.PROTECT, related_name="subject_requests"
    )
    # Who received it: the partner's API client, or the back-office user who recorded it.
    requested_by_client = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The person's own words (their point of view, what they contest): personal, encrypted at rest.
    statement = encrypt(models.TextField(blank=True))
    received_at = models.DateTimeField()
    due_at = models.DateTimeField(help_text="One month after receipt, or later once extended with a reason.")
    extension_reason = encrypt(models.TextField(blank=True))
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # What was done: the human decision and its reasons, what was erased or kept and why.
    resolution = models.JSONField(default=dict, blank=True)
    resolution_note = encrypt(models.TextField(blank=True))  # an analyst's free text: encrypted at rest
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["due_at"]
        indexes = [
            # The list of requests to answer, soonest deadline first.
            models.Index(fields=["status", "due_at"], name="subjectrequest_status_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(company__isnull=False)
                | models.Q(individual__isnull=False)
                | models.Q(dossier__isnull=False),
                name="subjectrequest_has_subject",
                violation_error_message="A request is about a company, an individual or a dossier.",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind="human_review") | models.Q(dossier__isnull=False),
                name="subjectrequest_review_has_dossier",
                violation_error_message="A human review is about one dossier.",
            ),
            models.CheckConstraint(
                condition=models.Q(requested_by_client__isnull=False) | models.Q(requested_by_user__isnull=False),
                name="subjectrequest_has_requester",
                violation_error_message="A request names who received it.",
            ),
            models.CheckConstraint(
                condition=models.Q(status="open", completed_at__isnull=True)
                | (~models.Q(status="open") & models.Q(completed_at__isnull=False)),
                name="subjectrequest_completed_when_closed",
                violation_error_message="A closed request has a completion date, an open one none.",
            ),
            # At most one open human review per dossier: a second request joins the first.
            models.UniqueConstraint(
                fields=["dossier"],
                condition=models.Q(kind="human_review", status="open"),
                name="subjectrequest_one_open_review_per_dossier",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"
