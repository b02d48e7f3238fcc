"""Versioning the decision policy: risk managers never edit a version, they create the next one."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from riskoffice.audit import Actor, audit_record
from scoring.models import PolicyVersion, Segment
from scoring.policy.apply import evidence_sources, refer_rules

# A NAF rév. 2 sub-class: two digits, a dot, two digits, a letter ("62.01Z").
NAF_CODE = re.compile(r"^\d{2}\.\d{2}[A-Z]$")


def policy_values(policy: PolicyVersion) -> dict[str, Any]:
    """A version as the flat values a risk manager edits (and the audit trail records).

    The referral rules are the ones the version applies: its own, or the segment's defaults for a version
    saved before they existed (``scoring.policy.apply.refer_rules``).
    """
    knockouts = policy.knockouts or {}
    return {
        "accept_max_pd": policy.accept_max_pd,
        "guarantee_max_pd": policy.guarantee_max_pd,
        "limit_revenue_share": policy.limit_revenue_share,
        "open_insolvency_proceeding": bool(knockouts.get("open_insolvency_proceeding", True)),
        "sanctioned_naf_codes": list(knockouts.get("sanctioned_naf_codes", [])),
        "max_amount": knockouts.get("max_amount"),
        **refer_rules(policy),
    }


def policy_draft(*, segment: str, values: dict[str, Any]) -> PolicyVersion:
    """An unsaved version holding ``values`` (checked), to replay past scores under it before publishing."""
    if segment not in Segment.values:
        raise ValidationError({"segment": _("Choose a segment.")})
    cleaned = policy_clean(values, segment=segment)
    return PolicyVersion(
        segment=segment,
        accept_max_pd=cleaned["accept_max_pd"],
        guarantee_max_pd=cleaned["guarantee_max_pd"],
        limit_revenue_share=cleaned["limit_revenue_share"],
        knockouts=_knockouts(cleaned),
    )


def _knockouts(cleaned: dict[str, Any]) -> dict[str, Any]:
    return {
        "open_insolvency_proceeding": cleaned["open_insolvency_proceeding"],
        "sanctioned_naf_codes": cleaned["sanctioned_naf_codes"],
        "max_amount": cleaned["max_amount"],
        "refer_when_thin": cleaned["refer_when_thin"],
        "min_data_sources": cleaned["min_data_sources"],
        "refer_unlimited_above": cleaned["refer_unlimited_above"],
    }


def _percent(value: float) -> str:
    return f"{100 * value:g} %"


def policy_clean(values: dict[str, Any], *, segment: str) -> dict[str, Any]:
    """The values checked against the policy's rules; every problem reported under its field.

    The referral rules may be left out (scripts, older callers): they then keep the segment's defaults.
    """
    errors: dict[str, list[str]] = {}

    def number(name: str, *, optional: bool = False) -> float | None:
        value = values.get(name)
        if value is None or value == "":
            if not optional:
                errors.setdefault(name, []).append(_("This field is required."))
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            errors.setdefault(name, []).append(_("Enter a number."))
            return None

    accept, guarantee = number("accept_max_pd"), number("guarantee_max_pd")
    share, max_amount = number("limit_revenue_share"), number("max_amount", optional=True)
    defaults = refer_rules(PolicyVersion(segment=segment))
    min_sources = number("min_data_sources", optional=True)
    refer_above = (
        number("refer_unlimited_above", optional=True)
        if "refer_unlimited_above" in values
        else defaults["refer_unlimited_above"]
    )
    available = len(evidence_sources(segment))
    if min_sources is None:
        min_sources = defaults["min_data_sources"]
    elif not (min_sources.is_integer() and 0 <= min_sources <= available):
        errors.setdefault("min_data_sources", []).append(
            _("The number of data sources required is a whole number from 0 to %(available)s.")
            % {"available": available}
        )
    if refer_above is not None and refer_above <= 0:
        errors.setdefault("refer_unlimited_above", []).append(
            _("The amount must be positive; leave it empty never to refer an accept for want of a limit.")
        )
    if accept is not None and not 0 < accept < 1:
        errors.setdefault("accept_max_pd", []).append(_("The accept threshold is a PD above 0 % and below 100 %."))
    if guarantee is not None and not 0 < guarantee < 1:
        errors.setdefault("guarantee_max_pd", []).append(
            _("The guarantee threshold is a PD above 0 % and below 100 %.")
        )
    if accept is not None and guarantee is not None and accept > guarantee:
        errors.setdefault("guarantee_max_pd", []).append(
            _(
                "The guarantee threshold (%(guarantee)s) cannot be below the accept threshold (%(accept)s): "
                "PDs between them would be refused before being accepted."
            )
            % {"guarantee": _percent(guarantee), "accept": _percent(accept)}
        )
    if share is not None and not 0 <= share <= 1:
        errors.setdefault("limit_revenue_share", []).append(_("The share of revenue lies between 0 and 1."))
    if max_amount is not None and max_amount <= 0:
        errors.setdefault("max_amount", []).append(_("The amount cap must be positive; leave it empty for no cap."))

    codes: list[str] = []
    for code in values.get("sanctioned_naf_codes") or []:
        code = str(code).strip().upper()
        if not NAF_CODE.match(code):
            errors.setdefault("sanctioned_naf_codes", []).append(
                _("“%(code)s” is not a NAF code: two digits, a dot, two digits and a letter, like 62.01Z.")
                % {"code": code}
            )
        elif code not in codes:
            codes.append(code)
    if errors:
        raise ValidationError(errors)
    if max_amount is not None and max_amount.is_integer():
        max_amount = int(max_amount)
    if refer_above is not None and float(refer_above).is_integer():
        refer_above = int(refer_above)
    return {
        "accept_max_pd": accept,
        "guarantee_max_pd": guarantee,
        "limit_revenue_share": share,
        "open_insolvency_proceeding": bool(values.get("open_insolvency_proceeding")),
        "sanctioned_naf_codes": codes,
        "max_amount": max_amount,
        "refer_when_thin": bool(values.get("refer_when_thin", defaults["refer_when_thin"])),
        "min_data_sources": int(min_sources),
        "refer_unlimited_above": refer_above,
    }


@transaction.atomic
def policy_create_version(*, segment: str, values: dict[str, Any], note: str, user: AbstractBaseUser) -> PolicyVersion:
    """Make ``values`` the segment's current policy as version n + 1; version n stays, no longer current.

    ``values`` holds PDs as fractions (0.03 for 3 %): accept_max_pd, guarantee_max_pd,
    limit_revenue_share, open_insolvency_proceeding, sanctioned_naf_codes, max_amount (or None), and the
    referral rules refer_when_thin, min_data_sources, refer_unlimited_above (or None), which default to
    the segment's. ``note`` says why the version was made; it is required and audited.
    Scores already stored keep the version that produced them; the next scoring reads this one.
    Versions are never updated afterwards, except for ``is_current`` moving to the next one.
    """
    if segment not in Segment.values:
        raise ValidationError({"segment": _("Choose a segment.")})
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": _("Say why this version is made: what it changes and who asked.")})
    cleaned = policy_clean(values, segment=segment)
    # The lock makes two risk managers saving at once produce versions n + 1 and n + 2, in turn.
    previous = PolicyVersion.objects.select_for_update().filter(segment=segment, is_current=True).first()
    if previous is not None and policy_values(previous) == cleaned:
        raise ValidationError(
            _("Nothing changed: this is already version %(version)s of the policy.") % {"version": previous.version}
        )
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
        knockouts=_knockouts(cleaned),
        note=note,
        created_by=user,
    )
    audit_record(
        actor=Actor(user=user),
        action="policy.version_created",
        obj=policy,
        before={"version": previous.version, **policy_values(previous)} if previous else None,
        after={"version": policy.version, **policy_values(policy), "note": note},
    )
    return policy
