"""Data sources for individuals (B2C): what a dossier on a natural person is scored from.

An individual is known only by the partner's internal reference, so there is no
registry, no published accounts and no BODACC: the score rests on the accounts the
applicant shares through open banking and on the negative events on file.

- sandbox partners and dossiers without a partner: the deterministic sandbox
  profile of the reference (``scoring.synthetic.sandbox_individual``), the same
  generator that made the B2C training history;
- other partners: the open-banking connector. It computes the six account
  aggregates a company's accounts also give; income, existing credit repayments,
  gambling and account age need individual-specific categorisation it does not do
  yet, so those features stay missing and the explanation says so;
- both: late repayments and SEPA incidents recorded about the individual.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone

from scoring.model.synthetic import sandbox_individual
from scoring.sources import GatheredData, SourceResult
from scoring.sources.on_file import event_counts_12m
from scoring.sources.open_banking import open_banking_lookup
from scoring.sources.sandbox import sandbox_bank_and_events_results

EVENTS = "negative_events"


def gather_individual(dossier: Any, events: SourceResult | None = None) -> GatheredData:
    """Bank aggregates and reported events for a B2C dossier, each with its provenance.

    ``events``: the events on file when the caller read them already (``on_file.on_file_for``).
    """
    partner = dossier.partner
    if partner is None or partner.is_sandbox:
        gathered = gather_individual_sandbox(reference=dossier.individual.reference, bank_tokens=dossier.bank_tokens)
    else:
        bank = open_banking_lookup(dossier.bank_tokens)
        gathered = GatheredData(
            results=[bank], bank=dict(bank.data) if bank.status == "ok" else None, events={"late_repayments_12m": 0}
        )
    if events is None:
        events = individual_events_on_file(dossier.individual_id, partner_id=dossier.partner_id)
    merge_individual_events(gathered, events)
    return gathered


def gather_individual_sandbox(*, reference: str, bank_tokens: list[str]) -> GatheredData:
    now = timezone.now()
    profile = sandbox_individual(reference, with_bank=bool(bank_tokens))
    return GatheredData(
        bank=profile.bank,
        events=dict(profile.events),
        sandbox=True,
        results=sandbox_bank_and_events_results(profile.bank, now),
    )


def individual_events_on_file(individual_id: Any, today: date | None = None, *, partner_id: Any) -> SourceResult:
    """Late repayments and SEPA incidents reported about the individual over the last 12 months."""
    return individual_events_result(event_counts_12m(individual_id=individual_id, partner_id=partner_id, today=today))


def individual_events_result(counts: dict[str, Any]) -> SourceResult:
    """An individual's event counts (``event_counts_12m``) as the source result the features are built from."""
    data = {"late_repayments_12m": counts["delays"], "sepa_incidents_12m": counts["sepa"]}
    detail = f"{counts['delays']} late repayment(s), {counts['sepa']} SEPA incident(s) in 12 months"
    return SourceResult(EVENTS, "ok", timezone.now(), data=data, detail=detail)


def merge_individual_events(gathered: GatheredData, events: SourceResult) -> None:
    """Events on file add to what the other sources reported; a SEPA incident is a rejected debit."""
    data = events.data or {}
    gathered.events = {
        **gathered.events,
        "late_repayments_12m": (gathered.events.get("late_repayments_12m") or 0) + data.get("late_repayments_12m", 0),
    }
    if data.get("sepa_incidents_12m"):
        bank = dict(gathered.bank or {})
        bank["rejected_sepa_debits_12m"] = bank.get("rejected_sepa_debits_12m", 0) + data["sepa_incidents_12m"]
        gathered.bank = bank
    gathered.results.append(events)
