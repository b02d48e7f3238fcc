from django import forms
from django.utils import timezone

from .models import Decision, Outcome


class OverrideForm(forms.Form):
    decision = forms.ChoiceField(choices=Decision.choices, label="New decision")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label="Reason",
        help_text="Required. Kept with your name and the time, and shown to auditors.",
        error_messages={"required": "An override needs a reason."},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("An override needs a reason.")
        return reason


class OutcomeForm(forms.Form):
    status = forms.ChoiceField(choices=Outcome.Status.choices, label="Outcome")
    occurred_on = forms.DateField(
        label="Date", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), initial=timezone.localdate
    )
