"""Open banking through an aggregator (Bridge API v3 style): accounts and 12 months of transactions.

For each aggregator token the partner supplied: ``GET /v3/aggregation/accounts``,
then ``GET /v3/aggregation/transactions`` per current account, following
``pagination.next_uri`` until it is absent. The transactions are reduced in memory
to six aggregates over the accounts taken together; the lines themselves are never
stored, logged or cached. Never cached: the answer belongs to a token, not to a SIREN.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from scoring.sources.base import HttpSource, SourceFailed, SourceResult, failed, plain_text

SOURCE = "open_banking"
BRIDGE_VERSION = "2025-01-15"
PAGE_LIMIT = 500
MAX_PAGES = 100  # per account: 50,000 transactions a year is already far beyond an SME's current account
CURRENT_ACCOUNT_TYPES = {"checking"}  # savings, loans and card accounts would distort balances and overdrafts

# A rejected SEPA direct debit shows as a reversal line and often a fee line (⚠ wording varies by bank).
REJECTION_WORDS = (
    "REJET PRLV",
    "REJET PRELEVEMENT",
    "REJET DE PRELEVEMENT",
    "PRLV REJETE",
    "PRELEVEMENT REJETE",
    "PRLV SEPA REJETE",
    "IMPAYE",
)
FEE_WORDS = ("FRAIS", "COMMISSION", "COTISATION")
CHEQUE_WORDS = ("CHQ", "CHEQUE")


def open_banking_lookup(tokens: list[str]) -> SourceResult:
    """The six bank aggregates over every current account the tokens give access to."""
    if not tokens:
        return SourceResult(SOURCE, "missing", timezone.now(), detail="no aggregator token supplied")
    if not (settings.OPEN_BANKING_CLIENT_ID and settings.OPEN_BANKING_CLIENT_SECRET):
        return failed(SOURCE, "OPEN_BANKING_CLIENT_ID / OPEN_BANKING_CLIENT_SECRET are not configured")
    today = timezone.localdate()
    ledger = Ledger(today=today)
    try:
        # Any token failing fails the source: aggregates over some of the accounts would mislead.
        for token in tokens:
            _read_token(token, ledger)
    except SourceFailed as exc:
        return failed(SOURCE, str(exc))
    if not ledger.accounts:
        return SourceResult(SOURCE, "missing", timezone.now(), detail="no current account behind the tokens")
    return SourceResult(
        SOURCE,
        "ok",
        timezone.now(),
        data=ledger.aggregates(),
        detail=f"{len(ledger.accounts)} account(s), {ledger.transactions} transactions read",
    )


def _read_token(token: str, ledger: Ledger) -> None:
    client = HttpSource(
        SOURCE,
        settings.OPEN_BANKING_URL,
        headers={
            "Bridge-Version": BRIDGE_VERSION,
            "Client-Id": settings.OPEN_BANKING_CLIENT_ID,
            "Client-Secret": settings.OPEN_BANKING_CLIENT_SECRET,
            "Authorization": f"Bearer {token}",
        },
    )
    for account in _resources(client.get_json("/v3/aggregation/accounts")):
        account_id = account.get("id")
        if account_id is None or account_id in ledger.accounts:
            continue
        if account.get("type", "checking") not in CURRENT_ACCOUNT_TYPES or account.get("currency_code", "EUR") != "EUR":
            continue
        balance = account.get("balance", account.get("accounting_balance"))
        if not isinstance(balance, (int, float)):
            raise SourceFailed(f"account {account_id} has no balance")
        ledger.add_account(account_id, float(balance))
        path = "/v3/aggregation/transactions"
        params: dict[str, Any] | None = {
            "account_id": account_id,
            "min_date": ledger.start.isoformat(),
            "max_date": ledger.today.isoformat(),
            "limit": PAGE_LIMIT,
        }
        for _ in range(MAX_PAGES):
            body = client.get_json(path, params=params)
            for transaction in _resources(body):
                ledger.add_transaction(account_id, transaction)
            next_uri = (body.get("pagination") or {}).get("next_uri")
            if not next_uri:
                break
            path, params = next_uri, None  # the link carries its own query
        else:
            raise SourceFailed(f"more than {MAX_PAGES} pages of transactions for one account")


def _resources(body: Any) -> list[dict[str, Any]]:
    resources = body.get("resources") if isinstance(body, dict) else None
    if not isinstance(resources, list):
        raise SourceFailed("unexpected answer: no resources list")
    return [item for item in resources if isinstance(item, dict)]


def _month_start(day: date, months_back: int) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Ledger:
    """Running totals over the transactions read: daily net flows, monthly inflows, rejected debits."""

    today: date
    accounts: dict[Any, float] = field(default_factory=dict)  # account id -> current balance
    transactions: int = 0
    net_by_day: dict[date, float] = field(default_factory=lambda: defaultdict(float))
    inflow_by_month: dict[tuple[int, int], float] = field(default_factory=lambda: defaultdict(float))
    rejection_lines: int = 0
    fee_days: set[tuple[Any, date]] = field(default_factory=set)
    rejection_days: set[tuple[Any, date]] = field(default_factory=set)

    @property
    def start(self) -> date:
        """The first day of the month twelve months ago: 12 complete months plus the current one."""
        return _month_start(self.today, 12)

    def add_account(self, account_id: Any, balance: float) -> None:
        self.accounts[account_id] = balance

    def add_transaction(self, account_id: Any, transaction: dict[str, Any]) -> None:
        if transaction.get("deleted") or transaction.get("future"):
            return
        if transaction.get("account_id", account_id) != account_id:
            return
        amount = transaction.get("amount")
        try:
            day = date.fromisoformat(str(transaction.get("date"))[:10])
        except ValueError:
            return
        if not isinstance(amount, (int, float)) or not self.start <= day <= self.today:
            return
        self.transactions += 1
        self.net_by_day[day] += amount
        if amount > 0:
            self.inflow_by_month[(day.year, day.month)] += amount
        self._count_rejection((account_id, day), transaction, amount)

    def _count_rejection(self, key: tuple[Any, date], transaction: dict[str, Any], amount: float) -> None:
        if key[1] <= self.today - timedelta(days=365):
            return
        text = plain_text(
            f"{transaction.get('clean_description', '')} {transaction.get('provider_description', '')}"
        ).upper()
        operation = transaction.get("operation_type")
        if (
            any(word in text for word in REJECTION_WORDS)
            and operation != "check"
            and not any(word in text for word in CHEQUE_WORDS)
        ):
            if any(word in text for word in FEE_WORDS):
                self.fee_days.add(key)
            else:
                self.rejection_lines += 1
                self.rejection_days.add(key)
        elif operation == "direct_debit" and amount > 0:  # a debit paid back: the reversal of a rejection
            self.rejection_lines += 1
            self.rejection_days.add(key)

    def aggregates(self) -> dict[str, Any]:
        """End-of-day balances rebuilt backwards from today's balance, then the six features."""
        balance = sum(self.accounts.values())
        end_of_day: dict[date, float] = {}
        day = self.today
        while day >= self.start:
            end_of_day[day] = balance
            balance -= self.net_by_day.get(day, 0.0)
            day -= timedelta(days=1)
        last_year = [end_of_day[self.today - timedelta(days=n)] for n in range(365)]
        months = [_month_start(self.today, back) for back in range(12, 0, -1)]  # 12 complete months
        month_ends = [end_of_day[_month_start(self.today, back - 1) - timedelta(days=1)] for back in range(12, 0, -1)]
        inflows = [self.inflow_by_month.get((m.year, m.month), 0.0) for m in months]
        median = statistics.median(inflows)
        regular = sum(1 for x in inflows if abs(x - median) <= 0.3 * median) / len(inflows) if median > 0 else 0.0
        # A fee line without a reversal line on the same day and account is a rejection shown only by its fee.
        fee_only = len(self.fee_days - self.rejection_days)
        return {
            "avg_balance_12m": round(sum(last_year) / len(last_year), 0),
            "min_balance_12m": round(min(last_year), 0),
            "months_negative_balance_12m": sum(1 for b in month_ends if b < 0),
            "days_overdraft_12m": sum(1 for b in last_year if b < 0),
            "inflow_regularity": round(regular, 3),
            "rejected_sepa_debits_12m": self.rejection_lines + fee_only,
        }
