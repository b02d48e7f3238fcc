"""Human review of an automated decision (GDPR Art. 22) on the dossier page: record a request, complete it.

The service is riskoffice/subjects/review.py; a human changes a decision through an override
(dossiers/views/overrides.py), and the review then records that it was changed.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from riskoffice.roles import CAN_DECIDE
from riskoffice.scoping import get_or_404
from riskoffice.subjects.models import SubjectRequest
from riskoffice.subjects.review import (
    CHANGED,
    CONFIRMED,
    NOTE_MAX_LENGTH,
    OVERRIDE_IN_FORCE,
    STATEMENT_MAX_LENGTH,
    latest_review,
    review_complete,
    review_is_overdue,
    review_request,
)
from riskoffice.web import require_role

from .. import selectors
from ..models import Dossier, Override
from . import detail


class HumanReviewRecordForm(forms.Form):
    """A request for human review a person made by phone or mail, recorded by an analyst."""

    statement = forms.CharField(
        required=False,
        max_length=STATEMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("The person's statement"),
        help_text=gettext_lazy("Their point of view, what they contest, in their words (optional)."),
    )


class HumanReviewCompleteForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=[
            (CONFIRMED, gettext_lazy("Confirmed: a human reviewed it and the decision stands")),
            (CHANGED, gettext_lazy("Changed: by the override put in force since the request")),
        ],
        widget=forms.RadioSelect,
        label=gettext_lazy("Outcome"),
    )
    note = forms.CharField(
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=gettext_lazy("Reviewer's note"),
        help_text=gettext_lazy("Required: what you looked at, and why the decision stands or was changed."),
        error_messages={"required": gettext_lazy("Completing a review takes a note.")},
    )


def human_review_context(
    dossier: Dossier,
    overrides: list[Override],
    record_form: HumanReviewRecordForm | None = None,
    complete_form: HumanReviewCompleteForm | None = None,
) -> dict[str, Any]:
    """The review panel: the latest review (from the dossier's prefetch), its deadline, and the forms."""
    review = latest_review(dossier)
    is_open = review is not None and review.status == SubjectRequest.Status.OPEN
    change_override = None
    if is_open:
        # Read from the page's own list of overrides: no query of its own.
        change_override = next(
            (o for o in overrides if o.status in OVERRIDE_IN_FORCE and o.created_at >= review.received_at), None
        )
    return {
        "human_review": review,
        "open_review": review if is_open else None,
        "review_overdue": is_open and review_is_overdue(review, now=timezone.now()),
        "review_change_override": change_override,
        "review_record_form": record_form or HumanReviewRecordForm(),
        "review_complete_form": complete_form
        or HumanReviewCompleteForm(initial={"outcome": CHANGED if change_override else CONFIRMED}),
    }


@login_required
@require_POST
def human_review_record(request: HttpRequest, pk: str) -> HttpResponse:
    """An analyst records a request for human review that reached them by phone or mail."""
    return detail.dossier_form_post(
        request,
        pk,
        form_class=HumanReviewRecordForm,
        form_key="review_record_form",
        success=lambda result: (
            _("Request for human review recorded: the decision is not final until the review is completed.")
            if result[1]
            else _("A human review was already open: this request joins it.")
        ),
        act=lambda dossier, data, user: review_request(dossier, user=user, statement=data["statement"]),
    )


@login_required
@require_POST
def human_review_complete(request: HttpRequest, pk: str, review_pk: int) -> HttpResponse:
    """An analyst completes the review: the decision confirmed, or changed by an override in force.

    403 before any lookup; then an unknown review, or one of another dossier, is a 404 before the form is read.
    """
    require_role(request, CAN_DECIDE)
    dossier = get_or_404(selectors.dossiers_readable(request.user), pk)
    review = get_or_404(dossier.subject_requests.filter(kind=SubjectRequest.Kind.HUMAN_REVIEW), review_pk)

    def complete(dossier: Dossier, data: dict, user: Any) -> SubjectRequest:
        return review_complete(review, user=user, outcome=data["outcome"], note=data["note"])

    return detail.dossier_form_post(
        request,
        pk,
        form_class=HumanReviewCompleteForm,
        form_key="review_complete_form",
        success=lambda review: (
            _("Human review completed: the decision is confirmed and final.")
            if review.resolution["outcome"] == CONFIRMED
            else _("Human review completed: the decision was changed by the override, and is final.")
        ),
        act=complete,
    )
