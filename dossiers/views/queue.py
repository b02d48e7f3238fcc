"""The analysts' back-office queue: search, filters, sort, tabs with counts, and taking a dossier to work on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from riskoffice.models import Partner
from riskoffice.roles import CAN_DECIDE, CAN_READ_DOSSIERS, SENIOR_ANALYST, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import require_role, seek_page
from scoring.models import Decision, Score, Segment
from scoring.policy.scale import BANDS

from .. import assignment, selectors
from ..models import Dossier

PAGE_SIZE = 50
PAGE_SIZES = (25, 50, 100)


# --- the filters ---------------------------------------------------------------------------------------------


class AmountField(forms.DecimalField):
    """An amount in euros as people type it: "25000", "25 000", "25 000,50 €"."""

    def to_python(self, value: Any) -> Decimal | None:
        if isinstance(value, str):
            value = re.sub(r"[\s\u00a0\u202f€]", "", value).replace(",", ".")
        return super().to_python(value)


TABS = (
    ("all", gettext_lazy("All")),
    ("pending", gettext_lazy("Pending")),
    ("to_decide", gettext_lazy("To decide")),
    ("awaiting_approval", gettext_lazy("Awaiting approval")),
    ("mine", gettext_lazy("Mine")),
    ("failed", gettext_lazy("Failed")),
)

SORTS = (
    ("-received", gettext_lazy("Newest first")),
    ("received", gettext_lazy("Oldest first")),
    ("-amount", gettext_lazy("Largest amount first")),
    ("amount", gettext_lazy("Smallest amount first")),
    ("score", gettext_lazy("Lowest score first")),
    ("-score", gettext_lazy("Highest score first")),
    ("-age", gettext_lazy("Longest waiting first")),
    ("age", gettext_lazy("Shortest waiting first")),
)
# The direction a column header sorts in first.
COLUMN_SORTS = {"received": "-received", "amount": "-amount", "score": "score", "age": "-age"}


def _any(label: str) -> list[tuple[str, str]]:
    return [("", label)]


class QueueFilterForm(forms.Form):
    """The queue's query string, checked field by field: a bad value is dropped and named, never a 500."""

    q = forms.CharField(required=False, max_length=100, label=gettext_lazy("Search"))
    tab = forms.ChoiceField(required=False, choices=TABS, label=gettext_lazy("Tab"))
    status = forms.ChoiceField(
        required=False, choices=_any(gettext_lazy("Any")) + Dossier.Status.choices, label=gettext_lazy("Status")
    )
    recommendation = forms.ChoiceField(
        required=False, choices=_any(gettext_lazy("Any")) + Decision.choices, label=gettext_lazy("Recommendation")
    )
    decision = forms.ChoiceField(
        required=False, choices=_any(gettext_lazy("Any")) + Decision.choices, label=gettext_lazy("Decision in force")
    )
    band = forms.ChoiceField(
        required=False,
        choices=_any(gettext_lazy("Any")) + [(band, band) for band, _upper, _cqs in BANDS],
        label=gettext_lazy("Band"),
    )
    segment = forms.ChoiceField(
        required=False, choices=_any(gettext_lazy("Any")) + Segment.choices, label=gettext_lazy("Segment")
    )
    partner = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=(), label=gettext_lazy("Partner")
    )
    awaiting = forms.BooleanField(required=False, label=gettext_lazy("Awaiting approval"))
    mine = forms.BooleanField(required=False, label=gettext_lazy("Assigned to me"))
    review = forms.BooleanField(required=False, label=gettext_lazy("Human review requested"))
    received_from = forms.DateField(
        required=False, label=gettext_lazy("Received from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        required=False, label=gettext_lazy("Received to"), widget=forms.DateInput(attrs={"type": "date"})
    )
    amount_min = AmountField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label=gettext_lazy("Amount from (€)")
    )
    amount_max = AmountField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label=gettext_lazy("Amount to (€)")
    )
    sort = forms.ChoiceField(required=False, choices=SORTS, label=gettext_lazy("Sort"))
    size = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(size, size) for size in PAGE_SIZES],
        label=gettext_lazy("Per page"),
    )

    def __init__(self, *args: Any, partners: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["partner"].choices = _any(_("Any")) + partners
        for field in ("amount_min", "amount_max"):
            self.fields[field].widget = forms.TextInput(attrs={"inputmode": "decimal"})

    def filters(self) -> selectors.QueueFilters:
        """The valid fields as the queue's filters (call after ``is_valid``; invalid fields are left out)."""
        data = self.cleaned_data
        return selectors.QueueFilters(
            search=(data.get("q") or "").strip(),
            tab=data.get("tab") or "",
            status=data.get("status") or "",
            recommendation=data.get("recommendation") or "",
            decision=data.get("decision") or "",
            band=data.get("band") or "",
            segment=data.get("segment") or "",
            partner_id=data.get("partner"),
            awaiting_approval=bool(data.get("awaiting")),
            mine=bool(data.get("mine")),
            human_review=bool(data.get("review")),
            received_from=data.get("received_from"),
            received_to=data.get("received_to"),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            sort=data.get("sort") or "-received",
        )

    def notes(self) -> list[str]:
        """One line per ignored field, naming it and why: shown above the list."""
        return [
            _("%(field)s ignored: %(error)s") % {"field": self.fields[name].label, "error": " ".join(errors)}
            for name, errors in self.errors.items()
        ]


# --- the page ------------------------------------------------------------------------------------------------


def age_label(received: datetime, now: datetime) -> str:
    """How long a dossier has waited, in the unit a queue reads at a glance: "40 min", "2 h", "3 d"."""
    minutes = max(int((now - received).total_seconds() // 60), 0)
    if minutes < 60:
        return _("%(count)d min") % {"count": minutes}
    if minutes < 48 * 60:
        return _("%(count)d h") % {"count": minutes // 60}
    return _("%(count)d d") % {"count": minutes // (24 * 60)}


@dataclass(frozen=True)
class QueueRow:
    dossier: Dossier
    score: Score | None
    age: str


def _tab_count(count: int) -> str:
    return f"{selectors.TAB_COUNT_CAP}+" if count > selectors.TAB_COUNT_CAP else str(count)


def _column_sort(current: str, first: str) -> str:
    """A column header's link: the column's first direction, or the other one when the queue already sorts so."""
    other = first.removeprefix("-") if first.startswith("-") else f"-{first}"
    return other if current == first else first


def _sorted_by(current: str) -> dict[str, str]:
    """The aria-sort value of the column the queue is sorted by."""
    return {current.removeprefix("-"): "descending" if current.startswith("-") else "ascending"}


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    partners = list(Partner.objects.order_by("name").values_list("pk", "name"))
    form = QueueFilterForm(request.GET, partners=partners)
    form.is_valid()  # the valid fields filter; each invalid one is named in a note
    filters = form.filters()
    size = form.cleaned_data.get("size")
    page = seek_page(selectors.queue_dossiers(request.user, filters), request.GET.get("page"), size or PAGE_SIZE)
    now = timezone.now()
    rows = [
        QueueRow(dossier, selectors.latest_score(dossier), age_label(dossier.created_at, now))
        for dossier in page.object_list
    ]
    counts = selectors.queue_tab_counts(request.user)
    active_tab = filters.tab or "all"
    tabs = [(key, label, _tab_count(counts[key]), key == active_tab) for key, label in TABS]
    return render(
        request,
        "dossiers/queue.html",
        {
            "page": page,
            "rows": rows,
            "form": form,
            "filters": filters,
            "notes": form.notes(),
            "tabs": tabs,
            "column_sorts": {column: _column_sort(filters.sort, first) for column, first in COLUMN_SORTS.items()},
            "sorted_by": _sorted_by(filters.sort),
            "sort": filters.sort,
            "status": filters.status,
            "is_senior": has_any_role(request.user, {SENIOR_ANALYST}),
            "now": now,  # an open human review past its deadline is shown overdue
            "filtered": filters != selectors.QueueFilters(tab=filters.tab, sort=filters.sort),
        },
    )


# --- take and release ----------------------------------------------------------------------------------------


def _back(request: HttpRequest) -> str:
    """Where the button was pressed (the queue with its filters, a dossier), if it is on this site."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse("dossiers:queue")


@login_required
@require_POST
def dossier_take(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_readable(request.user), pk)
    try:
        assignment.dossier_take(dossier=dossier, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("You took dossier %(id)s.") % {"id": dossier.short_id})
    return redirect(_back(request))


@login_required
@require_POST
def dossier_release(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_readable(request.user), pk)
    try:
        assignment.dossier_release(dossier=dossier, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Dossier %(id)s is back in the queue.") % {"id": dossier.short_id})
    return redirect(_back(request))
