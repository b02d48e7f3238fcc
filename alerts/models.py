"""Webhook endpoints partners register, and the outbox of deliveries to them."""

from __future__ import annotations

import uuid

from django.db import models
from django_cryptography.fields import encrypt


class WebhookEndpoint(models.Model):
    partner = models.ForeignKey("riskoffice.Partner", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Standard Webhooks secret ("whsec_" + base64), encrypted at rest; shown once at creation.
    secret = encrypt(models.CharField(max_length=100))
    event_types = models.JSONField(default=list, help_text="Subscribed event types; empty means all.")
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.partner}: {self.url}"

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One event for one endpoint: written in the transaction that caused it, delivered from here."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (retries exhausted)"
        CANCELLED = "cancelled", "Cancelled (endpoint disabled)"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The webhook-id header: the same across retries, so consumers can deduplicate.
    message_id = models.CharField(max_length=40, unique=True, default="")
    event_type = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The periodic sweep: pending deliveries whose next attempt is due.
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(message_id=""),
                name="delivery_has_message_id",
                violation_error_message="A delivery carries its webhook-id.",
            ),
        ]

    @staticmethod
    def new_message_id() -> str:
        return f"msg_{uuid.uuid4().hex}"


class NegativeEvent(models.Model):
    """A negative event on file about an applicant: reported by a partner, found in BODACC, or derived."""

    class Kind(models.TextChoices):
        INSOLVENCY_PROCEEDING = "insolvency_proceeding", "Insolvency proceeding"
        PAYMENT_DELAY = "payment_delay", "Payment delay"
        SEPA_INCIDENT = "sepa_incident", "SEPA incident"
        DEBT_COLLECTION = "debt_collection", "Debt collection"
        SCORE_DROP = "score_drop", "Score drop"
        ACCOUNTS_PUBLISHED = "accounts_published", "Accounts published"

    company = models.ForeignKey(
        "dossiers.Company", null=True, blank=True, on_delete=models.CASCADE, related_name="negative_events"
    )
    individual = models.ForeignKey(
        "dossiers.Individual", null=True, blank=True, on_delete=models.CASCADE, related_name="negative_events"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    occurred_on = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    days_late = models.PositiveIntegerField(null=True, blank=True)
    reason_code = models.CharField(max_length=20, blank=True, help_text="e.g. a SEPA return reason (AM04, MD06).")
    details = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=50, help_text="partner:<id>, bodacc, analyst…")
    # Reported through POST /api/v1/events: the client, and its own id for the event (de-duplication).
    reported_by = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    partner_event_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_on"]
        indexes = [
            # Scoring counts a company's events of the last 12 months.
            models.Index(fields=["company", "kind", "-occurred_on"], name="event_company_kind_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(company__isnull=False) | models.Q(individual__isnull=False),
                name="event_has_subject",
                violation_error_message="A negative event is about a company or an individual.",
            ),
            models.UniqueConstraint(
                fields=["reported_by", "partner_event_id"],
                condition=~models.Q(partner_event_id=""),
                name="event_unique_partner_event_id",
                violation_error_message="This event id was already reported by this client.",
            ),
        ]
