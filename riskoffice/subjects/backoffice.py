"""The data-protection back-office (admins only): requests by deadline, answering access, carrying out erasure."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from dossiers.models import Company, Individual
from riskoffice.models import Partner
from riskoffice.roles import ADMIN
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role

from .access import access_request_answer, company_find, individual_find
from .erasure import erasure_request_carry_out, erasure_request_preview, erasure_request_record
from .models import SubjectRequest

CAN_HANDLE_REQUESTS = {ADMIN}
STATES = {
    "open": [SubjectRequest.Status.OPEN],
    "closed": [SubjectRequest.Status.COMPLETED, SubjectRequest.Status.REFUSED],
}


class SubjectForm(forms.Form):
    """Who the request is about (a SIREN, or a partner and its reference), and when it was received."""

    siren = forms.CharField(label=gettext_lazy("SIREN"), max_length=20, required=False)
    partner = forms.ModelChoiceField(
        label=gettext_lazy("Partner"), queryset=Partner.objects.order_by("name"), required=False
    )
    reference = forms.CharField(label=gettext_lazy("Partner's reference"), max_length=100, required=False)
    received_on = forms.DateField(
        label=gettext_lazy("Received on"), widget=forms.DateInput(attrs={"type": "date"}), initial=timezone.localdate
    )
    statement = forms.CharField(
        label=gettext_lazy("The request in the person's words (optional)"), widget=forms.Textarea, required=False
    )

    def clean_received_on(self) -> Any:
        received_on = self.cleaned_data["received_on"]
        if received_on > timezone.localdate():
            raise ValidationError(_("The date of receipt cannot be in the future."))
        return received_on

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        siren, partner, reference = data.get("siren"), data.get("partner"), data.get("reference")
        if bool(siren) == bool(partner or reference):
            raise ValidationError(_("Name the subject: a company by its SIREN, or a partner and its reference."))
        try:
            if siren:
                data["subject"] = company_find(siren)
            else:
                if not partner or not reference:
                    raise ValidationError(_("An individual is named by a partner and that partner's reference."))
                data["subject"] = individual_find(partner, reference)
        except ValidationError as error:
            apply_service_errors(self, error)
        return data

    def subject_kwargs(self) -> dict[str, Company | Individual]:
        subject = self.cleaned_data["subject"]
        return {"company": subject} if isinstance(subject, Company) else {"individual": subject}

    def received_at(self) -> datetime:
        # Received during that day: start of the day, so the deadline is never later than the law's.
        return timezone.make_aware(datetime.combine(self.cleaned_data["received_on"], time.min))


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    """Every request, soonest deadline first, overdue ones flagged; open by default."""
    require_role(request, CAN_HANDLE_REQUESTS)
    state = request.GET.get("state", "open")
    if state not in (*STATES, "all"):
        state = "open"
    requests = SubjectRequest.objects.select_related("company", "individual__partner", "dossier").order_by(
        "due_at", "pk"
    )
    if state != "all":
        requests = requests.filter(status__in=STATES[state])
    now = timezone.now()
    rows = [{"request": r, "overdue": r.status == SubjectRequest.Status.OPEN and r.due_at < now} for r in requests]
    return render(request, "subjects/requests.html", {"rows": rows, "state": state})


@login_required
@require_http_methods(["GET", "POST"])
def access_new(request: HttpRequest) -> HttpResponse:
    """Record an access request and download the answer: everything held about the subject, as JSON."""
    require_role(request, CAN_HANDLE_REQUESTS)
    form = SubjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        answered, export = access_request_answer(
            user=request.user,
            received_at=form.received_at(),
            statement=form.cleaned_data["statement"],
            **form.subject_kwargs(),
        )
        response = HttpResponse(
            json.dumps(export, indent=2, ensure_ascii=False), content_type="application/json; charset=utf-8"
        )
        response["Content-Disposition"] = content_disposition_header(True, f"subject-access-{answered.pk}.json")
        return response
    status = 400 if request.method == "POST" else 200
    return render(request, "subjects/request_form.html", {"form": form, "kind": "access"}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def erasure_new(request: HttpRequest) -> HttpResponse:
    """Record an erasure request, then preview it before anything is erased."""
    require_role(request, CAN_HANDLE_REQUESTS)
    form = SubjectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        recorded = erasure_request_record(
            user=request.user,
            received_at=form.received_at(),
            statement=form.cleaned_data["statement"],
            **form.subject_kwargs(),
        )
        return redirect("subjects:erasure", pk=recorded.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "subjects/request_form.html", {"form": form, "kind": "erasure"}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def erasure_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An erasure request: the preview and the confirm button while open, the report once done."""
    require_role(request, CAN_HANDLE_REQUESTS)
    subject_request = get_or_404(
        SubjectRequest.objects.filter(kind=SubjectRequest.Kind.ERASURE).select_related("company", "individual"), pk
    )
    is_open = subject_request.status == SubjectRequest.Status.OPEN
    if request.method == "POST":
        if not is_open:
            messages.error(request, _("This request is closed: there is nothing left to confirm."))
            return redirect("subjects:erasure", pk=subject_request.pk)
        try:
            erasure_request_carry_out(request=subject_request, user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Erasure carried out: the request is completed."))
        return redirect("subjects:erasure", pk=subject_request.pk)
    report = erasure_request_preview(subject_request).as_dict() if is_open else subject_request.resolution
    return render(
        request,
        "subjects/erasure.html",
        {"subject_request": subject_request, "report": report, "is_open": is_open},
    )
