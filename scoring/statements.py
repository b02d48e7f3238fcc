"""Financial statements: the figures one may carry and the rules every way of supplying one follows.

The partner API (``dossiers.api``), the analyst's form and ``dossiers.services`` all
check a statement with ``statement_errors``, so the rules live once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.utils import timezone

# The figures a statement may carry, in the order forms and the API list them.
STATEMENT_FIGURES = (
    "revenue",
    "net_income",
    "ebitda",
    "equity",
    "total_assets",
    "current_assets",
    "current_liabilities",
    "financial_debt",
)
NON_NEGATIVE_FIGURES = ("revenue", "total_assets")


def statement_errors(values: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a statement's values, by field (``NON_FIELD_ERRORS`` for the statement as a whole)."""
    errors: dict[str, str] = {}
    fiscal_year_end: date | None = values.get("fiscal_year_end")
    if fiscal_year_end is None:
        errors["fiscal_year_end"] = "Give the last day of the fiscal year."
    elif fiscal_year_end > timezone.localdate():
        errors["fiscal_year_end"] = "A fiscal year still running has no statement yet."
    figures = statement_figures(values)
    if not figures:
        errors[NON_FIELD_ERRORS] = f"Give at least one figure. Figures: {', '.join(STATEMENT_FIGURES)}."
    for name in NON_NEGATIVE_FIGURES:
        if figures.get(name, 0) < 0:
            errors[name] = "Cannot be negative."
    return errors


def statement_figures(values: dict[str, Any]) -> dict[str, Any]:
    """The figures given, by name; absent and empty ones left out."""
    return {name: values[name] for name in STATEMENT_FIGURES if values.get(name) is not None}
