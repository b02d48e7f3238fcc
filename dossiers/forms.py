from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scoring.statements import STATEMENT_FIGURES

from .models import Decision, Outcome, OverrideReason
from .overrides import OVERRIDE_DECISIONS, reason_label


class ReasonCodeField(forms.ModelChoiceField):
    """The active override reason codes, labelled in the page's language."""

    def label_from_instance(self, obj: OverrideReason) -> str:
        return reason_label(obj)


class OverrideForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(value, label) for value, label in Decision.choices if value in OVERRIDE_DECISIONS],
        label=_("New decision"),
    )
    reason_code = ReasonCodeField(
        queryset=OverrideReason.objects.filter(is_active=True),
        label=_("Reason code"),
        empty_label=_("Choose a reason…"),
        error_messages={
            "required": _("Choose a reason code from the list."),
            "invalid_choice": _("Choose a reason code from the list."),
        },
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label=_("Reason"),
        help_text=_("Required. Kept with your name and the time, and shown to auditors; never sent to the partner."),
        error_messages={"required": _("An override needs a reason.")},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("An override needs a reason."))
        return reason


class OverrideReviewForm(forms.Form):
    """A senior analyst's approval or rejection of an override awaiting four eyes."""

    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label=_("Review note"),
        help_text=_("Required. Kept with the override and shown on the dossier."),
        error_messages={"required": _("Approving or rejecting an override takes a note.")},
    )

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError(_("Approving or rejecting an override takes a note."))
        return note


def _amount_field(label: str, help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label, required=False, min_value=0, max_digits=14, decimal_places=2, help_text=help_text
    )


class OutcomeForm(forms.Form):
    """What became of the credit; a defaulted credit may later be written off with the same form."""

    AMOUNTS = ("granted_amount", "outstanding_amount", "written_off_amount")

    status = forms.ChoiceField(choices=Outcome.Status.choices, label=_("Outcome"))
    occurred_on = forms.DateField(
        label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), initial=timezone.localdate
    )
    granted_amount = _amount_field(_("Amount granted (€)"))
    outstanding_amount = _amount_field(_("Amount outstanding (€)"), _("Still owed at the default."))
    written_off_amount = _amount_field(_("Amount written off (€)"), _("Required for a write-off."))


class StatementForm(forms.Form):
    """A fiscal year's figures an analyst read from the applicant's accounts, in euros."""

    LABELS = {
        "revenue": _("Revenue"),
        "net_income": _("Net income"),
        "ebitda": _("EBITDA"),
        "equity": _("Equity"),
        "total_assets": _("Total assets"),
        "current_assets": _("Current assets"),
        "current_liabilities": _("Current liabilities"),
        "financial_debt": _("Financial debt"),
    }

    fiscal_year_end = forms.DateField(
        label=_("Fiscal year end"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
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


# --- outcomes: correction and CSV import (dossiers/views/outcomes.py) ---------------------------------


class OutcomeCorrectionForm(OutcomeForm):
    """The outcome as it should have been recorded, and why: every field may change, the reason is required."""

    prefix = "correction"  # on the dossier page beside the outcome and write-off forms: ids of its own
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
        label=_("Reason for the correction"),
        help_text=_("Required. Kept in the audit trail with what the outcome was, and sent to no one else."),
        error_messages={"required": _("A correction needs a reason.")},
    )

    @classmethod
    def for_outcome(cls, outcome: Outcome) -> "OutcomeCorrectionForm":
        """The form filled in with the outcome as recorded, for the analyst to change what is wrong."""
        initial = {"status": outcome.status, "occurred_on": outcome.occurred_on}
        initial.update({name: getattr(outcome, name) for name in cls.AMOUNTS})
        return cls(initial=initial)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("A correction needs a reason."))
        return reason


class OutcomeImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={"required": _("Choose a CSV file to import."), "empty": _("The file is empty.")},
    )

    def __init__(self, *args, max_bytes: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.max_bytes:  # refused before the upload is read into memory
            raise forms.ValidationError(
                _("The file is %(size)s MB; the limit is %(limit)s MB. Split it into smaller files.")
                % {"size": f"{upload.size / 2**20:.1f}", "limit": self.max_bytes // 2**20}
            )
        return upload


# --- challenge: corrected inputs and a re-score (dossiers/views/challenge.py) ------------------------------


class ChallengeForm(forms.Form):
    """What an analyst disputes: the amount, a statement, data points; with a justification and the document.

    Statement fields are named ``statement_<figure>``, data points ``feature_<feature name>``: the
    segment's data points (``scoring.sources.on_file.ANALYST_FIELDS``), each showing the value in force.
    """

    justification = forms.CharField(
        label=_("Justification"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("Why the recommendation is wrong. Kept with your name, shown to auditors."),
        error_messages={"required": _("A challenge needs a justification.")},
    )
    source_reference = forms.CharField(
        label=_("Source document"),
        max_length=200,
        help_text=_("The document the corrections come from, e.g. “Liasse fiscale 2025, p. 3”."),
        error_messages={"required": _("Name the document the corrections come from.")},
    )
    requested_amount = forms.DecimalField(
        label=_("Requested amount (€)"), required=False, min_value=0.01, max_digits=14, decimal_places=2
    )

    def __init__(self, *args, dossier, score=None, **kwargs) -> None:
        from django.utils.translation import get_language

        from riskoffice.templatetags.riskoffice_tags import eur
        from scoring.model.features import FEATURES_BY_NAME, format_value
        from scoring.sources.on_file import ANALYST_FIELDS

        super().__init__(*args, **kwargs)
        self.dossier = dossier
        self.fields["requested_amount"].help_text = _("Now %(amount)s. Leave empty to keep it.") % {
            "amount": eur(dossier.requested_amount)
        }
        self.statement_names: list[str] = []
        if dossier.company_id:
            self.fields["statement_fiscal_year_end"] = forms.DateField(
                label=_("Fiscal year end"),
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )
            for name in STATEMENT_FIGURES:
                self.fields[f"statement_{name}"] = forms.DecimalField(
                    label=StatementForm.LABELS[name], required=False, max_digits=16, decimal_places=2
                )
            self.statement_names = ["statement_fiscal_year_end", *(f"statement_{n}" for n in STATEMENT_FIGURES)]
        lang = "fr" if (get_language() or "fr").startswith("fr") else "en"
        features = score.snapshot.features if score is not None else {}
        self.feature_names: list[str] = []
        for name, field in ANALYST_FIELDS.get(dossier.segment, {}).items():
            feature = FEATURES_BY_NAME[name]
            self.fields[f"feature_{name}"] = forms.DecimalField(
                label=feature.label_fr if lang == "fr" else feature.label_en,
                required=False,
                max_digits=16,
                decimal_places=0 if field.integer else 4,
                help_text=_("In force: %(value)s") % {"value": format_value(feature, features.get(name), lang)},
            )
            self.feature_names.append(f"feature_{name}")

    def statement_fields(self) -> list:
        return [self[name] for name in self.statement_names]

    def feature_fields(self) -> list:
        return [self[name] for name in self.feature_names]

    def clean(self) -> dict:
        data = super().clean()
        statement = {name.removeprefix("statement_"): data.get(name) for name in self.statement_names}
        self.statement = statement if any(value is not None for value in statement.values()) else None
        self.feature_values = {
            name.removeprefix("feature_"): data[name] for name in self.feature_names if data.get(name) is not None
        }
        return data
