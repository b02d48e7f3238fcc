"""The access log: who read or changed what, when, through which door; append-only and hash-chained.

Each row carries ``prev_hash`` (the previous row's ``hash``) and ``hash`` = SHA-256 over ``prev_hash`` followed by
the row's canonical serialisation (``riskoffice.accesslog.chain.canonical``). Changing, removing or slipping in a
row breaks the chain where it happened; ``manage.py verify_access_log`` finds it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy


class Channel(models.TextChoices):
    BACK_OFFICE = "back_office", gettext_lazy("Back-office")
    ADMIN = "admin", gettext_lazy("Administration")
    API = "api", gettext_lazy("Partner API")
    TOKEN = "token", gettext_lazy("Token endpoint")
    COMMAND = "command", gettext_lazy("Command or task")


class Action(models.TextChoices):
    READ = "read", gettext_lazy("Read")
    CHANGE = "change", gettext_lazy("Change")
    EXPORT = "export", gettext_lazy("Export")
    LOGIN = "login", gettext_lazy("Sign-in")
    LOGIN_FAILED = "login_failed", gettext_lazy("Failed sign-in")
    LOGOUT = "logout", gettext_lazy("Sign-out")
    PURGE = "purge", gettext_lazy("Retention purge")


class AccessLogEntry(models.Model):
    """One access. Never updated nor deleted (PostgreSQL triggers refuse it), except by the retention purge."""

    at = models.DateTimeField()
    # PROTECT, and no SET_NULL: a changed actor id would break the row's hash.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_client = models.ForeignKey(
        "riskoffice.ApiClient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The username, or the client's application name and client id, as they were then.
    actor_label = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    action = models.CharField(max_length=20, choices=Action.choices)
    method = models.CharField(max_length=10, blank=True)
    # The path without its query string, but for a few harmless parameters (riskoffice.accesslog.middleware).
    path = models.CharField(max_length=500, blank=True)
    route = models.CharField(max_length=200, blank=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True, help_text="The one object a detail page or change shows.")
    object_ids = models.JSONField(default=list, blank=True, help_text="The objects a list or an export showed.")
    outcome = models.PositiveSmallIntegerField(null=True, blank=True, help_text="The HTTP status of the answer.")
    ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = gettext_lazy("access log entry")
        verbose_name_plural = gettext_lazy("access log entries")
        indexes = [
            # The auditor's search (riskoffice.accesslog.views), newest first by id, each filter on its own.
            models.Index(fields=["at"], name="accesslog_at_idx"),
            models.Index(fields=["actor_label", "at"], name="accesslog_actor_idx"),
            models.Index(fields=["object_id", "at"], name="accesslog_object_idx"),
            models.Index(fields=["channel", "action", "at"], name="accesslog_channel_idx"),
            models.Index(fields=["outcome", "at"], name="accesslog_outcome_idx"),
            models.Index(fields=["path", "at"], name="accesslog_path_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.path}"


class AccessLogCheckpoint(models.Model):
    """Where a retention purge cut the chain: the first row kept must follow ``last_hash``. Append-only too."""

    at = models.DateTimeField(auto_now_add=True)
    cutoff = models.DateTimeField(help_text="Entries older than this were deleted.")
    purged_through_id = models.BigIntegerField(help_text="The id of the last deleted entry.")
    last_hash = models.CharField(max_length=64, help_text="The hash of the last deleted entry.")
    purged_count = models.PositiveIntegerField()

    class Meta:
        verbose_name = gettext_lazy("access log checkpoint")
        verbose_name_plural = gettext_lazy("access log checkpoints")

    def __str__(self) -> str:
        return f"checkpoint through #{self.purged_through_id}"
