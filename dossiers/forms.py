from django import forms
from django.utils import timezone

from scoring.statements import STATEMENT_FIGURES

from .models import Decision, Outcome


class OverrideForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, label="New decision")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="Reason",
        help_text="Required. Kept with your name and the time, and shown to auditors.",
        error_messages={"required": "An override needs a reason."},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("An override needs a reason.")
        return reason


def _amount_field(label: str, help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, min_value=0, max_digits=14, decimal_places=2, help_text=help_text
    )


class OutcomeForm(forms.Form):
    """What became of the credit; a defaulted credit may later be written off with the same form."""

    AMOUNTS = ("granted_amount", "outstanding_amount", "written_off_amount")

    status = forms.ChoiceField(choices=Outcome.Status.choices, label="Outcome")
    occurred_on = forms.DateField(
        label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), initial=timezone.localdate
    )
    granted_amount = _amount_field("Amount granted (€)")
    outstanding_amount = _amount_field("Amount outstanding (€)", "Still owed at the default.")
    written_off_amount = _amount_field("Amount written off (€)", "Required for a write-off.")


class StatementForm(forms.Form):
    """A fiscal year's figures an analyst read from the applicant's accounts, in euros."""

    LABELS = {
        "revenue": "Revenue",
        "net_income": "Net income",
        "ebitda": "EBITDA",
        "equity": "Equity",
        "total_assets": "Total assets",
        "current_assets": "Current assets",
        "current_liabilities": "Current liabilities",
        "financial_debt": "Financial debt",
    }

    fiscal_year_end = forms.DateField(
        label="Fiscal year end", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in STATEMENT_FIGURES:
            self.fields[name] = forms.DecimalField(
                label=self.LABELS[name],
                required=False,
                max_digits=16,
                decimal_places=2,
                min_value=0 if name in ("revenue", "total_assets") else None,
            )
