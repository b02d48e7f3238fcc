"""Webhook endpoints partners register, and the outbox of deliveries to them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django_cryptography.fields import encrypt


class WebhookEndpoint(models.Model):
    """A partner's receiver and its subscription: which event types, sent at once or in a daily digest."""

    class Mode(models.TextChoices):
        IMMEDIATE = "immediate", "Immediate"
        DIGEST = "digest", "Daily digest (critical events still immediate)"

    partner = models.ForeignKey("riskoffice.Partner", on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    # Standard Webhooks secret ("whsec_" + base64), encrypted at rest; shown once at creation.
    secret = encrypt(models.CharField(max_length=100))
    # During a rotation the previous secret signs too, while previous_secret_expires_at is in the future
    # (an encrypted column cannot take part in a CHECK constraint: the service keeps the two together).
    previous_secret = encrypt(models.CharField(max_length=100, blank=True, default=""))
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    event_types = models.JSONField(default=list, help_text="Subscribed event types; empty means all.")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.IMMEDIATE)
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Paused by the partner or an admin: deliveries wait (pending), nothing is sent until resumed.
    paused_at = models.DateTimeField(null=True, blank=True)
    # The first failed attempt since the last success: failing longer than WEBHOOK_DISABLE_AFTER_DAYS disables.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_digest_at = models.DateTimeField(null=True, blank=True)
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
        HELD = "held", "Held for the daily digest"
        DIGESTED = "digested", "Sent in a digest"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The webhook-id header: the same across retries, so consumers can deduplicate.
    message_id = models.CharField(max_length=40, unique=True, default="")
    # The event's own id ("evt_…"), the same in every endpoint's copy: the payload's "id".
    event_id = models.CharField(max_length=40, blank=True, default="")
    event_type = models.CharField(max_length=50)
    # A held event, once sent: the digest delivery that carried it.
    digest = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="digested_events")
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
            # An endpoint's delivery log, newest first; its held events for the digest.
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_log_idx"),
            models.Index(fields=["endpoint", "status"], name="delivery_endpoint_status_idx"),
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

    @staticmethod
    def new_event_id() -> str:
        return f"evt_{uuid.uuid4().hex}"


class DeliveryAttempt(models.Model):
    """One HTTP attempt at a delivery: the endpoint's delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField(help_text="1 for the first attempt, counting redeliveries on.")
    attempted_at = models.DateTimeField()
    address = models.CharField(max_length=64, blank=True, help_text="The IP address connected to.")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=300, blank=True)
    redelivery = models.BooleanField(default=False, help_text="Asked for by the partner or an admin.")

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["delivery", "number"],
                name="attempt_unique_number",
                violation_error_message="An attempt is logged once.",
            ),
        ]


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
    # Found by a scheduled check (BODACC): the source's own id of the notice, so a notice is recorded once.
    external_id = models.CharField(max_length=100, blank=True)
    # Recorded by an analyst in the back-office.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
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
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="event_unique_external_id",
                violation_error_message="This notice is already on file.",
            ),
        ]


class WatchedCompany(models.Model):
    """A company a partner asked to watch (``/api/v1/monitoring``); open exposure is watched without asking."""

    partner = models.ForeignKey("riskoffice.Partner", on_delete=models.CASCADE, related_name="watched_companies")
    company = models.ForeignKey("dossiers.Company", on_delete=models.CASCADE, related_name="watchers")
    created_by = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "company"],
                name="watch_unique_per_partner",
                violation_error_message="This partner already watches this company.",
            ),
        ]
        indexes = [models.Index(fields=["company"], name="watch_company_idx")]


class Alert(models.Model):
    """Something analysts must look at: a score drop, a band change, or a negative event on a monitored company."""

    class Kind(models.TextChoices):
        SCORE_DROPPED = "score_dropped", "Score dropped"
        BAND_CHANGED = "band_changed", "Band changed"
        NEGATIVE_EVENT = "negative_event", "Negative event"
        # A champion's live population drifted from its training reference (PSI): senior analysts only.
        MODEL_DRIFT = "model_drift", "Model drift"

    class Severity(models.TextChoices):
        CRITICAL = "critical", "Critical"
        WARNING = "warning", "Warning"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    # What the alert is about, once: "cscore:<id>" for a re-score, "event:<id>" for a negative event.
    dedup_key = models.CharField(max_length=100, unique=True)
    company = models.ForeignKey(
        "dossiers.Company", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    individual = models.ForeignKey(
        "dossiers.Individual", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    # The dossier an analyst opens from the alert: the subject's latest one with open exposure, else its latest.
    dossier = models.ForeignKey(
        "dossiers.Dossier", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    negative_event = models.ForeignKey(
        NegativeEvent, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    company_score = models.ForeignKey(
        "scoring.CompanyScore", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    previous_score = models.SmallIntegerField(null=True, blank=True)
    score = models.SmallIntegerField(null=True, blank=True)
    previous_band = models.CharField(max_length=1, blank=True)
    band = models.CharField(max_length=1, blank=True)
    event_kind = models.CharField(max_length=30, blank=True, help_text="The negative event's kind.")
    drift_check = models.ForeignKey(
        "scoring.DriftCheck", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The inbox: unacknowledged first, newest first; the unread count in the navigation.
            models.Index(fields=["acknowledged_at", "-created_at"], name="alert_inbox_idx"),
            models.Index(fields=["company", "-created_at"], name="alert_company_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(company__isnull=False)
                | models.Q(individual__isnull=False)
                | models.Q(kind="model_drift"),
                name="alert_has_subject",
                violation_error_message="An alert is about a company, an individual or a model's drift.",
            ),
            models.CheckConstraint(
                condition=models.Q(acknowledged_at__isnull=True, acknowledged_by__isnull=True)
                | models.Q(acknowledged_at__isnull=False, acknowledged_by__isnull=False),
                name="alert_acknowledged_by_someone",
                violation_error_message="An acknowledged alert names who acknowledged it.",
            ),
        ]
