"""Writes to the register: each change of an activity leaves a revision and an audit row, in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Max

from riskoffice.audit import Actor, audit_record
from riskoffice.models import Partner

from .models import DataCategory, ProcessingActivity, ProcessingActivityRevision

# Fields a revision does not hold: they say when and by whom, which the revision itself records.
_BOOKKEEPING = {"id", "created_at", "updated_at", "created_by", "updated_by"}
# Many-to-many fields in a snapshot: each related row by this attribute.
M2M_NAMES = {"recipient_partners": "name", "retention_categories": "code"}
DATA_CATEGORY_FIELDS = ("code", "name", "description", "retention_days", "retention_basis", "action", "is_active")


def activity_snapshot(activity: ProcessingActivity) -> dict[str, Any]:
    """Every field of the activity as JSON, its partners and data categories by name (sorted)."""
    snapshot: dict[str, Any] = {}
    for field in activity._meta.get_fields():
        if field.name in _BOOKKEEPING or field.auto_created or not field.concrete:
            continue
        if field.many_to_many:
            if activity.pk is None:
                snapshot[field.name] = []
            else:
                attribute = M2M_NAMES[field.name]
                snapshot[field.name] = sorted(getattr(item, attribute) for item in getattr(activity, field.name).all())
        else:
            snapshot[field.name] = getattr(activity, field.attname)
    return snapshot


def _stored_snapshot(pk: int | None) -> dict[str, Any]:
    if pk is None:
        return {}
    stored = ProcessingActivity.objects.filter(pk=pk).prefetch_related("recipient_partners", "retention_categories")
    return activity_snapshot(stored.get())


@transaction.atomic
def processing_activity_save(
    *,
    activity: ProcessingActivity,
    recipient_partners: Iterable[Partner],
    retention_categories: Iterable[DataCategory],
    actor: Actor,
) -> ProcessingActivityRevision | None:
    """Create or update an activity with its partners and data categories; the revision written, if anything changed.

    The activity is validated first (``full_clean``: mandatory fields, transfers, automated decisions), so a
    ``ValidationError`` names the field; the database constraints refuse what slips past.
    """
    is_new = activity.pk is None
    before = _stored_snapshot(activity.pk)
    activity.full_clean()
    if is_new:
        activity.created_by = actor.user
    activity.updated_by = actor.user
    activity.save()
    activity.recipient_partners.set(recipient_partners)
    activity.retention_categories.set(retention_categories)
    after = activity_snapshot(activity)
    changed = list(after) if is_new else [name for name, value in after.items() if before.get(name) != value]
    if not changed:
        return None
    number = (activity.revisions.aggregate(last=Max("number"))["last"] or 0) + 1
    revision = ProcessingActivityRevision.objects.create(
        activity=activity,
        number=number,
        snapshot=after,
        changed_fields=changed,
        changed_by=actor.user,
        changed_by_system=actor.system or (f"api client {actor.client.pk}" if actor.client else ""),
    )
    audit_record(
        actor=actor,
        action="register.activity_created" if is_new else "register.activity_changed",
        obj=activity,
        before={name: before[name] for name in changed if name in before} or None,
        after={name: after[name] for name in changed},
    )
    return revision


@transaction.atomic
def processing_activity_deactivate(*, activity: ProcessingActivity, actor: Actor) -> ProcessingActivityRevision | None:
    """Take an activity out of the register without deleting its history."""
    activity = ProcessingActivity.objects.select_for_update().get(pk=activity.pk)
    activity.is_active = False
    return processing_activity_save(
        activity=activity,
        recipient_partners=list(activity.recipient_partners.all()),
        retention_categories=list(activity.retention_categories.all()),
        actor=actor,
    )


def _category_values(category: DataCategory) -> dict[str, Any]:
    return {name: getattr(category, name) for name in DATA_CATEGORY_FIELDS}


@transaction.atomic
def data_category_save(*, category: DataCategory, actor: Actor) -> list[str]:
    """Create or update a data category (its period, basis, action); the fields changed, audited."""
    is_new = category.pk is None
    stored = None if is_new else DataCategory.objects.select_for_update().filter(pk=category.pk).first()
    before = _category_values(stored) if stored is not None else {}
    category.full_clean()
    category.save()
    after = _category_values(category)
    changed = [name for name in DATA_CATEGORY_FIELDS if is_new or before.get(name) != after[name]]
    if changed:
        audit_record(
            actor=actor,
            action="register.category_created" if is_new else "register.category_changed",
            obj=category,
            before={name: before[name] for name in changed if name in before} or None,
            after={name: after[name] for name in changed},
        )
    return changed
