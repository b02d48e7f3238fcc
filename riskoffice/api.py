"""API plumbing shared by every endpoint: client scopes, permissions and RFC 9457 errors."""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from oauth2_provider.models import AccessToken
from oauth2_provider.scopes import SettingsScopes
from rest_framework import exceptions, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from .models import ApiClient

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApiClientScopes(SettingsScopes):
    """A client may only obtain the scopes its ApiClient row allows (DOT lets any client ask for any scope)."""

    def _allowed(self, application: Any) -> list[str]:
        try:
            return list(application.api_client.allowed_scopes)
        except (ApiClient.DoesNotExist, AttributeError):
            return []

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        all_scopes = super().get_available_scopes(application, request, *args, **kwargs)
        allowed = self._allowed(application)
        return [scope for scope in all_scopes if scope in allowed]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return self._allowed(application)


def api_client_of(request: Request) -> ApiClient:
    """The partner's API client behind the request's bearer token (checked by HasClientScope)."""
    return request.auth.application.api_client


class HasClientScope(BasePermission):
    """A valid client-credentials token of a registered ApiClient, carrying the view's required scopes.

    A view names them per method in ``required_scopes_by_method`` ({"GET": [...], "POST": [...]}), or for
    every method in ``required_scopes`` (also the fallback for methods the mapping leaves out).
    Client-credentials tokens have no user, so DRF's IsAuthenticated cannot be used here.
    """

    message = "The access token lacks a scope this endpoint requires."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, AccessToken):
            raise exceptions.NotAuthenticated("Send an OAuth 2.0 bearer token: Authorization: Bearer <token>.")
        try:
            client = token.application.api_client
        except ApiClient.DoesNotExist:
            return False
        request._request.accesslog_client = client  # who asked, for the access log (riskoffice.accesslog)
        if not client.is_active:  # its tokens were revoked when it was disabled; this holds even if one was not
            raise exceptions.NotAuthenticated("This client is disabled.")
        method = "GET" if request.method == "HEAD" else request.method  # Django answers HEAD with get()
        required = getattr(view, "required_scopes_by_method", {}).get(method)
        if required is None:
            required = getattr(view, "required_scopes", None)
        if required is None:
            return False
        return token.is_valid(required)


def _flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"company.siren": ["..."]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == "non_field_errors":
                name = prefix
            elif isinstance(key, int):  # an item of a list field
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(_flatten_errors(value, name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "body": [str(detail)]}


def problem(
    *, status_code: int, title: str, detail: str, slug: str, instance: str, errors: dict | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:riskoffice:problem:{slug}",
        "title": title,
        "status": status_code,
        "detail": detail,
        "instance": instance,
    }
    if errors:
        body["errors"] = errors
    return body


_TITLES = {
    400: ("Invalid request", "invalid-request"),
    401: ("Authentication required", "unauthenticated"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    406: ("Not acceptable", "not-acceptable"),
    409: ("Conflict", "conflict"),
    413: ("Payload too large", "payload-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Unprocessable content", "unprocessable"),
    429: ("Too many requests", "throttled"),
    503: ("Service unavailable", "service-unavailable"),
}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as application/problem+json; unexpected errors are logged, never shown."""
    from rest_framework.views import exception_handler  # DRF's views import this module's settings

    request = context.get("request")
    instance = request.path if request is not None else ""
    if hasattr(exc, "problem_status"):
        return _domain_problem(exc, instance)
    if isinstance(exc, (OperationalError, InterfaceError)) and request is not None:
        return database_unavailable_response(request, exc)
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        body = problem(
            status_code=500,
            title="Internal error",
            detail="The request could not be completed; it has been logged. Retry later.",
            slug="internal-error",
            instance=instance,
        )
        response = Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    else:
        title, slug = _TITLES.get(response.status_code, ("Error", "error"))
        if isinstance(exc, exceptions.ValidationError):
            errors = _flatten_errors(exc.detail)
            detail = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())
            title, slug = "Invalid request", "validation-error"
            body = problem(
                status_code=response.status_code,
                title=title,
                detail=detail,
                slug=slug,
                instance=instance,
                errors=errors,
            )
        else:
            detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
            if isinstance(exc, Http404):
                detail = "No such resource for this client."
            if isinstance(exc, exceptions.ParseError):
                title, slug = "Malformed JSON", "invalid-json"
            body = problem(
                status_code=response.status_code, title=title, detail=str(detail), slug=slug, instance=instance
            )
        response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def problem_answer(
    *, status_code: int, title: str, slug: str, detail: str, instance: str, retry_after: int | None = None
) -> Response:
    """A problem+json answer of its own type (RFC 9457), with Retry-After when the client should come back."""
    body = problem(status_code=status_code, title=title, detail=detail, slug=slug, instance=instance)
    response = Response(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _domain_problem(exc: Exception, instance: str) -> Response:
    """A service's own refusal that carries its problem (problem_status, problem_slug, problem_title)."""
    detail = exc.messages[0] if isinstance(exc, DjangoValidationError) else str(getattr(exc, "detail", exc))
    return problem_answer(
        status_code=exc.problem_status,
        title=exc.problem_title,
        slug=exc.problem_slug,
        detail=detail,
        instance=instance,
        retry_after=getattr(exc, "retry_after", None),
    )


def raise_service_error(error: DjangoValidationError) -> NoReturn:
    """A service's refusal as the API answers it: its own problem when it carries one, else a 400 with fields."""
    if hasattr(error, "problem_status"):
        raise error
    if not hasattr(error, "error_dict"):
        raise exceptions.ValidationError({"non_field_errors": error.messages}) from None
    raise exceptions.ValidationError(
        {
            ("non_field_errors" if name == NON_FIELD_ERRORS else name): messages
            for name, messages in error.message_dict.items()
        }
    ) from None


def problem_response(request: HttpRequest, status_code: int, *, detail: str | None = None) -> JsonResponse:
    """Plain-Django answers for API paths (outside DRF views): 404, 413, 500, 503."""
    title, slug = _TITLES.get(status_code, ("Internal error", "internal-error"))
    detail = detail or {
        404: "No such endpoint.",
        500: "The request could not be completed; it has been logged. Retry later.",
        503: "The database is unreachable for the moment; retry after the delay in Retry-After.",
    }.get(status_code, title)
    body = problem(status_code=status_code, title=title, detail=detail, slug=slug, instance=request.path)
    response = JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE)
    if status_code == 503:
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


# A database outage (or a lock held past the timeout) is the client's cue to retry, not our bug.
DATABASE_RETRY_AFTER_SECONDS = 5


def log_database_unavailable(request: HttpRequest, exc: Exception) -> None:
    """One warning line per refused request, no traceback: an outage must not flood the log."""
    reason = next(iter(str(exc).strip().splitlines()), "")
    logger.warning(
        "Database unavailable: %s %s answered 503 (%s: %s)", request.method, request.path, type(exc).__name__, reason
    )


def database_unavailable_response(request: HttpRequest, exc: Exception) -> JsonResponse:
    """503 problem+json with Retry-After for a connection-class database error."""
    log_database_unavailable(request, exc)
    response = problem_response(request, 503)
    response._has_been_logged = True  # the warning above is the one line; Django would add an error line
    return response
