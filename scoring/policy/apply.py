"""Applying a decision policy version: knock-out rules first, then PD thresholds, then a limit, then referral.

A decision rests on data. When the data behind a score is too thin, the policy refers the dossier to an
analyst (``Decision.REFER``) instead of letting a PD computed on next to nothing accept it: missing data
never reads as low risk. What "too thin" means is part of the policy version, stored in its ``knockouts``
JSON next to the knock-out rules (no column of its own), and read through ``refer_rules``:

- ``refer_when_thin`` (default true): refer when fewer than ``min_data_sources`` of the segment's evidence
  sources have any data. The evidence sources are the sources that describe the applicant's finances:
  financial statements and open banking for a company (B2B), open banking for an individual (B2C).
- ``min_data_sources`` (default 1): how many of them must have data; capped at the number the segment has.
- ``refer_unlimited_above`` (default 25 000 € for B2B, none for B2C): refer an accept for which no limit
  could be computed (the limit needs revenue) when the amount requested is above this. Only where the
  policy recommends limits at all (``limit_revenue_share`` > 0).

Versions saved before referral existed carry none of these keys and get the defaults. Knock-outs still
refuse first: a referral never overrides a knock-out. Everything is computed from the PD, the features, the
amount and the NAF code, so a stored score can be replayed under any version (``scoring.policy.preview``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scoring.model.features import catalogue_for, is_missing
from scoring.models import Decision, PolicyVersion

# The sources whose data a decision rests on; the registry, the request and reported events are not
# enough on their own (a company without accounts nor bank data is a name and an amount).
EVIDENCE_SOURCES = ("financial statements", "open banking")

# Referral rules of a version that does not say (every version saved before referral existed).
REFER_DEFAULTS: dict[str, dict[str, Any]] = {
    "b2b": {"refer_when_thin": True, "min_data_sources": 1, "refer_unlimited_above": 25000},
    "b2c": {"refer_when_thin": True, "min_data_sources": 1, "refer_unlimited_above": None},
}


@dataclass
class PolicyResult:
    decision: str
    rules_fired: list[str] = field(default_factory=list)
    recommended_limit: Decimal | None = None


def refer_rules(policy: PolicyVersion) -> dict[str, Any]:
    """The version's referral rules: its own where it states them, else the segment's defaults."""
    knockouts = policy.knockouts or {}
    defaults = REFER_DEFAULTS.get(policy.segment, REFER_DEFAULTS["b2b"])
    return {name: knockouts.get(name, default) for name, default in defaults.items()}


def evidence_sources(segment: str) -> dict[str, list[str]]:
    """{source: its features} for the segment's evidence sources, in catalogue order."""
    sources: dict[str, list[str]] = {}
    for feature in catalogue_for(segment):
        if feature.source in EVIDENCE_SOURCES:
            sources.setdefault(feature.source, []).append(feature.name)
    return sources


def sources_with_data(segment: str, features: dict[str, Any]) -> list[str]:
    """The segment's evidence sources for which at least one feature has a value."""
    return [
        source
        for source, names in evidence_sources(segment).items()
        if any(not is_missing(features.get(name)) for name in names)
    ]


def policy_apply(
    policy: PolicyVersion, *, pd: float, features: dict[str, Any], requested_amount: float, naf_code: str = ""
) -> PolicyResult:
    fired: list[str] = []
    knockouts = policy.knockouts or {}
    if knockouts.get("open_insolvency_proceeding", True) and features.get("open_insolvency_proceeding"):
        fired.append("knockout:open_insolvency_proceeding")
    if naf_code and naf_code in set(knockouts.get("sanctioned_naf_codes", [])):
        fired.append("knockout:sanctioned_naf_code")
    max_amount = knockouts.get("max_amount")
    if max_amount is not None and requested_amount > float(max_amount):
        fired.append("knockout:amount_above_cap")
    if fired:  # a knock-out refuses whatever the data: no limit, no referral
        return PolicyResult(decision=str(Decision.REFUSE), rules_fired=fired)

    if pd < policy.accept_max_pd:
        decision = Decision.ACCEPT
        fired.append("threshold:accept")
    elif pd < policy.guarantee_max_pd:
        decision = Decision.GUARANTEE
        fired.append("threshold:guarantee")
    else:
        decision = Decision.REFUSE
        fired.append("threshold:refuse")

    limit = None
    revenue = features.get("revenue")
    if decision != Decision.REFUSE and policy.limit_revenue_share > 0 and not is_missing(revenue) and revenue > 0:
        headroom = max(0.0, 1 - pd / policy.guarantee_max_pd)
        limit = Decimal(round(revenue * policy.limit_revenue_share * headroom, -2)).quantize(Decimal("0.01"))
        if decision == Decision.ACCEPT and requested_amount > float(limit):
            # A good risk asking for more than the limit its revenue supports: accept only with a guarantee.
            decision = Decision.GUARANTEE
            fired.append("limit:amount_above_recommended_limit")

    rules = refer_rules(policy)
    if rules["refer_when_thin"]:
        # Whatever the PD says: a refusal on thin data deserves a human as much as an accept does.
        available = len(evidence_sources(policy.segment))
        required = min(int(rules["min_data_sources"] or 0), available)
        if len(sources_with_data(policy.segment, features)) < required:
            decision = Decision.REFER
            fired.append("refer:thin_data")
    unlimited_above = rules["refer_unlimited_above"]
    if (
        decision == Decision.ACCEPT
        and limit is None
        and policy.limit_revenue_share > 0
        and unlimited_above is not None
        and requested_amount > float(unlimited_above)
    ):
        decision = Decision.REFER
        fired.append("refer:no_limit_above_amount")
    if decision == Decision.REFER:
        limit = None  # an analyst sets the terms
    return PolicyResult(decision=str(decision), rules_fired=fired, recommended_limit=limit)
