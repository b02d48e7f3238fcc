"""A company's recommended limit: the most the team recommends granting it in total.

Analysts only ever lower it (from an alert or the company page): raising a limit is a credit decision of
its own, not a reaction to bad news. No limit on file means none was set, which is "no ceiling": any
amount (0 included) is then lower.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from riskoffice.audit import Actor, audit_history, audit_record
from riskoffice.models import AuditEvent
from riskoffice.roles import CAN_DECIDE, has_any_role

from .models import Company

LIMIT_LOWERED = "company.limit_lowered"
REASON_MAX_LENGTH = 500
LIMIT_MAX = Decimal("999999999999.99")  # max_digits=14, decimal_places=2


def _limit_value(limit: Any) -> Decimal:
    try:
        value = limit if isinstance(limit, Decimal) else Decimal(str(limit))
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({"limit": _("Enter an amount in euros.")}) from None
    if not value.is_finite():
        raise ValidationError({"limit": _("Enter an amount in euros.")})
    if value < 0:
        raise ValidationError({"limit": _("A recommended limit cannot be negative.")})
    if value > LIMIT_MAX or value != value.quantize(Decimal("0.01")):
        raise ValidationError({"limit": _("Enter an amount in euros with at most two decimals.")})
    return value.quantize(Decimal("0.01"))


@transaction.atomic
def company_limit_lower(*, company: Company, limit: Decimal, reason: str, user: Any, alert: Any = None) -> Company:
    """Lower ``company``'s recommended limit to ``limit``, for ``reason``; audited; acknowledges ``alert`` if given.

    Raises PermissionDenied for anyone but an analyst or senior analyst, ValidationError (keys ``limit``,
    ``reason``, ``alert``) for a bad amount, a limit that is not lower than the one on file, or no reason.
    """
    if not has_any_role(user, CAN_DECIDE):
        raise PermissionDenied(_("Only analysts may lower a recommended limit."))
    value = _limit_value(limit)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the limit is lowered.")})
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError(
            {"reason": _("Keep the reason under %(count)d characters.") % {"count": REASON_MAX_LENGTH}}
        )
    locked = Company.objects.select_for_update().get(pk=company.pk)
    before = locked.recommended_limit
    if before is not None and value >= before:
        raise ValidationError(
            {"limit": _("The new limit must be lower than the current one (%(current)s €).") % {"current": before}}
        )
    if alert is not None and alert.company_id != locked.pk:
        raise ValidationError({"alert": _("This alert is about another company.")})
    locked.recommended_limit = value
    locked.save(update_fields=["recommended_limit"])
    audit_record(
        actor=Actor(user=user),
        action=LIMIT_LOWERED,
        obj=locked,
        before={"recommended_limit": None if before is None else str(before)},
        after={
            "recommended_limit": str(value),
            "reason": reason,
            **({"alert": alert.pk} if alert is not None else {}),
        },
    )
    if alert is not None:
        from alerts.inbox import alert_acknowledge

        alert_acknowledge(alert=alert, user=user, now=timezone.now(), quiet=True)
    company.recommended_limit = value
    return locked


def company_limit_history(company: Company, *, limit: int = 20) -> list[AuditEvent]:
    """The changes of the company's recommended limit, newest first, with who made them."""
    return list(audit_history(company).filter(action=LIMIT_LOWERED)[:limit])
