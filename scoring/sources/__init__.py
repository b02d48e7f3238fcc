"""Data sources a dossier is scored from (docs/sources.md).

Each source answers with a ``SourceResult`` that records provenance (which source,
when, whether it answered, whether from the cache and how old). A source that
fails degrades the dossier — its features stay missing, the explanation names the
missing data and the analyst sees a flag — instead of failing it.

- sandbox partners and dossiers without a partner: the deterministic sandbox
  profile of the SIREN (``sandbox.py``);
- other partners: the company registry (``registry.py``), BODACC insolvency
  notices (``bodacc.py``) and the open-banking aggregator (``open_banking.py``);
- both: financial statements and negative events on file (``on_file.py``).
"""

from __future__ import annotations

from typing import Any

from scoring.sources.base import GatheredData, SourceResult
from scoring.sources.bodacc import bodacc_lookup
from scoring.sources.on_file import events_on_file, has_events, statements_on_file
from scoring.sources.open_banking import open_banking_lookup
from scoring.sources.registry import registry_lookup
from scoring.sources.sandbox import gather_sandbox

__all__ = [
    "GatheredData",
    "SourceResult",
    "describe_flags",
    "gather_for_dossier",
    "gather_live",
    "gather_sandbox",
]

SOURCE_LABELS = {
    "registry": "company registry",
    "bodacc": "BODACC insolvency notices",
    "open_banking": "open banking",
    "financial_statements": "financial statements",
    "negative_events": "negative events on file",
    "sandbox.registry": "company registry (sandbox)",
    "sandbox.financial_statements": "financial statements (sandbox)",
    "sandbox.open_banking": "open banking (sandbox)",
    "sandbox.events": "negative events (sandbox)",
}


def gather_for_dossier(dossier: Any, on_file: tuple[SourceResult | None, SourceResult] | None = None) -> GatheredData:
    """Everything the dossier's segment needs, from the sources its partner is entitled to.

    ``on_file``: the statements and events on file when the caller read them already, for many
    dossiers at once (``on_file.on_file_for``); read here otherwise.
    """
    statements, events = on_file or (None, None)
    if dossier.segment == "b2c":
        # Individuals have their own sources, kept in their own module.
        from scoring.sources.individuals import gather_individual

        return gather_individual(dossier, events)
    if dossier.segment != "b2b":
        raise ValueError(f"no sources for segment {dossier.segment!r}")
    partner = dossier.partner
    siren = dossier.company.siren
    if partner is None or partner.is_sandbox:
        gathered = gather_sandbox(siren=siren, bank_tokens=dossier.bank_tokens)
        live = False
    else:
        gathered = gather_live(siren=siren, bank_tokens=dossier.bank_tokens)
        live = True
    if on_file is None:
        statements = statements_on_file(dossier)
        events = events_on_file(dossier.company_id, partner_id=dossier.partner_id)
    merge_statements(gathered, statements, always_report=live)
    merge_events(gathered, events, always_report=live)
    return gathered


def gather_live(*, siren: str, bank_tokens: list[str]) -> GatheredData:
    """The company registry, BODACC and open banking, each degrading alone when it fails."""
    registry = registry_lookup(siren)
    bodacc = bodacc_lookup(siren)
    bank = open_banking_lookup(bank_tokens)
    gathered = GatheredData(results=[registry, bodacc, bank])
    if registry.status == "ok":
        gathered.identity = dict(registry.data["identity"])
        gathered.company = dict(registry.data["company"])
        gathered.financials = dict(registry.data["financials"])
    gathered.bank = dict(bank.data) if bank.status == "ok" else None
    gathered.events = {
        "payment_delays_12m": 0,
        "max_payment_delay_days": 0,
        # Unknown (missing) when BODACC failed: never read as "no proceeding".
        "open_insolvency_proceeding": (
            bool(bodacc.data["open_insolvency_proceeding"]) if bodacc.status == "ok" else None
        ),
    }
    return gathered


def merge_statements(gathered: GatheredData, statements: SourceResult, *, always_report: bool) -> None:
    """The latest statement on file overrides the registry's (or the sandbox's) figures it carries."""
    if statements.status == "ok":
        gathered.financials = {**gathered.financials, **statements.data}
    if statements.status == "ok" or always_report:
        gathered.results.append(statements)


def merge_events(gathered: GatheredData, events: SourceResult, *, always_report: bool) -> None:
    """Events on file add to what the other sources reported."""
    if has_events(events):
        data = events.data
        merged = dict(gathered.events)
        merged["payment_delays_12m"] = merged.get("payment_delays_12m", 0) + data["payment_delays_12m"]
        merged["max_payment_delay_days"] = max(merged.get("max_payment_delay_days", 0), data["max_payment_delay_days"])
        if data["insolvency_proceeding"]:
            merged["open_insolvency_proceeding"] = True
        gathered.events = merged
        if data["sepa_incidents_12m"]:
            # A SEPA incident on file is a rejected debit even when no bank data was shared.
            bank = dict(gathered.bank or {})
            bank["rejected_sepa_debits_12m"] = bank.get("rejected_sepa_debits_12m", 0) + data["sepa_incidents_12m"]
            gathered.bank = bank
    if has_events(events) or always_report:
        gathered.results.append(events)


def describe_flags(flags: list[str], provenance: dict[str, Any]) -> list[str]:
    """Score.data_flags as sentences: 'company registry failed (HTTP 503 after 3 attempts)'."""
    described = []
    for flag in flags:
        status, _, source = flag.partition(":")
        detail = (provenance.get(source) or {}).get("detail", "")
        text = f"{SOURCE_LABELS.get(source, source)} {status}"
        described.append(f"{text} ({detail})" if detail else text)
    return described
