"""The register as rows: one per activity, every Art. 30 field, in the order the CNIL template lists them."""

from __future__ import annotations

from .models import ProcessingActivity

# (field or derived value, column heading): every field of the model, many-to-many by name.
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("reference", "reference"),
    ("name", "name"),
    ("is_active", "active"),
    ("controller_name", "controller"),
    ("controller_contact", "controller_contact"),
    ("dpo_contact", "dpo_contact"),
    ("joint_controller", "joint_controller"),
    ("representative", "representative"),
    ("purposes", "purposes"),
    ("legal_basis", "legal_basis"),
    ("legal_basis_detail", "legal_basis_detail"),
    ("data_subject_categories", "data_subject_categories"),
    ("personal_data_categories", "personal_data_categories"),
    ("data_sources", "data_sources"),
    ("recipients", "recipients"),
    ("recipient_partners", "recipient_partners"),
    ("third_country_transfers", "third_country_transfers"),
    ("transfer_countries", "transfer_countries"),
    ("transfer_safeguards", "transfer_safeguards"),
    ("retention_categories", "retention_categories"),
    ("retention_summary", "retention_summary"),
    ("security_measures", "security_measures"),
    ("automated_decision", "automated_decision"),
    ("automated_decision_logic", "automated_decision_logic"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
)
LIST_SEPARATOR = "; "
# A cell a spreadsheet would run as a formula starts with one of these: it is prefixed with a quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def activity_csv_row(activity: ProcessingActivity) -> list[str]:
    row = []
    for field, _heading in CSV_COLUMNS:
        if field == "recipient_partners":
            value = LIST_SEPARATOR.join(sorted(partner.name for partner in activity.recipient_partners.all()))
        elif field == "retention_categories":
            value = LIST_SEPARATOR.join(
                f"{category.code} ({category.retention_days} d, {category.action})"
                for category in sorted(activity.retention_categories.all(), key=lambda c: c.code)
            )
        elif field in ("created_at", "updated_at"):
            value = getattr(activity, field).isoformat(timespec="seconds")
        else:
            value = getattr(activity, field)
        row.append(_cell(value))
    return row
