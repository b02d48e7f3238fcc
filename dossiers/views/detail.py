"""A dossier's page and the decision forms on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from riskoffice.audit import audit_history
from riskoffice.roles import CAN_DECIDE, CAN_READ_DOSSIERS, has_any_role
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role
from scoring.model.engine import factors_in_decision_order
from scoring.model.features import FEATURES_BY_NAME, format_value, is_missing
from scoring.selectors import statements_for_user
from scoring.sources import describe_flags

from .. import selectors, services
from ..forms import OutcomeCorrectionForm, OutcomeForm, OverrideForm, OverrideReviewForm, StatementForm
from ..models import Dossier, Override
from ..outcomes import outcome_corrections
from ..overrides import override_can_review, overrides_listed
from ..representation import score_representation
from . import challenge, human_review


def _page_language() -> str:
    """The catalogue's language for the active one: French labels and values unless the reader chose English."""
    return "en" if (get_language() or "").startswith("en") else "fr"


def _contribution_bars(score) -> list[dict]:
    lang = _page_language()
    features = score.snapshot.features
    biggest = max((abs(v) for v in score.contributions.values()), default=0) or 1.0
    bars = []
    for name, value in sorted(score.contributions.items(), key=lambda item: abs(item[1]), reverse=True):
        feature = FEATURES_BY_NAME.get(name)
        bars.append(
            {
                "name": name,
                "label": (feature.label_en if lang == "en" else feature.label_fr) if feature else name,
                "value": format_value(feature, features.get(name), lang) if feature else features.get(name),
                "contribution": value,
                "width": round(100 * abs(value) / biggest, 1),
                "raises": value > 0,
                # A missing value is named as missing, never as lowering risk, whatever its sign.
                "missing": is_missing(features.get(name)),
            }
        )
    return bars


def detail_context(request: HttpRequest, dossier: Dossier, **forms) -> dict:
    score = selectors.latest_score(dossier)
    history = audit_history(dossier)
    outcome = getattr(dossier, "outcome", None)
    overrides = overrides_listed(dossier)
    pending_override = next((o for o in overrides if o.status == Override.Status.PENDING), None)
    return {
        "dossier": dossier,
        "score": score,
        "summary": score_representation(dossier, score, lang=_page_language()),
        "bars": _contribution_bars(score) if score else [],
        # The reasons in the order that fits the decision in force (scoring.model.engine).
        "reasons": factors_in_decision_order(score.factors, dossier.decision or score.decision) if score else [],
        # Overrides (dossiers/views/overrides.py): the list, the one awaiting approval, and who may review it.
        "overrides": overrides,
        "pending_override": pending_override,
        "can_review": pending_override is not None and override_can_review(request.user, pending_override),
        "review_form": forms.get("review_form") or OverrideReviewForm(),
        "outcome": outcome,
        # Outcomes (dossiers/views/outcomes.py): the correction form filled in with the outcome, past corrections.
        "correction_form": forms.get("correction_form")
        or (OutcomeCorrectionForm.for_outcome(outcome) if outcome else None),
        "outcome_corrections": outcome_corrections(history),
        "history": history,
        "override_form": forms.get("override_form") or OverrideForm(),
        "outcome_form": forms.get("outcome_form") or OutcomeForm(),
        "statement_form": forms.get("statement_form") or StatementForm(),
        "statements": statements_for_user(request.user).filter(company_id=dossier.company_id)[:10]
        if dossier.company_id
        else [],
        "data_notices": describe_flags(score.data_flags, score.snapshot.provenance) if score else [],
        # The open exposure on the dossier's SIREN, one aggregate query (templates/dossiers/detail/_exposure.html).
        "exposure": selectors.company_exposure(request.user, dossier.company if dossier.company_id else None),
        "can_decide": has_any_role(request.user, CAN_DECIDE),
        # Challenge form and score history (dossiers/views/challenge.py).
        **challenge.challenge_context(dossier, score, forms.get("challenge_form")),
        # Human review of the decision, GDPR Art. 22 (dossiers/views/human_review.py).
        **human_review.human_review_context(
            dossier, overrides, forms.get("review_record_form"), forms.get("review_complete_form")
        ),
    }


@login_required
def dossier_detail(request: HttpRequest, pk: str) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    # The page names who recorded the outcome: joined with it rather than fetched after.
    dossiers = selectors.dossiers_for_user(request.user).select_related(
        "outcome__recorded_by", "outcome__reported_by_client__partner"
    )
    dossier = get_or_404(dossiers, pk)
    return render(request, "dossiers/detail.html", detail_context(request, dossier))


def dossier_form_post(
    request: HttpRequest,
    pk: str,
    *,
    form_class: type,
    form_key: str,
    success: str | Callable[[Any], str],
    act: Callable[[Dossier, dict, object], object],
) -> HttpResponse:
    """The shape of every decision form on the dossier page: scope, validate, call the service, redirect or 400.

    ``success`` is the message, or makes it from what the service returned.
    """
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            result = act(dossier, form.cleaned_data, request.user)
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, success(result) if callable(success) else success)
            return redirect("dossiers:detail", pk=dossier.pk)
    context = detail_context(request, dossier, **{form_key: form})
    return render(request, "dossiers/detail.html", context, status=400)


@login_required
@require_POST
def dossier_statement(request: HttpRequest, pk: str) -> HttpResponse:
    return dossier_form_post(
        request,
        pk,
        form_class=StatementForm,
        form_key="statement_form",
        success=_("Financial statement recorded; it is used from the next scoring."),
        act=lambda dossier, data, user: services.statement_record(dossier=dossier, values=data, user=user),
    )
