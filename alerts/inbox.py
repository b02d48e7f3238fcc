"""The analysts' alert inbox: what it lists, how each alert reads, and acknowledging.

The inbox is the team's, not a person's: "unread" means no one has acknowledged the alert yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from riskoffice.audit import Actor, audit_record
from riskoffice.roles import CAN_DECIDE, has_any_role

from .models import Alert, NegativeEvent
from .selectors import alerts_for_user

ACKNOWLEDGED = "alert.acknowledged"
# The model's labels are not translated; the back-office's are.
EVENT_KIND_LABELS = {
    NegativeEvent.Kind.INSOLVENCY_PROCEEDING: gettext_lazy("Insolvency proceeding"),
    NegativeEvent.Kind.PAYMENT_DELAY: gettext_lazy("Payment delay"),
    NegativeEvent.Kind.SEPA_INCIDENT: gettext_lazy("SEPA incident"),
    NegativeEvent.Kind.DEBT_COLLECTION: gettext_lazy("Debt collection"),
    NegativeEvent.Kind.SCORE_DROP: gettext_lazy("Score drop"),
    NegativeEvent.Kind.ACCOUNTS_PUBLISHED: gettext_lazy("Accounts published"),
}
KIND_LABELS = {
    Alert.Kind.SCORE_DROPPED: gettext_lazy("Score dropped"),
    Alert.Kind.BAND_CHANGED: gettext_lazy("Band changed"),
    Alert.Kind.NEGATIVE_EVENT: gettext_lazy("Negative event"),
    Alert.Kind.MODEL_DRIFT: gettext_lazy("Model drift"),
}
SEVERITY_LABELS = {Alert.Severity.CRITICAL: gettext_lazy("Critical"), Alert.Severity.WARNING: gettext_lazy("Warning")}
# Bulk acknowledgement takes at most this many alerts at once (one page of the inbox at its largest).
BULK_MAX = 100


# --- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilters:
    show: str = "unread"  # "unread" or "all"
    kind: str = ""
    severity: str = ""
    company_id: int | None = None


def inbox_alerts(user: Any, filters: InboxFilters) -> QuerySet[Alert]:
    """The inbox, unacknowledged first then newest first (alert_inbox_idx), with what each row shows."""
    rows = alerts_for_user(user).select_related(
        "company", "negative_event", "acknowledged_by", "dossier", "drift_check"
    )
    rows = rows.only(
        *(f.name for f in Alert._meta.concrete_fields),
        "company__siren",
        "company__name",
        "company__recommended_limit",
        "negative_event__kind",
        "negative_event__occurred_on",
        "negative_event__source",
        "negative_event__amount",
        "negative_event__days_late",
        "negative_event__reason_code",
        "acknowledged_by__username",
        "dossier__id",
        "dossier__applicant_name",
        "drift_check__segment",
        "drift_check__psi_max",
        "drift_check__psi_max_of",
        "drift_check__scores_compared",
        "drift_check__window_days",
    )
    if filters.show != "all":
        rows = rows.filter(acknowledged_at__isnull=True)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.severity:
        rows = rows.filter(severity=filters.severity)
    if filters.company_id is not None:
        rows = rows.filter(company_id=filters.company_id)
    return rows.order_by(F("acknowledged_at").desc(nulls_first=True), "-created_at", "-pk")


# The navigation counts unread alerts up to this many and shows "99+" beyond: every page pays for the count,
# so it reads at most this many index entries however many alerts wait.
UNREAD_CAP = 99


def unread_count(user: Any) -> int:
    """Alerts of ``user``'s inbox no one has acknowledged, up to UNREAD_CAP + 1: one capped COUNT over
    alert_inbox_idx (a model's drift counts only for senior analysts, who alone see it)."""
    return alerts_for_user(user).filter(acknowledged_at__isnull=True).order_by()[: UNREAD_CAP + 1].count()


def _event_source(source: str) -> str:
    if source == "bodacc":
        return "BODACC"
    if source == "analyst":
        return _("an analyst")
    if source.startswith("partner"):
        return _("a partner")
    return source


def alert_what(alert: Alert) -> str:
    """What happened, in the words of the inbox and the e-mail."""
    if alert.kind == Alert.Kind.MODEL_DRIFT:
        from .notify import drift_summary

        return drift_summary(alert)
    if alert.kind == Alert.Kind.NEGATIVE_EVENT:
        event: NegativeEvent | None = alert.negative_event
        kind = str(EVENT_KIND_LABELS.get(event.kind if event else alert.event_kind, _("Negative event")))
        if event is None:
            return kind
        parts = [
            _("%(kind)s on %(date)s, reported by %(source)s")
            % {"kind": kind, "date": event.occurred_on.isoformat(), "source": _event_source(event.source)}
        ]
        if event.amount is not None:
            parts.append(_("%(amount)s €") % {"amount": event.amount})
        if event.days_late:
            parts.append(_("%(days)s days late") % {"days": event.days_late})
        if event.reason_code:
            parts.append(event.reason_code)
        return " · ".join(parts)
    parts = []
    if alert.previous_score is not None and alert.score is not None:
        parts.append(_("score %(before)s → %(after)s") % {"before": alert.previous_score, "after": alert.score})
    if alert.previous_band and alert.band and alert.previous_band != alert.band:
        parts.append(_("band %(before)s → %(after)s") % {"before": alert.previous_band, "after": alert.band})
    return ", ".join(parts) or str(KIND_LABELS.get(alert.kind, alert.kind))


# --- acting -----------------------------------------------------------------------------------------------------


def _require_analyst(user: Any) -> None:
    if not has_any_role(user, CAN_DECIDE):
        raise PermissionDenied(_("Only analysts may act on alerts."))


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: Any, now: datetime | None = None, quiet: bool = False) -> bool:
    """Acknowledge ``alert`` for the team; audited. Conditional: of two analysts acting at once, one wins.

    Already acknowledged: a ValidationError naming who did, or False when ``quiet`` (lowering a limit from an
    alert someone just acknowledged still lowers the limit).
    """
    _require_analyst(user)
    now = now or timezone.now()
    won = Alert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, acknowledged_by=user
    )
    if not won:
        if quiet:
            return False
        done = Alert.objects.filter(pk=alert.pk).select_related("acknowledged_by").first()
        who = done.acknowledged_by.get_username() if done and done.acknowledged_by else "?"
        raise ValidationError(_("This alert was already acknowledged by %(user)s.") % {"user": who})
    alert.acknowledged_at, alert.acknowledged_by = now, user
    audit_record(
        actor=Actor(user=user),
        action=ACKNOWLEDGED,
        obj=alert,
        before={"acknowledged_at": None},
        after={"acknowledged_at": now.isoformat(), "kind": alert.kind, "company": alert.company_id},
    )
    return True


@transaction.atomic
def alerts_acknowledge(*, alert_ids: list[int], user: Any, now: datetime | None = None) -> int:
    """Acknowledge the still-unread alerts among ``alert_ids`` (at most BULK_MAX); how many this user acknowledged."""
    _require_analyst(user)
    ids = sorted(set(alert_ids))
    if len(ids) > BULK_MAX:
        raise ValidationError(_("Acknowledge at most %(count)d alerts at once.") % {"count": BULK_MAX})
    now = now or timezone.now()
    done = 0
    for alert in alerts_for_user(user).filter(pk__in=ids, acknowledged_at__isnull=True).order_by("pk"):
        done += alert_acknowledge(alert=alert, user=user, now=now, quiet=True)
    return done
