"""Partner API for webhook endpoints (register, change, rotate, pause; the delivery log, redelivery) and negative
events (report)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dossiers.api import (
    CompanySerializer,
    IndividualSerializer,
    RejectUnknownFieldsMixin,
    ScoreCursorPagination,
    StrictCharField,
    StrictDateField,
    StrictDecimalField,
    list_query_filters,
)
from riskoffice.api import api_client_of, raise_service_error
from riskoffice.audit import Actor
from riskoffice.idempotency import idempotently
from riskoffice.scoping import get_or_404

from .events import DIGEST, EVENT_TYPES
from .models import NegativeEvent, WebhookDelivery, WebhookEndpoint
from .negative_events import PARTNER_EVENT_KINDS, negative_event_report
from .selectors import webhook_deliveries_of, webhook_endpoints_for_client
from .services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_pause,
    webhook_endpoint_resume,
    webhook_endpoint_update,
    webhook_redeliver,
    webhook_secret_rotate,
)


class EndpointSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_TYPES), required=False, default=list
    )
    mode = serializers.ChoiceField(
        choices=WebhookEndpoint.Mode.values,
        required=False,
        default=WebhookEndpoint.Mode.IMMEDIATE,
        help_text="immediate, or digest: non-critical events bundled once a day (critical ones still at once).",
    )


class EndpointUpdateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_TYPES), required=False)
    mode = serializers.ChoiceField(choices=WebhookEndpoint.Mode.values, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give event_types, mode, or both.")
        return attrs


class EmptySerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The body of an action (rotate, pause, resume, redeliver): nothing, or an empty object."""


def _instant(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


def _representation(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.pk,
        "url": endpoint.url,
        "event_types": endpoint.event_types,
        "mode": endpoint.mode,
        "is_active": endpoint.is_active,
        "paused": endpoint.paused_at is not None,
        "paused_at": _instant(endpoint.paused_at),
        "failing_since": _instant(endpoint.failing_since),
        "disabled_at": _instant(endpoint.disabled_at),
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": _instant(endpoint.previous_secret_expires_at),
        "created_at": endpoint.created_at.isoformat(),
    }


def _empty_body(request: Request) -> None:
    """Actions take no body; anything given is refused rather than ignored."""
    if request.body.strip():
        EmptySerializer(data=request.data).is_valid(raise_exception=True)


def _endpoint_of(request: Request, pk: int) -> tuple[WebhookEndpoint, Actor]:
    client = api_client_of(request)
    return get_or_404(webhook_endpoints_for_client(client), pk), Actor(client=client)


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
                mode=serializer.validated_data["mode"],
                actor=Actor(client=client),
            )
        except DjangoValidationError as exc:
            raise_service_error(exc)
        return Response(dict(_representation(endpoint), secret=secret), status=status.HTTP_201_CREATED)


