"""Alerts reads, scoped: a partner's API client sees its partner's webhook endpoints only."""

from __future__ import annotations

from django.db.models import QuerySet

from riskoffice.models import ApiClient

from .models import WebhookEndpoint


def webhook_endpoints_for_client(client: ApiClient) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(partner_id=client.partner_id).order_by("created_at", "pk")
