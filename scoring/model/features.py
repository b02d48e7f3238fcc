"""The feature catalogue: every model input, where it comes from, what it means, and how risk moves with it.

The catalogue is the single source for the model's feature order, its monotone
constraints, the reason texts and ``docs/features.md`` (``manage.py
feature_catalogue``). Missing values stay missing (NaN): XGBoost routes them, and
the explanation names them as missing data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Risk direction: +1 risk rises with the value, -1 risk falls with it, 0 no fixed direction.
RISK_UP, RISK_DOWN, NO_DIRECTION = 1, -1, 0


@dataclass(frozen=True)
class Feature:
    name: str
    source: str
    meaning: str
    unit: str  # years | months | count | eur | ratio | pct | days | flag | category
    direction: int
    label_en: str
    label_fr: str
    # Phrases for a value that lowers / raises risk, quoted with the value.
    good_en: str
    bad_en: str
    good_fr: str
    bad_fr: str

    @property
    def categorical(self) -> bool:
        return self.unit == "category"


CATALOGUE: tuple[Feature, ...] = (
    Feature(
        "company_age_years",
        "company registry",
        "Years since the company was created",
        "years",
        RISK_DOWN,
        "Company age",
        "Ancienneté de l'entreprise",
        "Established company",
        "Young company",
        "Entreprise établie",
        "Entreprise récente",
    ),
    Feature(
        "naf_section",
        "company registry",
        "NAF section letter of the main activity (coarse sector)",
        "category",
        NO_DIRECTION,
        "Sector",
        "Secteur",
        "Sector with few failures",
        "Sector with many failures",
        "Secteur peu défaillant",
        "Secteur à forte sinistralité",
    ),
    Feature(
        "headcount",
        "company registry",
        "Employees (middle of the INSEE headcount band)",
        "count",
        RISK_DOWN,
        "Headcount",
        "Effectif",
        "Substantial workforce",
        "Very small workforce",
        "Effectif conséquent",
        "Très petit effectif",
    ),
    Feature(
        "revenue",
        "financial statements",
        "Last published annual revenue",
        "eur",
        RISK_DOWN,
        "Revenue",
        "Chiffre d'affaires",
        "Solid revenue",
        "Small revenue",
        "Chiffre d'affaires solide",
        "Chiffre d'affaires faible",
    ),
    Feature(
        "net_margin",
        "financial statements",
        "Net income / revenue",
        "pct",
        RISK_DOWN,
        "Net margin",
        "Marge nette",
        "Profitable activity",
        "Weak or negative net margin",
        "Activité rentable",
        "Marge nette faible ou négative",
    ),
    Feature(
        "equity_ratio",
        "financial statements",
        "Equity / total assets",
        "pct",
        RISK_DOWN,
        "Equity ratio",
        "Ratio de fonds propres",
        "Strong equity base",
        "Thin or negative equity",
        "Fonds propres solides",
        "Fonds propres faibles ou négatifs",
    ),
    Feature(
        "current_ratio",
        "financial statements",
        "Current assets / current liabilities",
        "ratio",
        RISK_DOWN,
        "Current ratio",
        "Liquidité générale",
        "Comfortable short-term liquidity",
        "Tight short-term liquidity",
        "Liquidité à court terme confortable",
        "Liquidité à court terme tendue",
    ),
    Feature(
        "debt_to_ebitda",
        "financial statements",
        "Financial debt / EBITDA",
        "ratio",
        RISK_UP,
        "Debt to EBITDA",
        "Dette / EBITDA",
        "Moderate leverage",
        "High leverage",
        "Endettement modéré",
        "Endettement élevé",
    ),
    Feature(
        "amount_to_revenue",
        "request",
        "Requested amount / annual revenue",
        "pct",
        RISK_UP,
        "Amount requested vs revenue",
        "Montant demandé / chiffre d'affaires",
        "Amount small relative to revenue",
        "Amount large relative to revenue",
        "Montant modeste au regard du chiffre d'affaires",
        "Montant élevé au regard du chiffre d'affaires",
    ),
    Feature(
        "avg_balance_12m",
        "open banking",
        "Average end-of-day balance over 12 months",
        "eur",
        RISK_DOWN,
        "Average balance (12 months)",
        "Solde moyen (12 mois)",
        "Positive average balance over 12 months",
        "Low average balance over 12 months",
        "Solde moyen positif sur 12 mois",
        "Solde moyen faible sur 12 mois",
    ),
    Feature(
        "min_balance_12m",
        "open banking",
        "Lowest end-of-day balance over 12 months",
        "eur",
        RISK_DOWN,
        "Lowest balance (12 months)",
        "Solde minimum (12 mois)",
        "Balance never fell far",
        "Deep low point in the balance",
        "Solde jamais très bas",
        "Point bas du solde prononcé",
    ),
    Feature(
        "months_negative_balance_12m",
        "open banking",
        "Months ending with a negative balance, of 12",
        "count",
        RISK_UP,
        "Months in the red",
        "Mois à solde négatif",
        "Few months ending in the red",
        "Many months ending in the red",
        "Peu de mois à solde négatif",
        "Nombreux mois à solde négatif",
    ),
    Feature(
        "days_overdraft_12m",
        "open banking",
        "Days with a negative balance over 12 months",
        "days",
        RISK_UP,
        "Days in overdraft",
        "Jours de découvert",
        "Little time in overdraft",
        "Frequent overdraft",
        "Peu de jours de découvert",
        "Découvert fréquent",
    ),
    Feature(
        "inflow_regularity",
        "open banking",
        "Share of months whose inflows are within 30 % of the median",
        "pct",
        RISK_DOWN,
        "Regularity of inflows",
        "Régularité des encaissements",
        "Regular inflows",
        "Irregular inflows",
        "Encaissements réguliers",
        "Encaissements irréguliers",
    ),
    Feature(
        "rejected_sepa_debits_12m",
        "open banking",
        "Rejected SEPA direct debits over 12 months",
        "count",
        RISK_UP,
        "Rejected direct debits",
        "Prélèvements rejetés",
        "No rejected direct debits",
        "Rejected direct debits",
        "Aucun prélèvement rejeté",
        "Prélèvements rejetés",
    ),
    Feature(
        "payment_delays_12m",
        "negative events",
        "Supplier payment delays reported over 12 months",
        "count",
        RISK_UP,
        "Payment delays",
        "Retards de paiement",
        "No payment delays reported",
        "Payment delays reported",
        "Aucun retard de paiement signalé",
        "Retards de paiement signalés",
    ),
    Feature(
        "max_payment_delay_days",
        "negative events",
        "Longest payment delay beyond terms over 12 months",
        "days",
        RISK_UP,
        "Longest payment delay",
        "Plus long retard de paiement",
        "Short payment delays at most",
        "Long payment delay",
        "Retards de paiement courts",
        "Retard de paiement long",
    ),
    Feature(
        "open_insolvency_proceeding",
        "BODACC",
        "An insolvency proceeding (sauvegarde, redressement, liquidation) is open",
        "flag",
        RISK_UP,
        "Insolvency proceeding",
        "Procédure collective",
        "No insolvency proceeding open",
        "Insolvency proceeding open",
        "Aucune procédure collective en cours",
        "Procédure collective en cours",
    ),
)

FEATURE_NAMES = [feature.name for feature in CATALOGUE]


def _shared(name: str) -> Feature:
    """A B2B feature that means exactly the same for an individual: one entry, one name, one text."""
    return next(feature for feature in CATALOGUE if feature.name == name)


# Individuals: bank-derived, because a person has no registry entry or published accounts, and we keep
# nothing about them beyond the partner's internal reference (no name, no birth date, no national id).
B2C_CATALOGUE: tuple[Feature, ...] = (
    Feature(
        "monthly_income",
        "open banking",
        "Average monthly inflows over the 12 complete months",
        "eur",
        RISK_DOWN,
        "Monthly income",
        "Revenus mensuels",
        "Comfortable monthly income",
        "Modest monthly income",
        "Revenus mensuels confortables",
        "Revenus mensuels modestes",
    ),
    Feature(
        "income_regularity",
        "open banking",
        "Share of the 12 months whose inflows are within 30 % of the median month",
        "pct",
        RISK_DOWN,
        "Regularity of income",
        "Régularité des revenus",
        "Regular income",
        "Irregular income",
        "Revenus réguliers",
        "Revenus irréguliers",
    ),
    _shared("avg_balance_12m"),
    _shared("min_balance_12m"),
    _shared("months_negative_balance_12m"),
    _shared("days_overdraft_12m"),
    _shared("rejected_sepa_debits_12m"),
    Feature(
        "debt_service_ratio",
        "open banking",
        "Monthly repayments of existing credits / monthly income",
        "pct",
        RISK_UP,
        "Debt service ratio",
        "Taux d'endettement",
        "Light repayments on existing credits",
        "Heavy repayments on existing credits",
        "Charges de crédit légères",
        "Charges de crédit lourdes",
    ),
    Feature(
        "amount_to_income",
        "request",
        "Requested amount / annual income (12 × monthly income)",
        "pct",
        RISK_UP,
        "Amount requested vs income",
        "Montant demandé / revenus annuels",
        "Amount small relative to income",
        "Amount large relative to income",
        "Montant modeste au regard des revenus",
        "Montant élevé au regard des revenus",
    ),
    Feature(
        "gambling_share",
        "open banking",
        "Share of outflows paid to gambling and betting operators",
        "pct",
        RISK_UP,
        "Gambling spending",
        "Dépenses de jeux d'argent",
        "Little or no gambling spending",
        "Significant gambling spending",
        "Peu ou pas de dépenses de jeux",
        "Dépenses de jeux notables",
    ),
    Feature(
        "late_repayments_12m",
        "negative events",
        "Credit instalments reported late or unpaid over 12 months",
        "count",
        RISK_UP,
        "Late repayments",
        "Échéances en retard",
        "No late repayments reported",
        "Late repayments reported",
        "Aucune échéance en retard signalée",
        "Échéances en retard signalées",
    ),
    Feature(
        "account_history_months",
        "open banking",
        "Age of the oldest current account shared, in months",
        "months",
        RISK_DOWN,
        "Banking history",
        "Ancienneté bancaire",
        "Long banking history",
        "Short banking history",
        "Ancienneté bancaire longue",
        "Ancienneté bancaire courte",
    ),
)
B2C_FEATURE_NAMES = [feature.name for feature in B2C_CATALOGUE]

# One catalogue per segment; docs/features.md is generated from these (manage.py feature_catalogue).
CATALOGUES: dict[str, tuple[Feature, ...]] = {"b2b": CATALOGUE, "b2c": B2C_CATALOGUE}


def _by_name(catalogues: dict[str, tuple[Feature, ...]]) -> dict[str, Feature]:
    """Every feature of every segment by name. A name means one thing: a reason text must not depend on the
    segment, and a stored model's feature names must read the same in every catalogue."""
    by_name: dict[str, Feature] = {}
    for catalogue in catalogues.values():
        for feature in catalogue:
            if by_name.setdefault(feature.name, feature) != feature:
                raise ValueError(f"feature {feature.name!r} has two different definitions")
    return by_name


