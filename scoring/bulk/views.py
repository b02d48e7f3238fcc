"""Bulk scoring in the back-office: upload a CSV, watch its progress, download the scored file."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.formats import number_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from riskoffice.audit import audit_history
from riskoffice.roles import AUDITOR, CAN_DECIDE, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role
from scoring.bulk import jobs
from scoring.bulk import rows as bulk
from scoring.models import BulkScoringJob, Decision, ModelVersion, Segment
from scoring.selectors import bulk_jobs_for_user

CAN_VIEW = CAN_DECIDE | {AUDITOR}
RECENT_JOBS = 20


def _count(value: int) -> str:
    """A count as the reader's language groups it: 10 000 in French, 10,000 in English."""
    return number_format(value, force_grouping=True)


class BulkUploadForm(forms.Form):
    segment = forms.ChoiceField(label=gettext_lazy("Segment"), choices=Segment.choices, initial=Segment.B2B)
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={
            "required": gettext_lazy("Choose a CSV file to score."),
            "empty": gettext_lazy("The file is empty."),
        },
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Built per form, in the language of the request that shows it.
        self.fields["file"].help_text = _(
            "UTF-8, comma or semicolon separated, up to %(rows)s rows and %(megabytes)s MB."
        ) % {"rows": _count(bulk.MAX_ROWS), "megabytes": bulk.MAX_BYTES // 2**20}

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > bulk.MAX_BYTES:  # refused before the upload is read into memory
            raise ValidationError(
                _("The file is %(size)s MB; the limit is %(limit)s MB. Split it into smaller files.")
                % {"size": number_format(upload.size / 2**20, decimal_pos=1), "limit": bulk.MAX_BYTES // 2**20}
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
                messages.success(
                    request,
                    _("%(filename)s: %(rows)s rows queued for scoring.")
                    % {"filename": job.filename, "rows": _count(job.rows_total)},
                )
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
    result = finished.after if finished else None
    # The decision mix with each decision's label in the reader's language (the audit row keeps the codes).
    labels = dict(Decision.choices)
    decisions = [(code, labels.get(code, code), count) for code, count in (result or {}).get("decisions", {}).items()]
    return render(request, template, {"job": job, "history": history, "result": result, "decisions": decisions})


@login_required
def bulk_job_download(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_VIEW)
    job = get_or_404(bulk_jobs_for_user(request.user), pk)
    if job.status != BulkScoringJob.Status.DONE:
        raise Http404(_("This job has no scored file yet."))
    if job.files_expired_at is not None or job.output_csv is None:
        raise Http404(_("This job's files have expired and were deleted."))
    response = HttpResponse(bytes(job.output_csv), content_type="text/csv; charset=utf-8")
    filename = f"{PurePath(job.filename).stem or 'file'}-scored.csv"
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    return response
