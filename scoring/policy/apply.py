"""Applying a decision policy version: knock-out rules first, then PD thresholds, then a limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from scoring.model.features import is_missing
from scoring.models import Decision, PolicyVersion


@dataclass
class PolicyResult:
    decision: str
    rules_fired: list[str] = field(default_factory=list)
    recommended_limit: Decimal | None = None


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

    if fired:
        decision = Decision.REFUSE
    elif pd < policy.accept_max_pd:
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
    return PolicyResult(decision=str(decision), rules_fired=fired, recommended_limit=limit)