FEATURES_BY_NAME = _by_name(CATALOGUES)


def catalogue_for(segment: str) -> tuple[Feature, ...]:
    try:
        return CATALOGUES[segment]
    except KeyError:
        raise ValueError(f"no feature catalogue for segment {segment!r}") from None


def features_for(segment: str, gathered: Any, requested_amount: float) -> dict[str, Any]:
    """The segment's features from what the sources gathered (a ``scoring.sources.GatheredData``)."""
    if segment == "b2b":
        return build_features(
            company=gathered.company,
            financials=gathered.financials,
            bank=gathered.bank,
            events=gathered.events,
            requested_amount=requested_amount,
        )
    if segment == "b2c":
        return build_individual_features(bank=gathered.bank, events=gathered.events, requested_amount=requested_amount)
    raise ValueError(f"no feature builder for segment {segment!r}")


# INSEE headcount band code -> middle of the band.
HEADCOUNT_BANDS = {
    "NN": None,
    "00": 0,
    "01": 1.5,
    "02": 4,
    "03": 7.5,
    "11": 14.5,
    "12": 34.5,
    "21": 74.5,
    "22": 149.5,
    "31": 224.5,
    "32": 374.5,
    "41": 749.5,
    "42": 1499.5,
    "51": 3499.5,
    "52": 7499.5,
    "53": 10000,
}