class EndpointDetail(APIView):
    required_scopes = ["webhooks:manage"]

    def get(self, request: Request, pk: int) -> Response:
        endpoint, _ = _endpoint_of(request, pk)
        return Response(_representation(endpoint))

    def patch(self, request: Request, pk: int) -> Response:
        endpoint, actor = _endpoint_of(request, pk)
        serializer = EndpointUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            endpoint = webhook_endpoint_update(endpoint=endpoint, actor=actor, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise_service_error(exc)
        return Response(_representation(endpoint))

    def delete(self, request: Request, pk: int) -> Response:
        endpoint, actor = _endpoint_of(request, pk)
        webhook_endpoint_delete(endpoint=endpoint, actor=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecret(APIView):
    """A new secret, shown this once; the previous one keeps signing until previous_secret_expires_at.

    Not replayed by Idempotency-Key: the answer holds a secret, which is kept nowhere in clear.
    """

    required_scopes = ["webhooks:manage"]

    def post(self, request: Request, pk: int) -> Response:
        endpoint, actor = _endpoint_of(request, pk)
        _empty_body(request)
        secret = webhook_secret_rotate(endpoint=endpoint, actor=actor)
        endpoint.refresh_from_db()
        return Response(dict(_representation(endpoint), secret=secret))


class EndpointPause(APIView):
    required_scopes = ["webhooks:manage"]

    def post(self, request: Request, pk: int) -> Response:
        endpoint, actor = _endpoint_of(request, pk)
        _empty_body(request)
        return Response(_representation(webhook_endpoint_pause(endpoint=endpoint, actor=actor)))


class EndpointResume(APIView):
    required_scopes = ["webhooks:manage"]

    def post(self, request: Request, pk: int) -> Response:
        endpoint, actor = _endpoint_of(request, pk)
        _empty_body(request)
        return Response(_representation(webhook_endpoint_resume(endpoint=endpoint, actor=actor)))


# --- the delivery log: GET /api/v1/webhooks/{id}/deliveries, one delivery, a redelivery -------------------

DELIVERY_STATUSES = WebhookDelivery.Status.values
DELIVERY_EVENT_TYPES = (*EVENT_TYPES, DIGEST)


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DELIVERY_STATUSES, required=False)
    event_type = serializers.ChoiceField(choices=DELIVERY_EVENT_TYPES, required=False)


def _delivery_representation(delivery: WebhookDelivery, *, attempts: bool = False) -> dict[str, Any]:
    body = {
        "message_id": delivery.message_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": _instant(delivery.next_attempt_at),
        "delivered_at": _instant(delivery.delivered_at),
        "digest_message_id": delivery.digest.message_id if delivery.digest_id else None,
        "created_at": delivery.created_at.isoformat(),
    }
    if attempts:
        body["payload"] = delivery.payload
        body["attempt_log"] = [
            {
                "number": attempt.number,
                "attempted_at": attempt.attempted_at.isoformat(),
                "address": attempt.address,
                "status_code": attempt.status_code,
                "latency_ms": attempt.latency_ms,
                "response_excerpt": attempt.response_excerpt,
                "error": attempt.error,
                "redelivery": attempt.redelivery,
            }
            for attempt in delivery.attempt_log.all()
        ]
    return body


def _delivery_of(request: Request, pk: int, message_id: str) -> tuple[WebhookDelivery, Actor]:
    endpoint, actor = _endpoint_of(request, pk)
    deliveries = webhook_deliveries_of(endpoint).select_related("digest").prefetch_related("attempt_log")
    delivery = deliveries.filter(message_id=message_id).first()
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery, actor


class DeliveryList(APIView):
    required_scopes = ["webhooks:manage"]

    def get(self, request: Request, pk: int) -> Response:
        """The endpoint's deliveries, newest first, filtered by status and event type, by cursor pages."""
        endpoint, _ = _endpoint_of(request, pk)
        filters = list_query_filters(request, DeliveryFilterSerializer)
        deliveries = webhook_deliveries_of(endpoint).filter(**filters).select_related("digest")
        paginator = ScoreCursorPagination()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response([_delivery_representation(d) for d in page])


class DeliveryDetail(APIView):
    required_scopes = ["webhooks:manage"]

    def get(self, request: Request, pk: int, message_id: str) -> Response:
        delivery, _ = _delivery_of(request, pk, message_id)
        return Response(_delivery_representation(delivery, attempts=True))


class DeliveryRedeliver(APIView):
    """Send a delivery again now, same webhook-id: 202, the attempt follows in the log."""

    required_scopes = ["webhooks:manage"]

    def post(self, request: Request, pk: int, message_id: str) -> Response:
        return idempotently(self, request, work=lambda: self._redeliver(request, pk, message_id))

    def _redeliver(self, request: Request, pk: int, message_id: str) -> Response:
        delivery, actor = _delivery_of(request, pk, message_id)
        _empty_body(request)
        try:
            delivery = webhook_redeliver(delivery=delivery, actor=actor)
        except DjangoValidationError as exc:
            raise_service_error(exc)
        return Response(_delivery_representation(delivery), status=status.HTTP_202_ACCEPTED)


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
