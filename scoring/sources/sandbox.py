"""The sandbox source: deterministic, realistic data derived from the SIREN.

Used by the demo, by dossiers without a partner and by sandbox API clients. The
profile comes from the synthetic generator (``scoring.synthetic``) that also made
the training history, so the same SIREN always gives the same company.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from scoring.model.synthetic import sandbox_company
from scoring.sources.base import GatheredData, SourceResult


def gather_sandbox(*, siren: str, bank_tokens: list[str]) -> GatheredData:
    """Company registry, statements, bank aggregates and events, all from the SIREN's sandbox profile."""
    now = timezone.now()
    profile = sandbox_company(siren, with_bank=bool(bank_tokens))
    gathered = GatheredData(
        identity={"name": profile.name, "naf_code": profile.naf_code, "active": profile.company["active"]},
        company=profile.company,
        financials=profile.financials,
        bank=profile.bank,
        events=profile.events,
        sandbox=True,
    )
    gathered.results = [
        SourceResult("sandbox.registry", "ok", now),
        SourceResult(
            "sandbox.financial_statements",
            "ok" if profile.financials else "missing",
            now,
            detail="" if profile.financials else "no published accounts",
        ),
        *sandbox_bank_and_events_results(profile.bank, now),
    ]
    return gathered


def sandbox_bank_and_events_results(bank: dict[str, Any] | None, now: datetime) -> list[SourceResult]:
    """Provenance of a sandbox profile's bank data (missing when no token was sent) and events."""
    return [
        SourceResult(
            "sandbox.open_banking",
            "ok" if bank else "missing",
            now,
            detail="" if bank else "no aggregator token supplied",
        ),
        SourceResult("sandbox.events", "ok", now),
    ]
