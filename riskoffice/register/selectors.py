"""Reads of the register: the activities in order, and what is missing from them (the gap check)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from .models import MANDATORY_TEXT_FIELDS, DataCategory, LegalBasis, ProcessingActivity
from .retention import is_enforced

# What the seed writes for the controller and the DPO: true of no one, so the gap check asks to replace it.
SEED_PLACEHOLDER = "[to complete]"


@dataclass(frozen=True)
class Gap:
    subject: str  # "PA-01 — Credit scoring" or "data category bank_tokens"
    problem: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}"


def activities_for_export(*, active_only: bool = False) -> QuerySet[ProcessingActivity]:
    activities = ProcessingActivity.objects.prefetch_related("recipient_partners", "retention_categories")
    if active_only:
        activities = activities.filter(is_active=True)
    return activities.order_by("reference")


def _activity_gaps(activity: ProcessingActivity) -> list[str]:
    problems = []
    for name in MANDATORY_TEXT_FIELDS:
        if not str(getattr(activity, name) or "").strip():
            problems.append(f"{ProcessingActivity._meta.get_field(name).verbose_name} is missing")
    if activity.legal_basis not in LegalBasis.values:
        problems.append("the legal basis is not one of Art. 6(1)")
    if activity.third_country_transfers and not (
        activity.transfer_countries.strip() and activity.transfer_safeguards.strip()
    ):
        problems.append("transfers to third countries without the countries or their safeguards")
    if activity.automated_decision and not activity.automated_decision_logic.strip():
        problems.append("automated decision-making without a description of the logic involved")
    categories = list(activity.retention_categories.all())
    if not categories:
        problems.append("no data category, so no retention period")
    problems.extend(
        f"data category {category.code} is inactive: its period is not applied"
        for category in categories
        if not category.is_active
    )
    return problems


def register_gaps() -> list[Gap]:
    """What the register lacks: activities missing an Art. 30 item, categories whose period nothing applies."""
    gaps = []
    activities = list(activities_for_export(active_only=True))
    if not activities:
        gaps.append(Gap("register", "no active processing activity"))
    for activity in activities:
        gaps.extend(Gap(str(activity), problem) for problem in _activity_gaps(activity))
    categories = (
        DataCategory.objects.filter(is_active=True)
        .annotate(active_uses=Count("activities", filter=Q(activities__is_active=True)))
        .order_by("code")
    )
    for category in categories:  # one query, whatever the number of categories
        if not is_enforced(category):
            gaps.append(Gap(f"data category {category.code}", "no retention handler applies its period"))
        if not category.active_uses:
            gaps.append(Gap(f"data category {category.code}", "no active processing activity uses it"))
    return gaps


def register_reminders() -> list[Gap]:
    """Not gaps, but to do: seeded values only the controller can give (its name, contacts, DPO)."""
    reminders = []
    for activity in activities_for_export(active_only=True):
        for name in ("controller_name", "controller_contact", "dpo_contact"):
            if SEED_PLACEHOLDER in getattr(activity, name):
                label = ProcessingActivity._meta.get_field(name).verbose_name
                reminders.append(Gap(str(activity), f"{label} still holds the seed's placeholder"))
    return reminders
