"""Guards in front of every view: a bound on API request bodies, a 503 while the database is away, and the
language of each answer (the back-office's, negotiated; the partner API's, always English)."""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.middleware import locale
from django.template import loader
from django.utils import translation

from .api import (
    DATABASE_RETRY_AFTER_SECONDS,
    database_unavailable_response,
    log_database_unavailable,
    problem_response,
)

# Partners' doors: the API and the OAuth token endpoints. The back-office keeps Django's own limits
# (DATA_UPLOAD_MAX_MEMORY_SIZE, file uploads), because analysts upload portfolio files.
GUARDED_PREFIXES = ("/api/", "/o/")
_READ_CHUNK = 64 * 1024


def is_partner_path(request: HttpRequest) -> bool:
    return request.path.startswith(GUARDED_PREFIXES)


class RequestBodyLimitMiddleware:
    """413 problem+json for API and token requests whose body exceeds ``API_MAX_BODY_BYTES``.

    Runs before authentication and parsing. A declared Content-Length is judged without reading a byte.
    A chunked body (no Content-Length) is read up to the limit: Django would otherwise see it as empty,
    so when it fits it is handed on to the view as if its length had been declared.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_partner_path(request):
            refusal = self._refusal(request, settings.API_MAX_BODY_BYTES)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _refusal(self, request: HttpRequest, limit: int) -> HttpResponse | None:
        declared = request.META.get("CONTENT_LENGTH")
        if declared:
            try:
                length = int(declared)
            except ValueError:
                return None  # Django reads such a body as empty
            return _too_large(request, limit) if length > limit else None
        if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None  # no body
        if not request.META.get("wsgi.input_terminated"):
            # Only a server that ends the input (gunicorn decodes chunked bodies) can be read safely
            # without a declared length; elsewhere reading could block, and Django reads nothing.
            return None
        body = _read_at_most(request.META["wsgi.input"], limit + 1)
        if len(body) > limit:
            return _too_large(request, limit)
        request._stream = io.BytesIO(body)
        request.META["CONTENT_LENGTH"] = str(len(body))
        return None


def _read_at_most(stream: io.RawIOBase, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(request: HttpRequest, limit: int) -> HttpResponse:
    return problem_response(
        request, 413, detail=f"The request body exceeds {limit} bytes (API_MAX_BODY_BYTES); send a smaller one."
    )


class DatabaseUnavailableMiddleware:
    """503 with Retry-After, and one warning line, when a view meets an unreachable database.

    API views get theirs from ``riskoffice.api.problem_exception_handler``; this covers the rest:
    the token endpoints (problem+json) and the back-office (a plain page).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        return database_unavailable_page(request, exception)


def database_unavailable_page(request: HttpRequest, exception: Exception) -> HttpResponse:
    """The 503 for a request that met an unreachable database: problem+json for partners, a page otherwise.

    Also for middleware that asks the database before the view (the session's sign-in checks): an exception
    raised there never reaches ``process_exception``.
    """
    if is_partner_path(request):
        return database_unavailable_response(request, exception)
    log_database_unavailable(request, exception)
    # No request context: its processors (user, roles) would ask the database again.
    page = loader.get_template("503.html").render()
    response = HttpResponse(page, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # the line above is the only one (Django would add an error line)
    return response


class LocaleMiddleware(locale.LocaleMiddleware):
    """The back-office in the user's language (cookie set by the switch, then Accept-Language, then French).

    The partner API and the token endpoints answer in English whatever Accept-Language says: their error
    messages are a contract partners match on. (GET /api/v1/scores reads Accept-Language itself, for the
    language of the explanation texts only.)
    """

    def process_request(self, request: HttpRequest) -> None:
        if is_partner_path(request):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return
        super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if is_partner_path(request):
            response.headers.setdefault("Content-Language", "en")
            return response
        return super().process_response(request, response)
