"""Overriding a dossier's decision, and the second, senior analyst's approval or rejection (four eyes)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from riskoffice.roles import SENIOR_ANALYST
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role

from .. import overrides, selectors
from ..forms import OverrideForm, OverrideReviewForm
from ..models import Dossier, Override
from .detail import detail_context, dossier_form_post


@login_required
@require_POST
def dossier_override(request: HttpRequest, pk: str) -> HttpResponse:
    """Ask for an override: final at once, or pending until another senior analyst approves it."""
    return dossier_form_post(
        request,
        pk,
        form_class=OverrideForm,
        form_key="override_form",
        success=lambda override: (
            _("Override recorded: it awaits the approval of another senior analyst.")
            if override.status == Override.Status.PENDING
            else _("Decision overridden.")
        ),
        act=lambda dossier, data, user: overrides.dossier_override(
            dossier=dossier,
            decision=data["decision"],
            reason_code=data["reason_code"],
            reason=data["reason"],
            user=user,
        ),
    )


@login_required
@require_POST
def override_approve(request: HttpRequest, pk: str, override_pk: int) -> HttpResponse:
    return _override_review(request, pk, override_pk, overrides.override_approve, _("Override approved: now in force."))


@login_required
@require_POST
def override_reject(request: HttpRequest, pk: str, override_pk: int) -> HttpResponse:
    return _override_review(
        request, pk, override_pk, overrides.override_reject, _("Override rejected: the decision in force stays.")
    )


def _override_review(
    request: HttpRequest, pk: str, override_pk: int, review: Callable[..., Override], success: str
) -> HttpResponse:
    """Senior analysts only (403 before any lookup); the author is told on the form that someone else must do it."""
    require_role(request, {SENIOR_ANALYST})
    dossier: Dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    override = get_or_404(dossier.overrides.all(), override_pk)
    form = OverrideReviewForm(request.POST)
    if form.is_valid():
        try:
            review(override=override, note=form.cleaned_data["note"], user=request.user)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, success)
            return redirect("dossiers:detail", pk=dossier.pk)
    return render(request, "dossiers/detail.html", detail_context(request, dossier, review_form=form), status=400)
