"""What every connector shares: provenance, a timeout, bounded retries and the per-SIREN cache.

A connector never raises to its caller: it answers a ``SourceResult`` whose status
is ``ok``, ``missing`` (the source answered and had nothing) or ``failed`` (it did
not answer usefully; ``detail`` says why). Inside a connector, ``SourceFailed``
carries that reason up to the point where it becomes a failed result.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone

from riskoffice.http import retry_after_seconds

logger = logging.getLogger("scoring.sources")

USER_AGENT = "riskoffice/1.0 (credit-risk scoring; data-source connector)"
MAX_RETRIES = 2  # after the first attempt: three attempts at most
BACKOFF_SECONDS = (0.5, 1.0)  # before the first and the second retry
RETRY_AFTER_CAP_SECONDS = 5.0  # a longer Retry-After fails the source rather than holding the worker


class SourceFailed(Exception):
    """A source could not answer; the message is the reason the analyst reads."""


@dataclass
class SourceResult:
    source: str
    status: str  # ok | missing | failed
    fetched_at: datetime
    data: dict[str, Any] | None = None
    detail: str = ""
    cached: bool = False
    age_seconds: int = 0  # how old the answer was when used: 0 unless it came from the cache

    def provenance(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "fetched_at": self.fetched_at.isoformat(),
            "detail": self.detail,
            "freshness": {"cached": self.cached, "age_seconds": self.age_seconds},
        }


@dataclass
class GatheredData:
    identity: dict[str, Any] = field(default_factory=dict)  # name, naf_code, active
    company: dict[str, Any] = field(default_factory=dict)  # age_years, naf_section, headcount, active
    financials: dict[str, Any] = field(default_factory=dict)
    bank: dict[str, Any] | None = None
    events: dict[str, Any] = field(default_factory=dict)
    results: list[SourceResult] = field(default_factory=list)
    sandbox: bool = False  # invented by the sandbox: nothing of it may reach a shared record

    @property
    def flags(self) -> list[str]:
        """What the analyst should know: sources that failed or had nothing, e.g. 'missing:open_banking'."""
        return [f"{r.status}:{r.source}" for r in self.results if r.status != "ok"]

    def provenance(self) -> dict[str, Any]:
        return {result.source: result.provenance() for result in self.results}


def failed(source: str, reason: str) -> SourceResult:
    logger.warning("source %s failed: %s", source, reason)
    return SourceResult(source, "failed", timezone.now(), detail=reason)


# --- HTTP ---------------------------------------------------------------------------------


class HttpSource:
    """GET JSON from one service: timeout, bounded retries, Retry-After honoured up to a cap.

    Retried: connection errors, 5xx, and 429 when its Retry-After is short. Not
    retried: a read timeout (a service that is slow now is slow a second later, and
    three timeouts would hold the worker three times as long) and other 4xx.
    """

    def __init__(self, name: str, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout = settings.SOURCE_TIMEOUT_SECONDS
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})})

    def url_for(self, path: str) -> str:
        """A path or a link the service returned; absolute links must stay on the configured host."""
        if path.startswith("/"):
            return f"{self.base_url}{path}"
        if path.startswith(f"{self.base_url}/"):
            return path
        # Our credentials travel in the headers: never follow a link to another host.
        raise SourceFailed(f"refused a link outside {self.base_url}")

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        url = self.url_for(path)
        reason = ""
        for attempt in range(MAX_RETRIES + 1):
            wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
            try:
                response = self.session.get(url, params=params, timeout=self.timeout, allow_redirects=False)
            except requests.ConnectionError:  # includes connect timeouts
                reason = "connection failed"
            except requests.Timeout:
                raise SourceFailed(f"no answer within {self.timeout} s") from None
            except requests.RequestException as exc:
                raise SourceFailed(f"request failed ({exc.__class__.__name__})") from None
            else:
                code = response.status_code
                if code == 429:
                    retry_after = retry_after_seconds(response)
                    if retry_after is not None and retry_after > RETRY_AFTER_CAP_SECONDS:
                        raise SourceFailed(
                            f"rate limited (HTTP 429, Retry-After {retry_after:.0f} s, "
                            f"more than the {RETRY_AFTER_CAP_SECONDS:.0f} s we wait)"
                        )
                    reason = "rate limited (HTTP 429)"
                    wait = retry_after if retry_after is not None else wait
                elif code >= 500:
                    reason = f"HTTP {code}{error_text(response)}"
                elif not 200 <= code < 300:
                    raise SourceFailed(f"HTTP {code}{error_text(response)}")
                else:
                    try:
                        return response.json()
                    except ValueError:
                        raise SourceFailed("the answer is not JSON") from None
            if attempt < MAX_RETRIES:
                logger.info("source %s: %s, retrying in %.1f s", self.name, reason, wait)
                time.sleep(wait)
        raise SourceFailed(f"{reason} after {MAX_RETRIES + 1} attempts")


def plain_text(text: str) -> str:
    """``text`` without its accents ("Liquidation judiciaire simplifiée" → "... simplifiee"), for keyword matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def error_text(response: requests.Response) -> str:
    """The service's own words for an error, from the shapes our sources use."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    # Registry {"erreur"}, open banking {"code", "message"}, Opendatasoft {"error_code", "message"}.
    parts = [str(body[key]) for key in ("code", "error_code", "erreur", "message") if body.get(key)]
    return f" ({': '.join(parts)[:200]})" if parts else ""


# --- cache --------------------------------------------------------------------------------


@dataclass
class CachedAnswer:
    payload: dict[str, Any]
    fetched_at: datetime
    cached: bool

    @property
    def age_seconds(self) -> int:
        return max(0, int((timezone.now() - self.fetched_at).total_seconds())) if self.cached else 0


def cached_answer(*, source: str, key: str, ttl_seconds: int, fetch: Callable[[], dict[str, Any]]) -> CachedAnswer:
    """The source's answer for ``key`` from SourceCache while fresh, else ``fetch()`` stored for ``ttl_seconds``.

    Only answers are cached: a failure raises SourceFailed out of ``fetch`` and the
    next dossier asks again.
    """
    from scoring.models import SourceCache

    now = timezone.now()
    if ttl_seconds > 0:
        hit = SourceCache.objects.filter(source=source, key=key, expires_at__gt=now).first()
        if hit is not None:
            return CachedAnswer(hit.payload, hit.fetched_at, cached=True)
    payload = fetch()
    if ttl_seconds > 0:
        SourceCache.objects.update_or_create(
            source=source,
            key=key,
            defaults={"payload": payload, "fetched_at": now, "expires_at": now + timedelta(seconds=ttl_seconds)},
        )
    return CachedAnswer(payload, now, cached=False)
