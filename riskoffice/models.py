"""Cross-cutting models: partners and their API clients, the audit trail, worker heartbeats."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Partner(models.Model):
    """An organisation that calls the API (a marketplace, an ERP, an insurer, a lender)."""

    name = models.CharField(max_length=200, unique=True)
    is_sandbox = models.BooleanField(
        default=False,
        help_text="Sandbox partners are scored from the deterministic sandbox sources only, within an allowance.",
    )
    # Told when one of the partner's webhook endpoints is disabled (failing too long, or 410 Gone).
    technical_contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ApiClient(models.Model):
    """Binds an OAuth application to the partner it acts for and the scopes it may ask for."""

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="api_client"
    )
    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="api_clients")
    allowed_scopes = models.JSONField(default=list, help_text="Scopes this client may request.")
    is_active = models.BooleanField(
        default=True, help_text="A disabled client gets no token, and the tokens it holds are revoked."
    )
    sandbox_allowance = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Sandbox only: scores allowed over the allowance window; blank for the default (SANDBOX_ALLOWANCE).",
    )
    # Lifted by an admin (a load test, a partner's certification run): no allowance is counted, and
    # none of the client's requests waits for another's (the count takes a lock on the client).
    sandbox_unlimited = models.BooleanField(
        default=False, help_text="Sandbox only: no allowance at all (e.g. a load-test client)."
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="API requests per minute; blank for the default (API_RATE_LIMIT_PER_MINUTE)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.partner} / {self.application.name}"


class IdempotencyKey(models.Model):
    """A partner's ``Idempotency-Key`` on a POST: the request it stood for and, once answered, the answer.

    Keys are scoped per client and kept ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 h by default).
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    # SHA-256 of the method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(max_length=64)
    # Null while the first request is still being answered ("in flight").
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_key_unique_per_client"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class AuditEvent(models.Model):
    """Who did what to which object, with the state before and after. Written by services only."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_system = models.CharField(max_length=100, blank=True, help_text="A task or command, when no person acted.")
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The dossier page's history: audit events of one object, newest first.
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_object_idx"),
            # The admin's audit trail: its action filter's values, and one action's events, newest first.
            models.Index(fields=["action", "-at"], name="audit_action_idx"),
            # The auditor's audit-trail search by object id alone (riskoffice.accesslog.selectors.audit_search).
            models.Index(fields=["object_id", "-at"], name="audit_object_id_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(actor_user__isnull=False)
                | models.Q(actor_client__isnull=False)
                | ~models.Q(actor_system=""),
                name="audit_has_actor",
                violation_error_message="An audit event names who acted.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.object_type}:{self.object_id}"

    @property
    def actor_label(self) -> str:
        if self.actor_user_id:
            return self.actor_user.get_username()
        if self.actor_client_id:
            return f"API: {self.actor_client}"
        return self.actor_system


class Heartbeat(models.Model):
    """Last time a periodic task ran through the queue: /readyz proves workers consume tasks."""

    name = models.CharField(max_length=50, primary_key=True)
    beat_at = models.DateTimeField()
