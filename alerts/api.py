"""Partner API for webhook endpoints: register (secret shown once), list, delete."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from riskoffice.api import api_client_of
from riskoffice.audit import Actor
from riskoffice.scoping import get_or_404

from .models import WebhookEndpoint
from .selectors import webhook_endpoints_for_client
from .services import EVENT_TYPES, webhook_endpoint_create, webhook_endpoint_delete


class EndpointSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, default=list
    )


def _representation(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat(),
    }


class EndpointListCreate(APIView):
    required_scopes = ["webhooks:manage"]

    def get(self, request: Request) -> Response:
        endpoints = webhook_endpoints_for_client(api_client_of(request))
        return Response({"results": [_representation(e) for e in endpoints]})

    def post(self, request: Request) -> Response:
        serializer = EndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        client = api_client_of(request)
        try:
            endpoint, secret = webhook_endpoint_create(
                partner=client.partner,
                url=serializer.validated_data["url"],
                event_types=serializer.validated_data["event_types"],
                actor=Actor(client=client),
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return Response(dict(_representation(endpoint), secret=secret), status=status.HTTP_201_CREATED)


class EndpointDetail(APIView):
    required_scopes = ["webhooks:manage"]

    def delete(self, request: Request, pk: int) -> Response:
        client = api_client_of(request)
        endpoint = get_or_404(webhook_endpoints_for_client(client), pk)
        webhook_endpoint_delete(endpoint=endpoint, actor=Actor(client=client))
        return Response(status=status.HTTP_204_NO_CONTENT)
