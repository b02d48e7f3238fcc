"""Data sources a dossier is scored from.

Each source answers with a ``SourceResult`` that records provenance (which source,
when, whether it answered). A source that fails degrades the dossier — its
features stay missing and the explanation says so — instead of failing it.

Only the sandbox source exists so far: deterministic, realistic data derived from
the SIREN by the synthetic generator (``scoring.synthetic``), used by the demo and
by sandbox API clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from .synthetic import sandbox_company


@dataclass
class SourceResult:
    source: str
    status: str  # ok | missing | failed
    fetched_at: datetime
    data: dict[str, Any] | None = None
    detail: str = ""

    def provenance(self) -> dict[str, Any]:
        return {"source": self.source, "status": self.status, "fetched_at": self.fetched_at.isoformat(),
                "detail": self.detail}


@dataclass
class GatheredData:
    identity: dict[str, Any] = field(default_factory=dict)  # name, naf_code, active
    company: dict[str, Any] = field(default_factory=dict)
    financials: dict[str, Any] = field(default_factory=dict)
    bank: dict[str, Any] | None = None
    events: dict[str, Any] = field(default_factory=dict)
    results: list[SourceResult] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        """What the analyst should know: sources that failed or had nothing, e.g. 'missing:open_banking'."""
        return [f"{r.status}:{r.source}" for r in self.results if r.status != "ok"]

    def provenance(self) -> dict[str, Any]:
        return {result.source: result.provenance() for result in self.results}


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
    )
    gathered.results = [
        SourceResult("sandbox.registry", "ok", now),
        SourceResult("sandbox.financial_statements", "ok" if profile.financials else "missing", now,
                     detail="" if profile.financials else "no published accounts"),
        SourceResult("sandbox.open_banking", "ok" if profile.bank else "missing", now,
                     detail="" if profile.bank else "no aggregator token supplied"),
        SourceResult("sandbox.events", "ok", now),
    ]
    return gathered


def gather_for_dossier(dossier: Any) -> GatheredData:
    """Everything the dossier's segment needs, from the sources its partner is entitled to."""
    if dossier.segment == "b2b":
        return gather_sandbox(siren=dossier.company.siren, bank_tokens=dossier.bank_tokens)
    raise ValueError(f"no sources for segment {dossier.segment!r}")
