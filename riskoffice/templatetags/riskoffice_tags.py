from django import template

register = template.Library()


@register.filter
def pct(value: float | None, digits: int = 1) -> str:
    """0.0342 -> '3.4 %'."""
    if value is None or value == "":
        return "—"
    return f"{100 * float(value):.{int(digits)}f} %"
