"""``Idempotency-Key`` on API POSTs: a retried request is answered once, whatever crashes in between.

A key belongs to one API client and is kept ``IDEMPOTENCY_KEY_TTL_SECONDS``. The
first request with a key claims it: its row is committed, in flight, before any
work starts. The work and the record of its answer then commit in one
transaction, so a key is never answered without its work nor its work done
twice. The same key with the same request replays that answer (with
``Idempotent-Replayed: true``); with another request it is refused (422); while
the first is still being answered it asks to retry (409, ``Retry-After: 1``).

An answer a retry could change (5xx, 401/403, 404, 409, 429…) is not kept: its
work is rolled back and the key released. An in-flight key whose request died
before its work committed is taken over by a retry after
``IDEMPOTENCY_IN_FLIGHT_SECONDS``; the taken-over request can no longer commit,
because recording its answer checks that the claim is still its own.

Some answers finish after commit (``Prefer: wait`` polls for the worker's
result): the committed answer is stored as provisional, the key stays in flight,
and the final answer replaces it. A provisional answer is the one replayed when
its request died before finishing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .api import api_client_of, problem_answer
from .models import ApiClient, IdempotencyKey

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Headers of an answer that are kept and replayed with its status and body.
KEPT_HEADERS = ("Location", "Preference-Applied", "Retry-After")
# While an answer is provisional (its request is still finishing it), its status waits in this pseudo-header
# and ``response_status`` stays null: the key is in flight, but what committed can be answered.
PROVISIONAL_STATUS = ":status"
# Answers kept for the key: successes, and refusals the same request would get again.
_KEPT_REFUSALS = frozenset({400, 422})


def is_kept(status_code: int) -> bool:
    return 200 <= status_code < 300 or status_code in _KEPT_REFUSALS


@dataclass(frozen=True)
class Claim:
    """A request's hold on its key: the row, and the moment it was claimed (a takeover changes it)."""

    pk: int
    claimed_at: datetime


class _ClaimLost(Exception):
    """The key was taken over while the work ran: the work must not commit."""


Work = Callable[[], Response]
FollowUp = Callable[[Response], Response]


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an APIView's ``post`` to honour ``Idempotency-Key`` (see :func:`idempotently`)."""

    @functools.wraps(method)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
        return idempotently(view, request, work=lambda: method(view, request, *args, **kwargs))

    return wrapper


def idempotently(view: APIView, request: Request, *, work: Work, follow_up: FollowUp | None = None) -> Response:
    """Answer ``request`` with ``work()``, once per ``Idempotency-Key``; without the header, as if undecorated.

    ``follow_up`` (optional) turns a successful answer into the final one once its
    work has committed, outside any transaction. Call this outside a transaction:
    the claim must commit before the work starts. Read the body here first
    (``request.data`` after): the fingerprint needs the raw bytes.
    """
    if HEADER not in request.headers:
        response = work()
        return _follow(follow_up, response) if follow_up and _succeeded(response) else response
    key = request.headers[HEADER]
    if not _key_is_valid(key):
        return problem_answer(
            status_code=400,
            title="Invalid idempotency key",
            slug="invalid-idempotency-key",
            detail=f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            instance=request.path,
        )
    client, fingerprint = api_client_of(request), request_fingerprint(request)
    claim = _claim(request, client, key, fingerprint)
    if isinstance(claim, Response):
        return claim
    provisional = follow_up is not None
    try:
        with transaction.atomic():
            response = _run(view, work)
            if not is_kept(response.status_code):
                transaction.set_rollback(True)
            elif not _record(claim, response, provisional=provisional and _succeeded(response)):
                raise _ClaimLost
    except _ClaimLost:
        return _answer_existing(request, client, key, fingerprint)
    except BaseException:
        _release(claim)
        raise
    if not is_kept(response.status_code):
        _release(claim)
    elif provisional and _succeeded(response):
        response = _follow(follow_up, response)
        _record(claim, response, provisional=False)
    return response


def _succeeded(response: Response) -> bool:
    return 200 <= response.status_code < 300


def _run(view: APIView, work: Work) -> Response:
    """The view's answer; an exception is answered as DRF would, its writes rolled back."""
    try:
        with transaction.atomic():
            return work()
    except Exception as exc:  # noqa: BLE001 - handed to DRF's handler, which answers (and logs) every error
        return view.handle_exception(exc)


def _follow(follow_up: FollowUp, response: Response) -> Response:
    """The final answer; if finishing fails, the committed answer stands (its work is done)."""
    try:
        return follow_up(response)
    except Exception:  # the partner must still learn what was created
        logger.exception("Finishing an idempotent answer failed; answering with the committed one")
        return response


