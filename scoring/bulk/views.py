"""Bulk scoring in the back-office: upload a CSV, watch its progress, download the scored file."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header

from riskoffice.audit import audit_history
from riskoffice.roles import AUDITOR, CAN_DECIDE, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role
from scoring.bulk import jobs
from scoring.bulk import rows as bulk
from scoring.models import BulkScoringJob, ModelVersion, Segment
from scoring.selectors import bulk_jobs_for_user

CAN_VIEW = CAN_DECIDE | {AUDITOR}
RECENT_JOBS = 20


class BulkUploadForm(forms.Form):
    segment = forms.ChoiceField(choices=Segment.choices, initial=Segment.B2B)
    file = forms.FileField(
        label="CSV file",
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        help_text=f"UTF-8, comma or semicolon separated, up to {bulk.MAX_ROWS:,} rows and "
        f"{bulk.MAX_BYTES // 2**20} MB.",
        error_messages={"required": "Choose a CSV file to score.", "empty": "The file is empty."},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:  # refused before the upload is read into memory
            raise ValidationError(
                f"The file is {upload.size / 2**20:.1f} MB; the limit is "
                f"{bulk.MAX_BYTES // 2**20} MB. Split it into smaller files."
            )
        return upload


@login_required
def bulk_upload(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_VIEW)
    status = 200
    if request.method == "POST":
        require_role(request, CAN_DECIDE)
        form = BulkUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = jobs.bulk_job_create(
                    user=request.user, segment=form.cleaned_data["segment"], filename=upload.name, data=upload.read()
                )
            except ValidationError as error:
                apply_service_errors(form, error)
            else:
                messages.success(request, f"{job.filename}: {job.rows_total:,} rows queued for scoring.")
                return redirect("scoring:bulk-job", pk=job.pk)
        status = 400
    else:
        form = BulkUploadForm()
    champions = ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).defer("booster_ubj")
    return render(
        request,
        "scoring/bulk_upload.html",
        {
            "form": form,
            "jobs": bulk_jobs_for_user(request.user)[:RECENT_JOBS],
            "champions": list(champions),
            "can_upload": has_any_role(request.user, CAN_DECIDE),
            "max_rows": bulk.MAX_ROWS,
        },
        status=status,
    )


@login_required
def bulk_job_detail(request: HttpRequest, pk: str) -> HttpResponse:
    """The job's page; htmx polls the same URL and gets only the progress fragment back."""
    require_role(request, CAN_VIEW)
    job = get_or_404(bulk_jobs_for_user(request.user), pk)
    history = list(audit_history(job, newest_first=False))
    finished = next((event for event in history if event.action == "bulk_job.finished"), None)
    template = "scoring/_bulk_progress.html" if request.headers.get("HX-Request") else "scoring/bulk_job.html"
    return render(request, template, {"job": job, "history": history, "result": finished.after if finished else None})


@login_required
def bulk_job_download(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_VIEW)
    job = get_or_404(bulk_jobs_for_user(request.user), pk)
    if job.status != BulkScoringJob.Status.DONE:
        raise Http404("This job has no scored file yet.")
    response = HttpResponse(bytes(job.output_csv), content_type="text/csv; charset=utf-8")
    filename = f"{PurePath(job.filename).stem or 'file'}-scored.csv"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response