def jsonable_features(features: dict[str, Any]) -> dict[str, Any]:
    """Features as stored in JSON: NaN (missing) becomes None."""
    return {k: (None if v is None or (isinstance(v, float) and v != v) else v) for k, v in features.items()}


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if is_missing(numerator) or is_missing(denominator) or denominator == 0:
        return None
    return numerator / denominator


def build_features(
    *,
    company: dict[str, Any],
    financials: dict[str, Any],
    bank: dict[str, Any] | None,
    events: dict[str, Any],
    requested_amount: float,
) -> dict[str, Any]:
    """Turn what the sources returned into the catalogue's features (None where data is missing)."""
    revenue = financials.get("revenue")
    ebitda = financials.get("ebitda")
    debt = financials.get("financial_debt")
    debt_to_ebitda = None
    if not is_missing(debt) and not is_missing(ebitda):
        # Negative EBITDA makes the ratio meaningless; cap it as "very leveraged".
        debt_to_ebitda = 20.0 if ebitda <= 0 else min(debt / ebitda, 20.0)
    bank = bank or {}
    return {
        "company_age_years": company.get("age_years"),
        "naf_section": company.get("naf_section"),
        "headcount": company.get("headcount"),
        "revenue": revenue,
        "net_margin": _ratio(financials.get("net_income"), revenue),
        "equity_ratio": _ratio(financials.get("equity"), financials.get("total_assets")),
        "current_ratio": _ratio(financials.get("current_assets"), financials.get("current_liabilities")),
        "debt_to_ebitda": debt_to_ebitda,
        "amount_to_revenue": _ratio(requested_amount, revenue),
        "avg_balance_12m": bank.get("avg_balance_12m"),
        "min_balance_12m": bank.get("min_balance_12m"),
        "months_negative_balance_12m": bank.get("months_negative_balance_12m"),
        "days_overdraft_12m": bank.get("days_overdraft_12m"),
        "inflow_regularity": bank.get("inflow_regularity"),
        "rejected_sepa_debits_12m": bank.get("rejected_sepa_debits_12m"),
        "payment_delays_12m": events.get("payment_delays_12m", 0),
        "max_payment_delay_days": events.get("max_payment_delay_days", 0),
        # None (missing) when the insolvency source could not answer: unknown is not "none".
        "open_insolvency_proceeding": None
        if events.get("open_insolvency_proceeding") is None
        else int(bool(events["open_insolvency_proceeding"])),
    }


