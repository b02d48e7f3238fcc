"""Versioning the decision policy: risk managers never edit a version, they create the next one."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from riskoffice.audit import Actor, audit_record
from scoring.models import PolicyVersion, Segment

# A NAF rév. 2 sub-class: two digits, a dot, two digits, a letter ("62.01Z").
NAF_CODE = re.compile(r"^\d{2}\.\d{2}[A-Z]$")


def policy_values(policy: PolicyVersion) -> dict[str, Any]:
    """A version as the flat values a risk manager edits (and the audit trail records)."""
    knockouts = policy.knockouts or {}
    return {
        "accept_max_pd": policy.accept_max_pd,
        "guarantee_max_pd": policy.guarantee_max_pd,
        "limit_revenue_share": policy.limit_revenue_share,
        "open_insolvency_proceeding": bool(knockouts.get("open_insolvency_proceeding", True)),
        "sanctioned_naf_codes": list(knockouts.get("sanctioned_naf_codes", [])),
        "max_amount": knockouts.get("max_amount"),
    }


def _percent(value: float) -> str:
    return f"{100 * value:g} %"


def _cleaned(values: dict[str, Any]) -> dict[str, Any]:
    """The values checked against the policy's rules; every problem reported under its field."""
    errors: dict[str, list[str]] = {}

    def number(name: str, *, optional: bool = False) -> float | None:
        value = values.get(name)
        if value is None or value == "":
            if not optional:
                errors.setdefault(name, []).append("This field is required.")
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            errors.setdefault(name, []).append("Enter a number.")
            return None

    accept, guarantee = number("accept_max_pd"), number("guarantee_max_pd")
    share, max_amount = number("limit_revenue_share"), number("max_amount", optional=True)
    if accept is not None and not 0 < accept < 1:
        errors.setdefault("accept_max_pd", []).append("The accept threshold is a PD above 0 % and below 100 %.")
    if guarantee is not None and not 0 < guarantee < 1:
        errors.setdefault("guarantee_max_pd", []).append("The guarantee threshold is a PD above 0 % and below 100 %.")
    if accept is not None and guarantee is not None and accept > guarantee:
        errors.setdefault("guarantee_max_pd", []).append(
            f"The guarantee threshold ({_percent(guarantee)}) cannot be below the accept threshold "
            f"({_percent(accept)}): PDs between them would be refused before being accepted."
        )
    if share is not None and not 0 <= share <= 1:
        errors.setdefault("limit_revenue_share", []).append("The share of revenue lies between 0 and 1.")
    if max_amount is not None and max_amount <= 0:
        errors.setdefault("max_amount", []).append("The amount cap must be positive; leave it empty for no cap.")

    codes: list[str] = []
    for code in values.get("sanctioned_naf_codes") or []:
        code = str(code).strip().upper()
        if not NAF_CODE.match(code):
            errors.setdefault("sanctioned_naf_codes", []).append(
                f"“{code}” is not a NAF code: two digits, a dot, two digits and a letter, like 62.01Z."
            )
        elif code not in codes:
            codes.append(code)
    if errors:
        raise ValidationError(errors)
    if max_amount is not None and max_amount.is_integer():
        max_amount = int(max_amount)
    return {
        "accept_max_pd": accept,
        "guarantee_max_pd": guarantee,
        "limit_revenue_share": share,
        "open_insolvency_proceeding": bool(values.get("open_insolvency_proceeding")),
        "sanctioned_naf_codes": codes,
        "max_amount": max_amount,
    }


@transaction.atomic
def policy_create_version(*, segment: str, values: dict[str, Any], user: AbstractBaseUser) -> PolicyVersion:
    """Make ``values`` the segment's current policy as version n + 1; version n stays, no longer current.

    ``values`` holds PDs as fractions (0.03 for 3 %): accept_max_pd, guarantee_max_pd,
    limit_revenue_share, open_insolvency_proceeding, sanctioned_naf_codes, max_amount (or None).
    Scores already stored keep the version that produced them; the next scoring reads this one.
    """
    if segment not in Segment.values:
        raise ValidationError({"segment": "Choose a segment."})
    cleaned = _cleaned(values)
    # The lock makes two risk managers saving at once produce versions n + 1 and n + 2, in turn.
    previous = PolicyVersion.objects.select_for_update().filter(segment=segment, is_current=True).first()
    if previous is not None and policy_values(previous) == cleaned:
        raise ValidationError(f"Nothing changed: this is already version {previous.version} of the policy.")
    latest = PolicyVersion.objects.filter(segment=segment).aggregate(v=Max("version"))["v"] or 0
    if previous is not None:
        previous.is_current = False
        previous.save(update_fields=["is_current"])
    policy = PolicyVersion.objects.create(
        segment=segment,
        version=latest + 1,
        is_current=True,
        accept_max_pd=cleaned["accept_max_pd"],
        guarantee_max_pd=cleaned["guarantee_max_pd"],
        limit_revenue_share=cleaned["limit_revenue_share"],
        knockouts={
            "open_insolvency_proceeding": cleaned["open_insolvency_proceeding"],
            "sanctioned_naf_codes": cleaned["sanctioned_naf_codes"],
            "max_amount": cleaned["max_amount"],
        },
        created_by=user,
    )
    audit_record(
        actor=Actor(user=user),
        action="policy.version_created",
        obj=policy,
        before={"version": previous.version, **policy_values(previous)} if previous else None,
        after={"version": policy.version, **policy_values(policy)},
    )
    return policy
