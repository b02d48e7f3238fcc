"""The register for the supervisory authority: a CSV of every activity and a printable page, admins and auditors."""

from __future__ import annotations

import csv

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from riskoffice.roles import ADMIN, AUDITOR
from riskoffice.web import require_role

from .export import CSV_COLUMNS, activity_csv_row
from .selectors import activities_for_export, register_gaps

CAN_READ_REGISTER = {ADMIN, AUDITOR}


@login_required
@require_GET
def register_export_csv(request: HttpRequest) -> HttpResponse:
    """Every activity, active or not, one row each with every field (lists joined by "; ")."""
    require_role(request, CAN_READ_REGISTER)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"gdpr-register-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response.write("\ufeff")  # a BOM, so a spreadsheet opens the accents right
    writer = csv.writer(response)
    writer.writerow([label for _, label in CSV_COLUMNS])
    writer.writerows(activity_csv_row(activity) for activity in activities_for_export())
    return response


@login_required
@require_GET
def register_print(request: HttpRequest) -> HttpResponse:
    """The active activities, one section each, laid out for printing."""
    require_role(request, CAN_READ_REGISTER)
    activities = list(activities_for_export(active_only=True))
    context = {"activities": activities, "gaps": register_gaps(), "printed_on": timezone.localdate()}
    return render(request, "register/print.html", context)
