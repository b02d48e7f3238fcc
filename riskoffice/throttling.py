"""Rate limits: each API client's requests, and token requests by address.

Counters live in the cache (Redis in production, files under var/ by default), so every process and
machine shares them. Past a limit the answer is 429 problem+json with Retry-After.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.models import AccessToken
from oauth2_provider.views import TokenView
from rest_framework.throttling import SimpleRateThrottle

from .api import PROBLEM_CONTENT_TYPE, problem


class ClientRateThrottle(SimpleRateThrottle):
    """Requests a minute per API client: its own ``rate_limit_per_minute``, else API_RATE_LIMIT_PER_MINUTE."""

    scope = "client"

    def get_rate(self) -> str | None:
        return None  # set per request in allow_request, from the client

    def allow_request(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, AccessToken):
            return True  # no client: the permission check has already refused it
        limit = getattr(token.application.api_client, "rate_limit_per_minute", None)
        if limit is None:
            limit = settings.API_RATE_LIMIT_PER_MINUTE
        self.num_requests, self.duration = limit, 60
        self.rate = f"{limit}/min"
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": request.auth.application_id}


def _client_address(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _fixed_window_hit(key: str, limit: int, window: int = 60) -> int:
    """Count a hit in the current window; the seconds to wait when past ``limit``, else 0."""
    now = time.time()
    window_start = int(now // window) * window
    cache_key = f"{key}:{window_start}"
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=window + 5)
        hits = 1
    if hits <= limit:
        return 0
    return max(1, math.ceil(window_start + window - now))


class ThrottledTokenView(TokenView):
    """/o/token/ with a limit per address: secrets cannot be guessed at speed."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        wait = _fixed_window_hit(f"token:{_client_address(request)}", settings.TOKEN_RATE_LIMIT_PER_MINUTE)
        if wait:
            body = problem(
                status_code=429,
                title="Too many requests",
                detail=f"Too many token requests from this address; retry in {wait} s. Reuse a token until it expires.",
                slug="throttled",
                instance=request.path,
            )
            response = JsonResponse(body, status=429, content_type=PROBLEM_CONTENT_TYPE)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)
