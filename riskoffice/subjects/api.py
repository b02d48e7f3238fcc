"""Partner API for human review (GDPR Art. 22): POST /api/v1/scores/{id}/human-review."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dossiers import selectors
from dossiers.api import RejectUnknownFieldsMixin, StrictCharField
from riskoffice.api import api_client_of, raise_service_error
from riskoffice.idempotency import idempotent
from riskoffice.scoping import get_or_404

from .review import STATEMENT_MAX_LENGTH, review_representation, review_request


class HumanReviewRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    statement = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=STATEMENT_MAX_LENGTH,
        help_text="Optional: the person's point of view, what they contest, in their words. Shown to the analyst "
        "who reviews the decision; never sent back in an event.",
    )


class ScoreHumanReview(APIView):
    """A person asks for a human to review the automated decision on their dossier."""

    required_scopes = ["scores:write"]

    @idempotent
    def post(self, request: Request, pk: str) -> Response:
        client = api_client_of(request)
        dossier = get_or_404(selectors.dossiers_for_client(client), pk)  # another partner's: 404 before anything
        serializer = HumanReviewRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            review, created = review_request(
                dossier, client=client, statement=serializer.validated_data.get("statement", "")
            )
        except DjangoValidationError as exc:  # 409 dossier-not-scored
            raise_service_error(exc)
        score_url = request.build_absolute_uri(reverse("api:score-detail", args=[dossier.pk]))
        body = {**review_representation(review), "links": {"score": score_url}}
        # 202: a human will answer within the deadline; a repeat while it is open joins it (200, the same request).
        return Response(
            body,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
            headers={"Location": score_url},
        )
