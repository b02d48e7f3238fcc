"""Taking a dossier from the queue and letting it go: who works on it, audited.

A dossier is taken by one analyst at a time. Taking one someone else holds is refused, except by a
senior analyst, who may reassign it to themselves (an analyst away, a backlog to spread).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from riskoffice.audit import Actor, audit_record
from riskoffice.roles import SENIOR_ANALYST, has_any_role

from .models import Dossier


class DossierTakenByAnother(ValidationError):
    """Another analyst holds the dossier; only a senior analyst may reassign it."""


def _holder(dossier: Dossier) -> str | None:
    return dossier.assigned_to.get_username() if dossier.assigned_to_id else None


def _when(dossier: Dossier) -> str:
    return date_format(timezone.localtime(dossier.assigned_at), "SHORT_DATETIME_FORMAT")


@transaction.atomic
def dossier_take(*, dossier: Dossier, user: AbstractBaseUser) -> Dossier:
    """Assign the dossier to ``user``; taking one's own dossier again changes nothing and writes nothing.

    The row is locked first, so two analysts taking the same dossier at once are served one after the
    other: the second sees the first's name and is refused. The holder is read after the lock, not joined
    into it: a row read again after waiting for a lock would keep the join's stale (empty) holder.
    """
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.assigned_to_id == user.pk:
        return dossier
    if dossier.assigned_to_id is not None and not has_any_role(user, {SENIOR_ANALYST}):
        raise DossierTakenByAnother(
            _("%(name)s already took this dossier on %(when)s; only a senior analyst can reassign it.")
            % {"name": _holder(dossier), "when": _when(dossier)}
        )
    before = {"assigned_to": _holder(dossier)}
    dossier.assigned_to = user
    dossier.assigned_at = timezone.now()
    dossier.save(update_fields=["assigned_to", "assigned_at", "updated_at"])
    audit_record(
        actor=Actor(user=user),
        action="dossier.assigned",
        obj=dossier,
        before=before,
        after={"assigned_to": user.get_username()},
    )
    return dossier


@transaction.atomic
def dossier_release(*, dossier: Dossier, user: AbstractBaseUser) -> Dossier:
    """Put the dossier back in the queue, unassigned: by the analyst who holds it, or by a senior analyst."""
    dossier = Dossier.objects.select_for_update().get(pk=dossier.pk)
    if dossier.assigned_to_id is None:
        raise ValidationError(_("This dossier is not assigned to anyone."))
    if dossier.assigned_to_id != user.pk and not has_any_role(user, {SENIOR_ANALYST}):
        raise DossierTakenByAnother(
            _("%(name)s holds this dossier; only they or a senior analyst can release it.") % {"name": _holder(dossier)}
        )
    before = {"assigned_to": _holder(dossier)}
    dossier.assigned_to = None
    dossier.assigned_at = None
    dossier.save(update_fields=["assigned_to", "assigned_at", "updated_at"])
    audit_record(
        actor=Actor(user=user), action="dossier.released", obj=dossier, before=before, after={"assigned_to": None}
    )
    return dossier
