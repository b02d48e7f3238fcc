"""Synthetic French SME data with a documented ground-truth risk function.

No real portfolio ships with the product. This generator draws companies whose
features hang together (a latent financial health drives margins, equity, bank
behaviour and incidents), then draws each company's default from
``true_pd(features)`` — the oracle. A model trained on this data can be compared
with the best achievable, the oracle's own AUC and Brier score.

The ground truth (log-odds of default within 12 months), documented in
``docs/synthetic-data.md``::

    logit(PD) = -5.1
      + 1.3 · exp(-age / 3)                      young companies fail more
      + sector effect                            construction, retail, hospitality, transport higher
      - 0.12 · ln(1 + headcount)
      - 3.5 · clip(net_margin, -0.3, 0.3)         (+0.2 if accounts are missing)
      - 1.4 · clip(equity_ratio, -0.5, 0.8) + 0.6 · [equity_ratio < 0]
      - 0.5 · ln(clip(current_ratio, 0.2, 5))
      + 0.07 · clip(debt_to_ebitda, 0, 15)
      + 1.5 · clip(amount_to_revenue, 0, 1)
      + bank terms (+0.25 if no bank data):
          - 0.25 · sign(avg) · ln(1 + |avg| / 5000) + 0.10 · months_negative
          + 0.004 · days_overdraft - 1.2 · (inflow_regularity - 0.7) + 0.35 · min(rejected_sepa, 5)
      + 0.15 · min(payment_delays, 10) + 0.01 · min(max_delay_days, 120)
      + 2.8 · open_insolvency_proceeding

The portfolio defaults at about 3 % a year, more for companies under 3 years
old and in construction, retail and hospitality (``../shared/SOURCES.md``).

Individuals (B2C) have their own generator and ground truth, documented at
``true_logit_individual`` and in ``docs/synthetic-data.md``: bank behaviour,
existing credit repayments, gambling and late repayments, defaulting at about
5 % a year, as unsecured consumer credit does.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from stdnum import luhn

from scoring.model.features import build_features, build_individual_features, is_missing

SECTORS = {  # NAF section: (share of companies, effect on log-odds)
    "C": (0.08, 0.0),
    "F": (0.14, 0.45),
    "G": (0.19, 0.25),
    "H": (0.05, 0.2),
    "I": (0.08, 0.5),
    "J": (0.06, -0.1),
    "K": (0.03, -0.3),
    "L": (0.05, -0.05),
    "M": (0.14, -0.2),
    "N": (0.07, 0.1),
    "Q": (0.06, -0.3),
    "S": (0.05, 0.05),
}
SECTOR_NAF = {  # a typical NAF code per section, for display
    "C": "25.62B",
    "F": "43.22A",
    "G": "47.11B",
    "H": "49.41A",
    "I": "56.10A",
    "J": "62.01Z",
    "K": "66.19B",
    "L": "68.20B",
    "M": "70.22Z",
    "N": "81.21Z",
    "Q": "86.21Z",
    "S": "96.02A",
}
INTERCEPT = -5.1
NAME_PARTS = (
    (
        "Atelier",
        "Boulangerie",
        "Transports",
        "Bâtiment",
        "Conseil",
        "Garage",
        "Pharmacie",
        "Imprimerie",
        "Menuiserie",
        "Studio",
        "Cabinet",
        "Maison",
        "Société",
        "Plomberie",
        "Brasserie",
    ),
    (
        "Martin",
        "Bernard",
        "Dubois",
        "Lefèvre",
        "Moreau",
        "Laurent",
        "Simon",
        "Michel",
        "Garnier",
        "Faure",
        "Rousseau",
        "Blanc",
        "Guerin",
        "Muller",
        "Henry",
        "Roux",
        "Fournier",
        "Girard",
        "Bonnet",
        "Dupont",
    ),
    ("", " & Fils", " SAS", " SARL", " Frères", " et Associés", " Services"),
)


def siren_from_number(n: int) -> str:
    """A valid SIREN from any integer: 8 digits from ``n`` plus the Luhn check digit."""
    body = f"{n % 10**8:08d}"
    return body + luhn.calc_check_digit(body)


def _rng_for(key: str) -> np.random.Generator:
    digest = hashlib.sha256(key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


@dataclass
class SyntheticCompany:
    siren: str
    name: str
    naf_code: str
    company: dict[str, Any]
    financials: dict[str, Any]
    bank: dict[str, Any] | None
    events: dict[str, Any]
    requested_amount: float

    def features(self) -> dict[str, Any]:
        return build_features(
            company=self.company,
            financials=self.financials,
            bank=self.bank,
            events=self.events,
            requested_amount=self.requested_amount,
        )


def draw_company(rng: np.random.Generator, siren: str, *, with_bank: bool | None = None) -> SyntheticCompany:
    sections = list(SECTORS)
    section = sections[rng.choice(len(sections), p=[SECTORS[s][0] for s in sections])]
    health = rng.normal()  # latent financial health: drives features, not the PD directly
    age = float(np.clip(rng.gamma(1.6, 7.0), 0.2, 80.0))
    headcount = float(np.clip(round(math.exp(rng.normal(0.9 + 0.04 * min(age, 30), 1.1))) - 1, 0, 5000))
    has_accounts = rng.random() < (0.55 + 0.02 * min(age, 10))
    revenue = float(round((headcount + 1) * math.exp(rng.normal(11.4, 0.5)), -2))
    financials: dict[str, Any] = {}
    if has_accounts:
        net_margin = float(np.clip(rng.normal(0.03 + 0.03 * health, 0.05), -0.5, 0.4))
        total_assets = revenue * math.exp(rng.normal(-0.4, 0.3))
        equity_ratio = float(np.clip(rng.normal(0.30 + 0.12 * health, 0.15), -0.6, 0.9))
        ebitda = revenue * (net_margin + abs(rng.normal(0.05, 0.02)))
        financials = {
            "revenue": revenue,
            "net_income": round(revenue * net_margin, 0),
            "total_assets": round(total_assets, 0),
            "equity": round(total_assets * equity_ratio, 0),
            "current_assets": round(total_assets * 0.6, 0),
            "current_liabilities": round(total_assets * 0.6 / math.exp(rng.normal(0.25 + 0.2 * health, 0.3)), 0),
            "ebitda": round(ebitda, 0),
            "financial_debt": round(max(0.0, total_assets * rng.uniform(0.05, 0.6) * (1 - 0.3 * health)), 0),
        }
    if with_bank is None:
        with_bank = rng.random() < 0.8
    bank = None
    if with_bank:
        monthly_flow = revenue / 12
        avg = monthly_flow * rng.normal(0.25 + 0.2 * health, 0.2)
        stress = 1 / (1 + math.exp(1.5 * health))  # 0 (healthy) .. 1 (stressed)
        months_negative = int(min(12, rng.poisson(0.3 + 5 * stress**2)))
        bank = {
            "avg_balance_12m": round(avg, 0),
            "min_balance_12m": round(avg - abs(rng.normal(0.5, 0.3)) * monthly_flow, 0),
            "months_negative_balance_12m": months_negative,
            "days_overdraft_12m": int(min(365, months_negative * rng.uniform(3, 25))),
            "inflow_regularity": float(np.clip(rng.beta(6, 2) - 0.25 * stress, 0, 1)),
            "rejected_sepa_debits_12m": int(rng.poisson(0.05 + 2.0 * stress**3)),
        }
    stress = 1 / (1 + math.exp(1.5 * health))
    delays = int(rng.poisson(0.2 + 2.5 * stress**2))
    events = {
        "payment_delays_12m": delays,
        "max_payment_delay_days": int(rng.gamma(2, 12)) if delays else 0,
        "open_insolvency_proceeding": bool(rng.random() < 0.002 + 0.03 * stress**3),
    }
    amount_base = revenue * rng.uniform(0.02, 0.25)
    requested_amount = float(max(1000.0, round(amount_base, -2)))
    name = (
        f"{NAME_PARTS[0][rng.integers(len(NAME_PARTS[0]))]} {NAME_PARTS[1][rng.integers(len(NAME_PARTS[1]))]}"
        f"{NAME_PARTS[2][rng.integers(len(NAME_PARTS[2]))]}"
    )
    return SyntheticCompany(
        siren=siren,
        name=name,
        naf_code=SECTOR_NAF[section],
        company={
            "age_years": round(age, 2),
            "naf_section": section,
            "headcount": headcount,
            "active": not events["open_insolvency_proceeding"] or rng.random() < 0.9,
        },
        financials=financials,
        bank=bank,
        events=events,
        requested_amount=requested_amount,
    )


def true_logit(f: dict[str, Any]) -> float:
    """The ground truth: log-odds of default within 12 months given the features (module docstring)."""

    def val(name: str) -> float | None:
        value = f.get(name)
        return None if is_missing(value) else float(value)

    z = INTERCEPT
    z += 1.3 * math.exp(-(val("company_age_years") or 0.0) / 3)
    z += SECTORS.get(f.get("naf_section") or "", (0, 0.0))[1]
    z -= 0.12 * math.log1p(val("headcount") or 0.0)
    margin = val("net_margin")
    z += 0.2 if margin is None else -3.5 * float(np.clip(margin, -0.3, 0.3))
    equity = val("equity_ratio")
    if equity is not None:
        z += -1.4 * float(np.clip(equity, -0.5, 0.8)) + (0.6 if equity < 0 else 0.0)
    current = val("current_ratio")
    if current is not None:
        z -= 0.5 * math.log(float(np.clip(current, 0.2, 5)))
    leverage = val("debt_to_ebitda")
    if leverage is not None:
        z += 0.07 * float(np.clip(leverage, 0, 15))
    share = val("amount_to_revenue")
    if share is not None:
        z += 1.5 * float(np.clip(share, 0, 1))
    avg = val("avg_balance_12m")
    if avg is None:
        z += 0.25
    else:
        z -= 0.25 * math.copysign(math.log1p(abs(avg) / 5000), avg)
        z += 0.10 * (val("months_negative_balance_12m") or 0)
        z += 0.004 * (val("days_overdraft_12m") or 0)
        z -= 1.2 * ((val("inflow_regularity") or 0.7) - 0.7)
        z += 0.35 * min(val("rejected_sepa_debits_12m") or 0, 5)
    z += 0.15 * min(val("payment_delays_12m") or 0, 10)
    z += 0.01 * min(val("max_payment_delay_days") or 0, 120)
    z += 2.8 * (val("open_insolvency_proceeding") or 0)
    return z


def true_pd(features: dict[str, Any]) -> float:
    return 1 / (1 + math.exp(-true_logit(features)))


def sandbox_company(siren: str, *, with_bank: bool) -> SyntheticCompany:
    """The deterministic sandbox profile of a SIREN: the same SIREN always gives the same company.

    The bank data is always drawn and then dropped when no token was sent, so that the
    random draws after it (events, name) do not depend on ``with_bank``.
    """
    company = draw_company(_rng_for(f"sandbox:{siren}"), siren, with_bank=True)
    return company if with_bank else replace(company, bank=None)


def generate_portfolio(
    n: int, *, seed: int = 7, drift_from: int | None = None
) -> list[tuple[SyntheticCompany, float, bool]]:
    """``n`` companies with their true PD and a default drawn from it.

    With ``drift_from``, the companies from that position on (generation order is time) draw their default from
    ``true_pd_drifted`` instead: the same companies and the same random draws, so every row before the drift
    point, and every company after it, is the one the undrifted book has.
    """
    rng = np.random.default_rng(seed)
    portfolio = []
    used: set[str] = set()
    while len(portfolio) < n:
        siren = siren_from_number(int(rng.integers(10**7, 10**8 - 1)) * 1)
        if siren in used:
            continue
        used.add(siren)
        company = draw_company(rng, siren)
        drifted = drift_from is not None and len(portfolio) >= drift_from
        pd_true = (true_pd_drifted if drifted else true_pd)(company.features())
        portfolio.append((company, pd_true, bool(rng.random() < pd_true)))
    return portfolio


# --- Drift: the true risk function changes (scripts/bench_drift.py) -------------------------

# After the drift, a downturn: defaults rise across the board, leverage that mattered little now matters a lot
# (debt costs more to serve), and hospitality and construction suffer most. Every change keeps the catalogue's
# risk directions, so a retrained model, monotone as they say, can learn the new function.
DRIFT_LEVEL_SHIFT = 0.3
DRIFT_DEBT_TO_EBITDA = 0.25  # per unit of clip(debt_to_ebitda, 0, 15), instead of 0.07
DRIFT_SECTOR_SHIFT = {"I": 0.8, "F": 0.6}


def true_logit_drifted(f: dict[str, Any]) -> float:
    """The ground truth after the drift::

    logit(PD) = true_logit(features)
      + 0.3                                                level shift
      + (0.25 - 0.07) · clip(debt_to_ebitda, 0, 15)        leverage now weighs 0.25 a unit
      + 0.8 · [sector I] + 0.6 · [sector F]                hospitality, construction
    """
    z = true_logit(f) + DRIFT_LEVEL_SHIFT
    leverage = f.get("debt_to_ebitda")
    if not is_missing(leverage):
        z += (DRIFT_DEBT_TO_EBITDA - 0.07) * float(np.clip(float(leverage), 0, 15))
    z += DRIFT_SECTOR_SHIFT.get(f.get("naf_section") or "", 0.0)
    return z


def true_pd_drifted(features: dict[str, Any]) -> float:
    return 1 / (1 + math.exp(-true_logit_drifted(features)))


@dataclass
class MonthlyApplication:
    month: int
    company: SyntheticCompany
    true_pd: float
    defaulted: bool


def generate_monthly_applications(
    per_month: int, *, first_month: int, last_month: int, drift_month: int | None = None, seed: int = 7
) -> list[MonthlyApplication]:
    """``per_month`` applications for each month from ``first_month`` to ``last_month`` (inclusive), in order.

    One book from ``generate_portfolio``: month ``m`` holds the next ``per_month`` companies. Defaults follow
    ``true_pd`` before ``drift_month`` and ``true_pd_drifted`` from it on (never, when it is None).
    """
    months = list(range(first_month, last_month + 1))
    drift_from = None if drift_month is None else max(0, (drift_month - first_month)) * per_month
    book = generate_portfolio(per_month * len(months), seed=seed, drift_from=drift_from)
    return [
        MonthlyApplication(month=months[i // per_month], company=company, true_pd=pd_true, defaulted=defaulted)
        for i, (company, pd_true, defaulted) in enumerate(book)
    ]


# --- Individuals (B2C) ----------------------------------------------------------------------

B2C_INTERCEPT = -4.2
MEDIAN_INCOME = 2000.0  # € a month: the reference point of the income effect


@dataclass
class SyntheticIndividual:
    reference: str
    bank: dict[str, Any] | None
    events: dict[str, Any]
    requested_amount: float

    def features(self) -> dict[str, Any]:
        return build_individual_features(bank=self.bank, events=self.events, requested_amount=self.requested_amount)


def draw_individual(rng: np.random.Generator, reference: str, *, with_bank: bool | None = None) -> SyntheticIndividual:
    """One individual: a latent financial health drives income, balances, credits, gambling and incidents."""
    health = rng.normal()
    stress = 1 / (1 + math.exp(1.5 * health))  # 0 (healthy) .. 1 (stressed)
    income = float(np.clip(math.exp(rng.normal(7.65 + 0.12 * health, 0.45)), 400, 20000))  # median ≈ 2,100 €
    oldest_account_months = int(np.clip(rng.gamma(2.0, 55), 3, 480))
    has_credits = rng.random() < 0.45 + 0.25 * stress
    if with_bank is None:
        with_bank = rng.random() < 0.9
    bank = None
    if with_bank:
        avg = income * rng.normal(0.5 + 0.35 * health, 0.4)
        months_negative = int(min(12, rng.poisson(0.2 + 5 * stress**2)))
        gambles = rng.random() < 0.12 + 0.15 * stress
        bank = {
            "avg_monthly_inflows": round(income, 0),
            "inflow_regularity": round(float(np.clip(rng.beta(8, 2) - 0.3 * stress, 0, 1)), 3),
            "avg_balance_12m": round(avg, 0),
            "min_balance_12m": round(avg - abs(rng.normal(0.9, 0.4)) * income, 0),
            "months_negative_balance_12m": months_negative,
            "days_overdraft_12m": int(min(365, months_negative * rng.uniform(2, 22))),
            "rejected_sepa_debits_12m": int(rng.poisson(0.03 + 2.0 * stress**3)),
            "monthly_credit_repayments": (
                round(income * float(np.clip(rng.beta(2, 8) + 0.15 * stress, 0.01, 1.0)), 0) if has_credits else 0.0
            ),
            "gambling_share": (
                round(float(np.clip(rng.beta(1.2, 25) + 0.08 * stress * rng.random(), 0, 0.6)), 4) if gambles else 0.0
            ),
            "oldest_account_months": oldest_account_months,
        }
    events = {"late_repayments_12m": int(rng.poisson(0.05 + 1.8 * stress**2)) if has_credits else 0}
    requested_amount = float(np.clip(round(math.exp(rng.normal(8.0, 0.8)), -1), 300, 50000))  # median ≈ 3,000 €
    return SyntheticIndividual(reference=reference, bank=bank, events=events, requested_amount=requested_amount)


def true_logit_individual(f: dict[str, Any]) -> float:
    """The B2C ground truth: log-odds of default within 12 months given an individual's features::

        logit(PD) = -4.2
          + 1.6 when there is no bank data (sharing no account is itself a warning), else
              - 0.6 · ln(clip(monthly_income, 400, 20000) / 2000)
              - 1.5 · (income_regularity - 0.65)
              - 0.3 · sign(avg_balance) · ln(1 + |avg_balance| / 1000)
              + 0.12 · months_negative + 0.003 · days_overdraft + 0.4 · min(rejected_sepa, 5)
              + 2.2 · clip(debt_service_ratio, 0, 0.8)
              + 5.0 · clip(gambling_share, 0, 0.3)
              - 0.3 · ln(1 + clip(account_history_months, 0, 480) / 12)
              + 1.0 · clip(amount_to_income, 0, 1)
          + 0.4 · min(late_repayments, 6)

    ``min_balance_12m`` has no effect of its own: it informs only through what it shares with the rest.
    """

    def val(name: str) -> float | None:
        value = f.get(name)
        return None if is_missing(value) else float(value)

    z = B2C_INTERCEPT
    avg = val("avg_balance_12m")
    if avg is None:
        z += 1.6
    else:
        income = val("monthly_income")
        if income is not None:
            z -= 0.6 * math.log(float(np.clip(income, 400, 20000)) / MEDIAN_INCOME)
        regularity = val("income_regularity")
        if regularity is not None:
            z -= 1.5 * (regularity - 0.65)
        z -= 0.3 * math.copysign(math.log1p(abs(avg) / 1000), avg)
        z += 0.12 * (val("months_negative_balance_12m") or 0)
        z += 0.003 * (val("days_overdraft_12m") or 0)
        z += 0.4 * min(val("rejected_sepa_debits_12m") or 0, 5)
        z += 2.2 * float(np.clip(val("debt_service_ratio") or 0, 0, 0.8))
        z += 5.0 * float(np.clip(val("gambling_share") or 0, 0, 0.3))
        z -= 0.3 * math.log1p(float(np.clip(val("account_history_months") or 0, 0, 480)) / 12)
        z += 1.0 * float(np.clip(val("amount_to_income") or 0, 0, 1))
    z += 0.4 * min(val("late_repayments_12m") or 0, 6)
    return z


def true_pd_individual(features: dict[str, Any]) -> float:
    return 1 / (1 + math.exp(-true_logit_individual(features)))


def sandbox_individual(reference: str, *, with_bank: bool) -> SyntheticIndividual:
    """The deterministic sandbox profile of a reference: the same reference always gives the same person.

    As for companies, the bank data is drawn whether or not it is kept, so events do not depend on ``with_bank``.
    """
    individual = draw_individual(_rng_for(f"sandbox-b2c:{reference}"), reference, with_bank=True)
    return individual if with_bank else replace(individual, bank=None)


def generate_b2c_portfolio(n: int, *, seed: int = 13) -> list[tuple[SyntheticIndividual, float, bool]]:
    """``n`` individuals (references ``CUST-…``) with their true PD and a default drawn from it."""
    rng = np.random.default_rng(seed)
    portfolio = []
    used: set[str] = set()
    while len(portfolio) < n:
        reference = f"CUST-{int(rng.integers(10**7, 10**8)):08d}"
        if reference in used:
            continue
        used.add(reference)
        individual = draw_individual(rng, reference)
        pd_true = true_pd_individual(individual.features())
        portfolio.append((individual, pd_true, bool(rng.random() < pd_true)))
    return portfolio
