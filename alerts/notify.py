"""E-mail to analysts about new alerts: enqueued after commit, each alert e-mailed once.

The task claims the alerts it sends with a conditional update (``emailed_at`` set where it is still empty)
inside the transaction that sends: a second worker given the same ids waits on the row locks, then finds
them claimed and sends nothing; a send that fails rolls the claim back and the sweep tries again later.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from riskoffice.queueing import enqueue_on_commit
from riskoffice.roles import ANALYST, SENIOR_ANALYST

from .models import Alert

logger = logging.getLogger(__name__)

# One e-mail lists at most this many alerts; the rest are in the inbox it links to.
EMAIL_ALERTS_LISTED = 50


def alerts_email_on_commit(alert_ids: list[int]) -> None:
    """E-mail analysts about these new alerts once the caller's transaction commits (nothing if it rolls back)."""
    ids = sorted({int(pk) for pk in alert_ids})
    if ids:
        enqueue_on_commit(email_alerts, ids)


def alert_recipients(*, seniors_only: bool = False) -> list[str]:
    """The addresses of active analysts and senior analysts (only the latter with ``seniors_only``), each once."""
    roles = [SENIOR_ANALYST] if seniors_only else [ANALYST, SENIOR_ANALYST]
    addresses = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=roles)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    return sorted(set(addresses))


def backoffice_url(path: str) -> str:
    """An absolute link into the back-office, for e-mails (no request to build it from)."""
    return settings.BACKOFFICE_URL.rstrip("/") + path


def alert_summary(alert: Alert) -> str:
    """What happened, in one line: "score 712 → 640", "band B → D", "Insolvency proceeding on 2026-11-02 (BODACC)"."""
    from .inbox import alert_what

    if alert.kind == Alert.Kind.MODEL_DRIFT:
        return drift_summary(alert)
    return alert_what(alert)


def drift_summary(alert: Alert) -> str:
    """A drift alert in one line: "PSI 0.31 (worst: debt_ratio) over 412 scores of the last 30 days"."""
    check = alert.drift_check
    if check is None or check.psi_max is None:
        return _("Model drift")
    return _("PSI %(psi).2f (worst: %(feature)s) over %(n)d scores of the last %(days)d days") % {
        "psi": check.psi_max,
        "feature": check.psi_max_of,
        "n": check.scores_compared,
        "days": check.window_days,
    }


def models_url() -> str:
    """The back-office's models page, where a drift alert is acted on."""
    return reverse("scoring:models")


def _subject_name(alert: Alert) -> str:
    if alert.kind == Alert.Kind.MODEL_DRIFT:
        segment = alert.drift_check.segment if alert.drift_check else "?"
        return _("Model of segment %(segment)s") % {"segment": segment}
    if alert.company_id:
        name = alert.company.name or _("Company")
        return f"{name} (SIREN {alert.company.siren})"
    return _("Individual %(id)s") % {"id": alert.individual_id}


def _alert_lines(alert: Alert) -> list[str]:
    lines = [f"- {_subject_name(alert)}: {alert_summary(alert)}"]
    if alert.kind == Alert.Kind.MODEL_DRIFT:
        lines.append("  " + backoffice_url(models_url()))
    elif alert.dossier_id:
        lines.append("  " + backoffice_url(reverse("dossiers:detail", args=[alert.dossier_id])))
    elif alert.company_id:
        lines.append("  " + backoffice_url(reverse("dossiers:company", args=[alert.company.siren])))
    return lines


def alert_email(alerts: list[Alert]) -> tuple[str, str]:
    """The subject and text of the e-mail about ``alerts`` (at least one)."""
    if len(alerts) == 1:
        alert = alerts[0]
        subject = _("[riskoffice] Alert: %(subject)s, %(what)s") % {
            "subject": _subject_name(alert),
            "what": alert_summary(alert),
        }
    else:
        subject = _("[riskoffice] %(count)d new alerts") % {"count": len(alerts)}
    lines = [_("New alerts need an analyst's attention:"), ""]
    for alert in alerts[:EMAIL_ALERTS_LISTED]:
        lines.extend(_alert_lines(alert))
    if len(alerts) > EMAIL_ALERTS_LISTED:
        lines.append(_("… and %(count)d more.") % {"count": len(alerts) - EMAIL_ALERTS_LISTED})
    lines += ["", _("The alert inbox: %(url)s") % {"url": backoffice_url(reverse("alerts:inbox"))}]
    return subject, "\n".join(lines) + "\n"


def alerts_email(*, alert_ids: list[int], now: Any = None) -> int:
    """E-mail the alerts among ``alert_ids`` not e-mailed yet (nor acknowledged); the number e-mailed."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = [
            pk
            for pk in sorted(set(alert_ids))
            if Alert.objects.filter(pk=pk, emailed_at__isnull=True, acknowledged_at__isnull=True).update(emailed_at=now)
        ]
        if not claimed:
            return 0
        alerts = list(
            Alert.objects.filter(pk__in=claimed)
            .select_related("company", "negative_event", "drift_check")
            .order_by("-created_at")
        )
        # A model's drift goes to senior analysts only (they own the model); the rest to every analyst.
        groups = (
            (alert_recipients(), [a for a in alerts if a.kind != Alert.Kind.MODEL_DRIFT]),
            (alert_recipients(seniors_only=True), [a for a in alerts if a.kind == Alert.Kind.MODEL_DRIFT]),
        )
        messages = []
        for recipients, group in groups:
            if not group:
                continue
            if not recipients:
                # Nobody to tell: marked e-mailed all the same, or the sweep would try for ever.
                logger.warning("No active analyst to e-mail has an address: %d alerts not e-mailed", len(group))
                continue
            with translation.override(settings.ALERT_EMAIL_LANGUAGE or settings.LANGUAGE_CODE):
                subject, body = alert_email(group)
            # One message per recipient: analysts do not see each other's addresses.
            messages += [EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address]) for address in recipients]
        if messages:
            get_connection().send_messages(messages)
    return len(claimed)


def unsent_alert_ids(*, now: Any = None, limit: int = 500) -> list[int]:
    """Alerts whose e-mail never left (broker down at commit, a failed send), within the last day."""
    now = now or timezone.now()
    return list(
        Alert.objects.filter(
            emailed_at__isnull=True,
            acknowledged_at__isnull=True,
            created_at__lt=now - timedelta(seconds=settings.ALERT_EMAIL_SWEEP_AFTER_SECONDS),
            created_at__gte=now - timedelta(days=1),
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


@shared_task(name="alerts.tasks.email_alerts")
def email_alerts(alert_ids: list[int]) -> None:
    alerts_email(alert_ids=alert_ids)


@shared_task(name="alerts.tasks.email_unsent_alerts")
def email_unsent_alerts() -> None:
    """Periodic: the alerts whose e-mail task was lost."""
    ids = unsent_alert_ids()
    if ids:
        alerts_email(alert_ids=ids)
