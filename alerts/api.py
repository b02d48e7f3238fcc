"""Partner API for webhook endpoints (register, secret shown once; list; delete) and negative events (report)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dossiers.api import (
    CompanySerializer,
    IndividualSerializer,
    RejectUnknownFieldsMixin,
    StrictCharField,
    StrictDateField,
    StrictDecimalField,
)
from riskoffice.api import api_client_of, raise_service_error
from riskoffice.audit import Actor
from riskoffice.scoping import get_or_404

from .events import EVENT_TYPES
from .models import NegativeEvent, WebhookEndpoint
from .negative_events import PARTNER_EVENT_KINDS, negative_event_report
from .selectors import webhook_endpoints_for_client
from .services import webhook_endpoint_create, webhook_endpoint_delete


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


# --- POST /api/v1/events: a negative event a partner reports -------------------------------------------

DETAILS_MAX_KEYS = 20
DETAILS_MAX_TEXT = 200


class EventCompanySerializer(CompanySerializer):
    vat = None  # the SIREN names the company; nothing else is asked


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: no string, no boolean, no 3.0."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class FlatObjectField(serializers.Field):
    """A small flat object: up to 20 keys, each a string, a finite number, a boolean or null."""

    default_error_messages = {
        "invalid": f"Give a flat JSON object of at most {DETAILS_MAX_KEYS} keys (1-50 characters), "
        f"each value a string (up to {DETAILS_MAX_TEXT} characters), a number, a boolean or null."
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or len(data) > DETAILS_MAX_KEYS:
            self.fail("invalid")
        for key, value in data.items():
            if not 1 <= len(key) <= 50 or not self._scalar(value):
                self.fail("invalid")
        return data

    @staticmethod
    def _scalar(value: Any) -> bool:
        if isinstance(value, str):
            return len(value) <= DETAILS_MAX_TEXT
        if isinstance(value, float):
            return math.isfinite(value)
        return value is None or isinstance(value, (bool, int))

    def to_representation(self, value: dict[str, Any]) -> dict[str, Any]:
        return value


class EventRequestSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    SUBJECTS = ("company", "individual")

    company = EventCompanySerializer(required=False, help_text="The company the event is about; or an individual.")
    individual = IndividualSerializer(required=False, help_text="Your individual the event is about; or a company.")
    event_id = StrictCharField(
        max_length=100,
        trim_whitespace=False,
        help_text="Your own id for the event, 1-100 characters: a retry reuses it.",
    )
    kind = serializers.ChoiceField(choices=PARTNER_EVENT_KINDS)
    occurred_on = StrictDateField(help_text="When it happened, YYYY-MM-DD, not in the future.")
    amount = StrictDecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True, help_text="Euros."
    )
    days_late = StrictIntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    reason_code = StrictCharField(max_length=4, required=False, help_text="A SEPA return reason: AM04, MD06...")
    details = FlatObjectField(required=False)

    def validate_event_id(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Give your own id for the event, 1 to 100 characters.")
        return value

    def validate_reason_code(self, value: str) -> str:
        code = value.upper()
        if not re.fullmatch(r"[A-Z0-9]{4}", code):
            raise serializers.ValidationError("A SEPA reason code is four letters or digits, e.g. AM04 or MD06.")
        return code

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = {}
        given = [name for name in self.SUBJECTS if name in attrs]
        if len(given) != 1:
            message = (
                "Give either a company or an individual, not both." if given else "Give a company or an individual."
            )
            errors.update({name: [message] for name in self.SUBJECTS})
        if attrs.get("days_late") is not None and attrs["kind"] != NegativeEvent.Kind.PAYMENT_DELAY:
            errors["days_late"] = ["Only a payment_delay has days late."]
        if attrs.get("reason_code") and attrs["kind"] != NegativeEvent.Kind.SEPA_INCIDENT:
            errors["reason_code"] = ["Only a sepa_incident has a reason code."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _event_representation(event: NegativeEvent) -> dict[str, Any]:
    subject = (
        {"company": {"siren": event.company.siren}}
        if event.company_id
        else {"individual": {"reference": event.individual.reference}}
    )
    return {
        "id": event.pk,
        "event_id": event.partner_event_id,
        "kind": event.kind,
        "occurred_on": event.occurred_on.isoformat(),
        "subject": subject,
        "amount": None if event.amount is None else str(event.amount),
        "days_late": event.days_late,
        "reason_code": event.reason_code or None,
        "details": event.details,
        "created_at": event.created_at.isoformat(),
    }


class EventCreate(APIView):
    """Report a negative event; the same event id again is the same event, never a second one."""

    required_scopes = ["events:write"]

    def post(self, request: Request) -> Response:
        serializer = EventRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            event, created = negative_event_report(
                client=api_client_of(request),
                event_id=data["event_id"],
                kind=data["kind"],
                occurred_on=data["occurred_on"],
                siren=data.get("company", {}).get("siren", ""),
                reference=data.get("individual", {}).get("reference", ""),
                amount=data.get("amount"),
                days_late=data.get("days_late"),
                reason_code=data.get("reason_code", ""),
                details=data.get("details") or {},
            )
        except DjangoValidationError as exc:  # 409 when the event id was reported with other content
            raise_service_error(exc)
        return Response(_event_representation(event), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
