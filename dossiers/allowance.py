"""The sandbox allowance: a sandbox client may request SANDBOX_ALLOWANCE scores over SANDBOX_ALLOWANCE_DAYS days.

An admin may set a client's own allowance (ApiClient.sandbox_allowance), or lift it entirely
(ApiClient.sandbox_unlimited, e.g. for a load test: then no request waits for another's count).
Live clients have none: their usage is metered and billed instead (dossiers.usage).
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from riskoffice.models import ApiClient

from .models import Dossier


class SandboxAllowanceExhausted(Exception):
    """Raised inside the creating transaction; the API answers it as a 429 problem with Retry-After."""

    problem_status = 429
    problem_slug = "sandbox-allowance-exhausted"
    problem_title = "Sandbox allowance exhausted"

    def __init__(self, *, allowance: int, days: int, retry_after: int) -> None:
        self.retry_after = retry_after
        self.detail = (
            f"This sandbox client may request {allowance} scores over {days} days and has used them; "
            f"the next one is possible in {retry_after} s. Ask us for a live client, or a larger sandbox allowance."
        )
        super().__init__(self.detail)


def sandbox_allowance_charge(client: ApiClient | None) -> None:
    """At the end of the transaction creating a dossier: refuse it when a sandbox client's allowance is used up.

    The new dossier is already inserted, so it counts itself. The client's row is locked first,
    so concurrent requests of one client are counted one after another (each count, a statement
    of its own, sees what the requests before it committed); the lock is held only for this count
    and the commit that follows. Reads at most ``allowance + 1`` index entries, one row back.
    """
    if client is None or not client.partner.is_sandbox or client.sandbox_unlimited:
        return
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    allowance = settings.SANDBOX_ALLOWANCE if client.sandbox_allowance is None else client.sandbox_allowance
    days = settings.SANDBOX_ALLOWANCE_DAYS
    window_start = timezone.now() - timedelta(days=days)
    recent = Dossier.objects.filter(api_client=client, created_at__gt=window_start).order_by("-created_at")
    # The (allowance + 1)-th most recent request, this one included: none means within the allowance;
    # else it is the allowance-th before this one, and a slot frees when it leaves the window.
    over = list(recent.values_list("created_at", flat=True)[allowance : allowance + 1])
    if not over:
        return
    frees_at = over[0] + timedelta(days=days) if allowance else timezone.now() + timedelta(days=days)
    retry_after = max(1, math.ceil((frees_at - timezone.now()).total_seconds()))
    raise SandboxAllowanceExhausted(allowance=allowance, days=days, retry_after=retry_after)
