"""Alerts reads, scoped: a partner's API client sees its partner's webhook endpoints only.

Negative events are read for scoring through ``negative_events_visible_to``: what a partner
reported counts only in that partner's dossiers, what nobody reported (BODACC, analysts) in all.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from riskoffice.models import ApiClient

from .models import NegativeEvent, WebhookEndpoint


def webhook_endpoints_for_client(client: ApiClient) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(partner_id=client.partner_id).order_by("created_at", "pk")


def negative_events_visible_to(partner_id: Any) -> QuerySet[NegativeEvent]:
    """The events a dossier of ``partner_id`` (None: a dossier without a partner) may be scored from.

    A partner's report is confidential to its relationship with the applicant, like the financial
    statements it supplies (scoring.sources.on_file.statements_on_file).
    """
    visible = Q(reported_by__isnull=True)
    if partner_id is not None:
        visible |= Q(reported_by__partner_id=partner_id)
    return NegativeEvent.objects.filter(visible)


def negative_events_reported_by(client: ApiClient) -> QuerySet[NegativeEvent]:
    return NegativeEvent.objects.filter(reported_by=client).select_related("company", "individual")
