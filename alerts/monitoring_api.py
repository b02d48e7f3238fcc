"""Partner API for the watch list: ``/api/v1/monitoring`` (scope ``monitoring:manage``).

A watched company is monitored like one the partner holds open exposure on: its score changes and negative
events are sent to the partner's webhooks. A partner may watch only a company it has scored.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dossiers.api import CompanySerializer, RejectUnknownFieldsMixin, ScoreCursorPagination, list_query_filters
from dossiers.identifiers import siren_error
from riskoffice.api import api_client_of, raise_service_error

from .models import WatchedCompany
from .monitoring import NotWatched, watch_add, watch_remove
from .selectors import watched_companies_for_client


class WatchCompanySerializer(CompanySerializer):
    vat = None  # the SIREN names the company


class WatchRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    company = WatchCompanySerializer(help_text="The company to watch: one you have scored.")


def watch_representation(watch: WatchedCompany, *, has_open_exposure: bool | None = None) -> dict[str, Any]:
    exposure = getattr(watch, "has_open_exposure", None) if has_open_exposure is None else has_open_exposure
    return {
        "company": {"siren": watch.company.siren, "name": watch.company.name},
        "watched_since": watch.created_at.isoformat(),
        "has_open_exposure": bool(exposure),
    }


class WatchListCreate(APIView):
    required_scopes = ["monitoring:manage"]

    def get(self, request: Request) -> Response:
        """The partner's watched companies, newest first, each saying whether the partner also holds exposure."""
        list_query_filters(request, serializers.Serializer)  # no filter: only the pages' parameters
        paginator = ScoreCursorPagination()  # newest first, cursor pages like GET /api/v1/scores
        page = paginator.paginate_queryset(watched_companies_for_client(api_client_of(request)), request, view=self)
        return paginator.get_paginated_response([watch_representation(watch) for watch in page])

    def post(self, request: Request) -> Response:
        """Watch a company: 201, or 200 when it was already watched."""
        serializer = WatchRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client = api_client_of(request)
        try:
            watch, created = watch_add(client=client, siren=serializer.validated_data["company"]["siren"])
        except DjangoValidationError as exc:  # 422: a company the partner never scored
            raise_service_error(exc)
        exposure = watched_companies_for_client(client).get(pk=watch.pk).has_open_exposure
        return Response(
            watch_representation(watch, has_open_exposure=exposure),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class WatchDetail(APIView):
    required_scopes = ["monitoring:manage"]

    def delete(self, request: Request, siren: str) -> Response:
        """Stop watching: 204; 404 when the company is not watched."""
        siren = "".join(siren.split())
        error = siren_error(siren)
        if error:
            raise serializers.ValidationError({"siren": [error]})
        try:
            watch_remove(client=api_client_of(request), siren=siren)
        except NotWatched:
            raise NotFound(f"You do not watch SIREN {siren}.") from None
        return Response(status=status.HTTP_204_NO_CONTENT)
