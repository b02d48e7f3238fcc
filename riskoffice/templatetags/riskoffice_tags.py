"""Numbers as the reader's language writes them: "0,37 %" and "-37 662 €" in French, "0.37 %" and "-€37,662" in
English. The values themselves stay numbers; only their text follows the active language."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import get_language

register = template.Library()

NBSP = "\u00a0"  # keeps a number with its unit on one line
MISSING = "—"


def _decimal(value: object) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return number if number.is_finite() else None


def _grouped(number: Decimal, digits: int) -> str:
    """The number rounded half up to ``digits`` places, grouped by thousands with the language's separators."""
    rounded = number.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    # number_format truncates extra places rather than rounding: hence the quantize above.
    return number_format(rounded, decimal_pos=digits, force_grouping=True)


def _french() -> bool:
    return (get_language() or "").startswith("fr")


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    """A share as a percentage: 0.0342 -> "3,4 %" in French, "3.4 %" in English."""
    number = _decimal(value)
    if number is None:
        return MISSING
    text = _grouped(100 * number, int(digits))
    return f"{text}{NBSP}%" if _french() else f"{text} %"


@register.filter
def eur(value: object, digits: int = 0) -> str:
    """An amount in euros: -37662 -> "-37 662 €" in French, "-€37,662" in English (the sign before everything)."""
    number = _decimal(value)
    if number is None:
        return MISSING
    text = _grouped(abs(number), int(digits))
    sign = "-" if number < 0 and text.strip("0.,\u00a0\u202f ") else ""  # no "-0 €"
    return f"{sign}{text}{NBSP}€" if _french() else f"{sign}€{text}"


@register.filter
def isodate(value: object) -> object:
    """A stored ISO timestamp ("2025-06-23T15:45:21.99+00:00", JSON fields keep them so) as its local date.

    Anything that does not parse is shown as it is (a missing value as "—").
    """
    if value in (None, ""):
        return MISSING
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return value
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return date_format(moment.date(), "DATE_FORMAT")
