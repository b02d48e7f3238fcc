"""Challenging a dossier's score, retrying a failed one, and the score history the dossier page shows."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from riskoffice.roles import CAN_DECIDE
from riskoffice.scoping import get_or_404
from riskoffice.web import apply_service_errors, require_role
from scoring.model.features import FEATURES_BY_NAME
from scoring.models import Score

from .. import selectors
from ..challenge import FINANCIAL_STATEMENT, REQUESTED_AMOUNT, dossier_rescore
from ..challenge import dossier_challenge as challenge_record
from ..challenge import dossier_retry as retry_record
from ..forms import ChallengeForm
from ..models import Challenge, Dossier
from . import detail


def challenge_context(dossier: Dossier, score: Score | None, form: ChallengeForm | None = None) -> dict[str, Any]:
    """The dossier page's challenge form and score history: every version, newest first, with its challenge.

    The versions come from the dossier's prefetched scores; the challenges cost a query only when a
    version answers one.
    """
    scores = getattr(dossier, "scores_newest_first", None)
    if scores is None:
        scores = list(
            Score.objects.filter(dossier=dossier)
            .select_related("model_version", "policy_version")
            .defer("model_version__booster_ubj")
        )
    versions = sorted(scores, key=lambda s: s.version, reverse=True)
    challenges: dict[Any, Challenge] = {}
    if any(s.challenge_id for s in versions):
        challenges = {c.pk: c for c in Challenge.objects.filter(dossier=dossier).select_related("raised_by")}
    return {
        "challenge_form": form or ChallengeForm(dossier=dossier, score=score),
        "score_versions": [
            {"score": s, "challenge": c, "corrected": _corrected_labels(c) if c else []}
            for s in versions
            for c in [challenges.get(s.challenge_id)]
        ],
    }


def _corrected_labels(challenge: Challenge) -> list[str]:
    """What a challenge corrected, as the page names it (feature labels in the page's language)."""
    french = (get_language() or "fr").startswith("fr")
    labels = {REQUESTED_AMOUNT: _("requested amount"), FINANCIAL_STATEMENT: _("financial statement")}
    named = []
    for name in challenge.corrections:
        feature = FEATURES_BY_NAME.get(name)
        label = (feature.label_fr if french else feature.label_en) if feature else labels.get(name, name)
        named.append(label)
    return named


@login_required
@require_POST
def dossier_challenge(request: HttpRequest, pk: str) -> HttpResponse:
    """Record the corrections, then re-score in the request; one that cannot be scored now waits for the workers."""
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    form = ChallengeForm(request.POST, dossier=dossier, score=selectors.latest_score(dossier))
    if form.is_valid():
        data = form.cleaned_data
        try:
            challenge_record(
                dossier=dossier,
                user=request.user,
                justification=data["justification"],
                source_reference=data["source_reference"],
                requested_amount=data.get("requested_amount"),
                statement=form.statement,
                feature_values=form.feature_values,
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            _rescored_message(request, dossier_rescore(dossier_id=dossier.pk), _("Challenge recorded."))
            return redirect("dossiers:detail", pk=dossier.pk)
    context = detail.detail_context(request, dossier, challenge_form=form)
    return render(request, "dossiers/detail.html", context, status=400)


@login_required
@require_POST
def dossier_retry(request: HttpRequest, pk: str) -> HttpResponse:
    """Put a failed dossier back to scoring and score it in the request."""
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_for_user(request.user), pk)
    try:
        retry_record(dossier=dossier, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return render(request, "dossiers/detail.html", detail.detail_context(request, dossier), status=400)
    _rescored_message(request, dossier_rescore(dossier_id=dossier.pk), _("Retry recorded."))
    return redirect("dossiers:detail", pk=dossier.pk)


def _rescored_message(request: HttpRequest, score: Score | None, done: str) -> None:
    if score is not None:
        messages.success(
            request,
            _("%(done)s Re-scored: version %(version)s, recommendation %(decision)s.")
            % {"done": done, "version": score.version, "decision": score.get_decision_display().lower()},
        )
    else:
        messages.warning(
            request,
            _("%(done)s The re-score could not run now: the dossier is pending and the workers will score it.")
            % {"done": done},
        )
