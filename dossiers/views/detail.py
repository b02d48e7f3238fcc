"""A dossier's page and the decision forms on it."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from riskoffice.audit import Actor, audit_history
from riskoffice.roles import CAN_DECIDE, CAN_READ_DOSSIERS, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role
from scoring.model.features import FEATURES_BY_NAME, format_value
from scoring.selectors import statements_for_user
from scoring.sources import describe_flags

from .. import selectors, services
from ..forms import OutcomeForm, OverrideForm, StatementForm
from ..models import Dossier
from ..representation import score_representation


def _contribution_bars(score) -> list[dict]:
    features = score.snapshot.features
    biggest = max((abs(v) for v in score.contributions.values()), default=0) or 1.0
    bars = []
    for name, value in sorted(score.contributions.items(), key=lambda item: abs(item[1]), reverse=True):
        feature = FEATURES_BY_NAME.get(name)
        bars.append(
            {
                "name": name,
                "label": feature.label_en if feature else name,
                "value": format_value(feature, features.get(name), "en") if feature else features.get(name),
                "contribution": value,
                "width": round(100 * abs(value) / biggest, 1),
                "raises": value > 0,
            }
        )
    return bars


def _detail_context(request: HttpRequest, dossier: Dossier, **forms) -> dict:
    score = selectors.latest_score(dossier)
    history = audit_history(dossier)
    return {
        "dossier": dossier,
        "score": score,
        "summary": score_representation(dossier, score, lang="en"),
        "bars": _contribution_bars(score) if score else [],
        "overrides": dossier.overrides.select_related("decided_by"),
        "outcome": getattr(dossier, "outcome", None),
        "history": history,
        "override_form": forms.get("override_form") or OverrideForm(),
        "outcome_form": forms.get("outcome_form") or OutcomeForm(),
        "statement_form": forms.get("statement_form") or StatementForm(),
        "statements": statements_for_user(request.user).filter(company_id=dossier.company_id)[:10]
        if dossier.company_id
        else [],
        "data_notices": describe_flags(score.data_flags, score.snapshot.provenance) if score else [],
        "can_decide": has_any_role(request.user, CAN_DECIDE),
    }


@login_required
def dossier_detail(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    # The page names who recorded the outcome: joined with it rather than fetched after.
    dossiers = selectors.dossiers_for_user(request.user).select_related(
        "outcome__recorded_by", "outcome__reported_by_client__partner"
    )
    dossier = get_or_404(dossiers, pk)
    return render(request, "dossiers/detail.html", _detail_context(request, dossier))


def _dossier_form_post(
    request: HttpRequest,
    pk: str,
    *,
    form_class: type,
    form_key: str,
    success: str,
    act: Callable[[Dossier, dict, object], object],
) -> HttpResponse:
    """The shape of every decision form on the dossier page: scope, validate, call the service, redirect or 400."""
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            act(dossier, form.cleaned_data, request.user)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, success)
            return redirect("dossiers:detail", pk=dossier.pk)
    context = _detail_context(request, dossier, **{form_key: form})
    return render(request, "dossiers/detail.html", context, status=400)


@login_required
@require_POST
def dossier_override(request: HttpRequest, pk: str) -> HttpResponse:
    return _dossier_form_post(
        request,
        pk,
        form_class=OverrideForm,
        form_key="override_form",
        success="Decision overridden.",
        act=lambda dossier, data, user: services.dossier_override(
            dossier=dossier, decision=data["decision"], reason=data["reason"], user=user
        ),
    )


@login_required
@require_POST
def dossier_outcome(request: HttpRequest, pk: str) -> HttpResponse:
    return _dossier_form_post(
        request,
        pk,
        form_class=OutcomeForm,
        form_key="outcome_form",
        success="Outcome recorded.",
        act=lambda dossier, data, user: services.outcome_record(
            dossier=dossier,
            status=data["status"],
            occurred_on=data["occurred_on"],
            amounts={name: data.get(name) for name in OutcomeForm.AMOUNTS},
            actor=Actor(user=user),
        ),
    )


@login_required
@require_POST
def dossier_statement(request: HttpRequest, pk: str) -> HttpResponse:
    return _dossier_form_post(
        request,
        pk,
        form_class=StatementForm,
        form_key="statement_form",
        success="Financial statement recorded; it is used from the next scoring.",
        act=lambda dossier, data, user: services.statement_record(dossier=dossier, values=data, user=user),
    )
