"""Outcomes in the back-office: record one on the dossier page, correct it with a reason, import a CSV file of them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from riskoffice.audit import Actor
from riskoffice.roles import AUDITOR, CAN_DECIDE, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role

from .. import outcome_import, selectors
from ..forms import OutcomeCorrectionForm, OutcomeForm, OutcomeImportForm
from ..models import OutcomeImport
from ..outcomes import outcome_correct, outcome_record
from .detail import detail_context, dossier_form_post

# Who sees imports: those who may record outcomes, and auditors, who read them.
CAN_VIEW_IMPORTS = CAN_DECIDE | {AUDITOR}
RECENT_IMPORTS = 20
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "cp1252": "Windows-1252"}


@login_required
@require_POST
def dossier_outcome(request: HttpRequest, pk: str) -> HttpResponse:
    """A new outcome, or the write-off of a default; anything else already recorded is a correction."""
    return dossier_form_post(
        request,
        pk,
        form_class=OutcomeForm,
        form_key="outcome_form",
        success=_("Outcome recorded."),
        act=lambda dossier, data, user: outcome_record(
            dossier=dossier,
            status=data["status"],
            occurred_on=data["occurred_on"],
            amounts={name: data.get(name) for name in OutcomeForm.AMOUNTS},
            actor=Actor(user=user),
        ),
    )


@login_required
@require_POST
def dossier_outcome_correct(request: HttpRequest, pk: str) -> HttpResponse:
    """The outcome as it should have been, with the reason: audited, sent to the partner, or 400 and nothing changed."""
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    form = OutcomeCorrectionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            outcome_correct(
                dossier=dossier,
                status=data["status"],
                occurred_on=data["occurred_on"],
                amounts={name: data.get(name) for name in OutcomeCorrectionForm.AMOUNTS},
                reason=data["reason"],
                actor=Actor(user=request.user),
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, _("Outcome corrected."))
            return redirect("dossiers:detail", pk=dossier.pk)
    elif getattr(dossier, "outcome", None) is None:  # the form is shown only beside an outcome: say why it failed
        form.add_error(None, _("This dossier has no outcome to correct: record one instead."))
    context = detail_context(request, dossier, correction_form=form)
    return render(request, "dossiers/detail.html", context, status=400)


# --- CSV import ------------------------------------------------------------------------------------


@login_required
def outcome_import_list(request: HttpRequest) -> HttpResponse:
    """Upload a file of outcomes (analysts, senior analysts); past imports (they and auditors)."""
    require_role(request, CAN_VIEW_IMPORTS)
    status = 200
    form = OutcomeImportForm(max_bytes=outcome_import.MAX_BYTES)
    if request.method == "POST":
        require_role(request, CAN_DECIDE)
        form = OutcomeImportForm(request.POST, request.FILES, max_bytes=outcome_import.MAX_BYTES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                imported = outcome_import.outcome_import_run(
                    user=request.user, filename=upload.name, data=upload.read()
                )
            except ValidationError as error:
                apply_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("%(file)s: %(recorded)s of %(total)s rows recorded, %(rejected)s rejected.")
                    % {
                        "file": imported.filename,
                        "recorded": imported.rows_recorded,
                        "total": imported.rows_total,
                        "rejected": imported.rows_rejected,
                    },
                )
                return redirect("dossiers:outcome-import", pk=imported.pk)
        status = 400
    imports = outcome_import.outcome_imports_for_user(request.user).defer("report")[:RECENT_IMPORTS]
    context = {
        "form": form,
        "imports": imports,
        "can_upload": has_any_role(request.user, CAN_DECIDE),
        "max_rows": outcome_import.MAX_ROWS,
        "max_megabytes": outcome_import.MAX_BYTES // 2**20,
    }
    return render(request, "dossiers/outcome_imports.html", context, status=status)


@login_required
@require_GET
def outcome_import_report(request: HttpRequest, pk: str) -> HttpResponse:
    """One import's report: every row of the file, what became of it and, when refused, why, field by field."""
    require_role(request, CAN_VIEW_IMPORTS)
    imported = get_or_404(outcome_import.outcome_imports_for_user(request.user), pk)
    rows = [{**entry, "errors": outcome_import.entry_errors(entry)} for entry in imported.report]
    only_rejected = request.GET.get("show") == "rejected"
    if only_rejected:
        rows = [row for row in rows if row["result"] == outcome_import.REJECTED]
    context = {
        "imported": imported,
        "rows": rows,
        "only_rejected": only_rejected,
        "encoding": ENCODINGS.get(imported.encoding, imported.encoding),
    }
    return render(request, "dossiers/outcome_import.html", context)


@login_required
@require_GET
def outcome_import_download(request: HttpRequest, pk: str) -> HttpResponse:
    """The report as a CSV file French Excel opens as it is: UTF-8 with a BOM, semicolons."""
    require_role(request, CAN_VIEW_IMPORTS)
    imported: OutcomeImport = get_or_404(outcome_import.outcome_imports_for_user(request.user), pk)
    response = HttpResponse(outcome_import.report_csv(imported), content_type="text/csv; charset=utf-8")
    stem = imported.filename.rsplit(".", 1)[0] or "outcomes"
    response["Content-Disposition"] = content_disposition_header(True, f"{stem}-report.csv")
    return response