def request_fingerprint(request: Request) -> str:
    """SHA-256 of the method, the path and the body (JSON canonicalised: key order and spacing do not count)."""
    body: bytes = request.body
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # not JSON (or nested past Python's limit): the bytes as they came
        canonical = body
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _key_is_valid(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= char <= "~" for char in key)


def _claim(request: Request, client: ApiClient, key: str, fingerprint: str) -> Claim | Response:
    """Claim the key for this request, or the answer the key already commands (a replay, 409 or 422)."""
    for _ in range(5):  # a key released or taken over between two reads is looked at again
        now = timezone.now()
        expires_at = now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    client=client, key=key, fingerprint=fingerprint, expires_at=expires_at
                )
            return Claim(row.pk, row.created_at)
        except IntegrityError:
            pass
        row = IdempotencyKey.objects.filter(client=client, key=key).first()
        if row is None:
            continue
        if row.expires_at <= now:
            # An expired key is as good as absent: claimed afresh, whatever request it stood for.
            taken = _take_over(row, fingerprint=fingerprint, expires_at=expires_at, now=now, expired=True)
        elif row.fingerprint != fingerprint:
            return _reused(request)
        elif row.response_status is not None:
            return _replay(row)
        elif row.created_at > now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_SECONDS):
            return _in_flight(request)
        elif PROVISIONAL_STATUS in row.response_headers:
            return _replay(_finalise_abandoned(row))
        else:
            # Its request died before its work committed: this retry does the work instead.
            taken = _take_over(row, fingerprint=fingerprint, expires_at=expires_at, now=now, expired=False)
        if taken is not None:
            return taken
    return _in_flight(request)


def _take_over(
    row: IdempotencyKey, *, fingerprint: str, expires_at: datetime, now: datetime, expired: bool
) -> Claim | None:
    """A conditional update: of two retries taking over the same row, one wins."""
    stale = IdempotencyKey.objects.filter(pk=row.pk, created_at=row.created_at)
    stale = stale.filter(expires_at__lte=now) if expired else stale.filter(response_status__isnull=True)
    updated = stale.update(
        fingerprint=fingerprint,
        created_at=now,
        expires_at=expires_at,
        response_status=None,
        response_body=None,
        response_headers={},
    )
    return Claim(row.pk, now) if updated else None


def _finalise_abandoned(row: IdempotencyKey) -> IdempotencyKey:
    """A provisional answer whose request died while finishing it becomes the key's answer."""
    headers = dict(row.response_headers)
    status = headers.pop(PROVISIONAL_STATUS)
    IdempotencyKey.objects.filter(pk=row.pk, response_status__isnull=True).update(
        response_status=status, response_headers=headers
    )
    row.response_status, row.response_headers = status, headers
    return row


def _record(claim: Claim, response: Response, *, provisional: bool) -> bool:
    """Store the answer on the key if the claim is still this request's; False when it was taken over."""
    headers: dict[str, Any] = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    # Before rendering, a DRF response's Content-Type header is Django's default: the renderer decides later.
    headers["Content-Type"] = response.content_type or JSONRenderer.media_type
    if provisional:
        headers[PROVISIONAL_STATUS] = response.status_code
    body = json.loads(JSONRenderer().render(response.data)) if response.data is not None else None
    return bool(
        IdempotencyKey.objects.filter(pk=claim.pk, created_at=claim.claimed_at, response_status__isnull=True).update(
            response_status=None if provisional else response.status_code,
            response_body=body,
            response_headers=headers,
        )
    )


def _release(claim: Claim) -> None:
    IdempotencyKey.objects.filter(pk=claim.pk, created_at=claim.claimed_at, response_status__isnull=True).delete()


def _answer_existing(request: Request, client: ApiClient, key: str, fingerprint: str) -> Response:
    row = IdempotencyKey.objects.filter(client=client, key=key).first()
    if row is None or row.response_status is None:
        return _in_flight(request)
    return _reused(request) if row.fingerprint != fingerprint else _replay(row)


def _replay(row: IdempotencyKey) -> Response:
    headers = {name: value for name, value in row.response_headers.items() if name != "Content-Type"}
    headers[REPLAYED_HEADER] = "true"
    return Response(
        row.response_body,
        status=row.response_status,
        headers=headers,
        content_type=row.response_headers.get("Content-Type"),
    )


def _reused(request: Request) -> Response:
    return problem_answer(
        status_code=422,
        title="Idempotency key reused",
        slug="idempotency-key-reused",
        detail=f"This {HEADER} was already used with another request; use a new key for a new request.",
        instance=request.path,
    )


def _in_flight(request: Request) -> Response:
    return problem_answer(
        status_code=409,
        title="Request in progress",
        slug="idempotency-key-in-flight",
        detail=f"A request with this {HEADER} is still being answered; retry shortly.",
        instance=request.path,
        retry_after=1,
    )


def idempotency_keys_purge() -> int:
    """Delete expired keys (they already count as absent); the number deleted."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