def _capped_ratio(numerator: float | None, denominator: float | None, *, cap: float) -> float | None:
    """numerator / denominator, at most ``cap``; something owed out of no income at all is the cap."""
    if is_missing(numerator) or is_missing(denominator):
        return None
    if denominator <= 0:
        return cap if numerator > 0 else 0.0
    return min(numerator / denominator, cap)


def build_individual_features(
    *,
    bank: dict[str, Any] | None,
    events: dict[str, Any],
    requested_amount: float,
) -> dict[str, Any]:
    """An individual's features from the bank aggregates and reported events (None where data is missing).

    The bank aggregates use the open-banking connector's names (``inflow_regularity``) plus those only an
    individual's accounts give: ``avg_monthly_inflows``, ``monthly_credit_repayments``, ``gambling_share``
    and ``oldest_account_months``. Late repayments are missing, not zero, when no source reported on them.
    """
    bank = bank or {}
    income = bank.get("avg_monthly_inflows")
    annual_income = None if is_missing(income) else 12 * income
    return {
        "monthly_income": income,
        "income_regularity": bank.get("inflow_regularity"),
        "avg_balance_12m": bank.get("avg_balance_12m"),
        "min_balance_12m": bank.get("min_balance_12m"),
        "months_negative_balance_12m": bank.get("months_negative_balance_12m"),
        "days_overdraft_12m": bank.get("days_overdraft_12m"),
        "rejected_sepa_debits_12m": bank.get("rejected_sepa_debits_12m"),
        "debt_service_ratio": _capped_ratio(bank.get("monthly_credit_repayments"), income, cap=2.0),
        "amount_to_income": _capped_ratio(requested_amount, annual_income, cap=10.0),
        "gambling_share": bank.get("gambling_share"),
        "late_repayments_12m": events.get("late_repayments_12m"),
        "account_history_months": bank.get("oldest_account_months"),
    }


def format_value(feature: Feature, value: Any, lang: str) -> str:
    """The value as an analyst reads it: '8 420 €', '12 %', '3,5 ans'."""
    if is_missing(value):
        return "n/a" if lang == "en" else "n.d."
    sep, dec = (",", ".") if lang == "en" else ("\u202f", ",")

    def number(x: float, digits: int = 0) -> str:
        text = f"{x:,.{digits}f}"
        return text.replace(",", "\0").replace(".", dec).replace("\0", sep)

    unit = feature.unit
    if unit == "eur":
        return f"{number(value)} €" if lang == "fr" else f"€{number(value)}"
    if unit == "pct":
        return f"{number(100 * value, 0)} %" if lang == "fr" else f"{number(100 * value, 0)}%"
    if unit == "ratio":
        return number(value, 2)
    if unit == "years":
        return f"{number(value, 1)} {'years' if lang == 'en' else 'ans'}"
    if unit == "months":
        return f"{number(value)} {'months' if lang == 'en' else 'mois'}"
    if unit == "days":
        return f"{number(value)} {'days' if lang == 'en' else 'jours'}"
    if unit == "flag":
        return ("yes" if value else "no") if lang == "en" else ("oui" if value else "non")
    if unit == "category":
        return str(value)
    return number(value)


def factor_text(feature_name: str, value: Any, contribution: float, lang: str) -> str:
    """One reason as a sentence quoting the value, e.g. 'Solde moyen positif sur 12 mois (8 420 €)'."""
    feature = FEATURES_BY_NAME[feature_name]
    if is_missing(value):
        label = feature.label_en if lang == "en" else feature.label_fr
        return f"Missing data: {label.lower()}" if lang == "en" else f"Donnée manquante : {label.lower()}"
    raises_risk = contribution > 0
    if lang == "en":
        phrase = feature.bad_en if raises_risk else feature.good_en
    else:
        phrase = feature.bad_fr if raises_risk else feature.good_fr
    if feature.unit == "flag":
        return phrase
    return f"{phrase} ({format_value(feature, value, lang)})"
