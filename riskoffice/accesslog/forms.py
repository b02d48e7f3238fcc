"""The auditor's search forms: every field optional; an invalid one is reported and left out of the search."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy

from .models import Action, Channel

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class _DatesForm(forms.Form):
    date_from = forms.DateField(required=False, label=gettext_lazy("From"), widget=DATE)
    date_to = forms.DateField(required=False, label=gettext_lazy("To"), widget=DATE)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise ValidationError(gettext_lazy("The start date comes after the end date."))
        return cleaned


class AccessLogSearchForm(_DatesForm):
    actor = forms.CharField(
        required=False,
        max_length=200,
        label=gettext_lazy("Actor"),
        help_text=gettext_lazy("A username, or an API client's id."),
    )
    object_id = forms.CharField(required=False, max_length=64, label=gettext_lazy("Object id"))
    channel = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any")), *Channel.choices], label=gettext_lazy("Channel")
    )
    action = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("Any")), *Action.choices], label=gettext_lazy("Action")
    )
    outcome = forms.IntegerField(required=False, min_value=100, max_value=599, label=gettext_lazy("HTTP status"))
    path = forms.CharField(
        required=False,
        max_length=500,
        label=gettext_lazy("Path"),
        help_text=gettext_lazy("The start of the path, e.g. /dossiers/."),
    )


class AuditSearchForm(_DatesForm):
    actor = forms.CharField(
        required=False,
        max_length=150,
        label=gettext_lazy("Actor"),
        help_text=gettext_lazy("A username, an API client's id, or a task's name."),
    )
    action = forms.CharField(required=False, max_length=100, label=gettext_lazy("Action"))
    object_type = forms.CharField(
        required=False,
        max_length=100,
        label=gettext_lazy("Object type"),
        help_text=gettext_lazy("e.g. dossiers.dossier"),
    )
    object_id = forms.CharField(required=False, max_length=64, label=gettext_lazy("Object id"))
