"""Every read and change of the back-office, the admin and the partner API, into the access log.

Logged, after the view has answered:

- a signed-in user's requests to the back-office (``/dossiers/``, ``/scoring/``, ``/privacy/``, ``/register/``,
  ``/access-log/``) and to the admin (``/admin/``), reads and writes alike;
- every request to the partner API (``/api/v1/``, the schema excepted), with the client the bearer token belongs
  to (``riskoffice.api.HasClientScope`` leaves it on the request as ``accesslog_client``);
- every token request (``/o/token/``): the client id it named and whether a token was issued, never the secret.

Never kept: the query string (but for the harmless parameters in ``KEPT_QUERY_PARAMETERS``), the body, the
Authorization header, cookies. Sign-ins come from Django's auth signals (``riskoffice.accesslog.receivers``).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode

from django.contrib import admin
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from riskoffice.signin import client_ip

from .models import Action, Channel
from .services import access_log_record

logger = logging.getLogger(__name__)

BACK_OFFICE_PREFIXES = ("/dossiers/", "/scoring/", "/privacy/", "/register/", "/access-log/")
ADMIN_PREFIX = "/admin/"
API_PREFIX = "/api/v1/"
API_UNLOGGED = ("/api/v1/schema/",)  # the public contract: no data, no client
TOKEN_PATH = "/o/token/"  # noqa: S105 - a path, not a secret
# Query parameters that say how a page was shown, never whom it was about: no search text, no reference.
KEPT_QUERY_PARAMETERS = frozenset(
    {"page", "size", "page_size", "tab", "status", "segment", "sort", "band", "decision", "format", "channel"}
)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a route's argument names, when the route alone does not say it (riskoffice.accesslog: object_type).
ROUTE_OBJECT_TYPES = {
    "dossiers:company": "dossiers.company",
    "dossiers:outcome-import": "dossiers.outcomeimport",
    "dossiers:outcome-import-download": "dossiers.outcomeimport",
    "scoring:bulk-job": "scoring.bulkscoringjob",
    "scoring:bulk-download": "scoring.bulkscoringjob",
    "scoring:policy-new": "scoring.segment",
    "api:webhook-detail": "alerts.webhookendpoint",
    "api:webhooks": "alerts.webhookendpoint",
    "subjects:erasure": "subjects.subjectrequest",
}
NAMESPACE_OBJECT_TYPES = {"dossiers": "dossiers.dossier", "api": "dossiers.dossier"}
MAX_LISTED_IDS = 200


class AccessLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        try:
            entry = _entry_of(request, response)
            if entry is not None:
                access_log_record(**entry)
        except (OperationalError, InterfaceError) as exc:
            # The database is away (DatabaseUnavailableMiddleware answered 503 and said so): one line, no
            # traceback, telling the operator that an access went unrecorded.
            logger.error(
                "access log: could not record %s %s (%s: %s)",
                request.method,
                request.path,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
        except DatabaseError:
            # The answer stands; the operator is told that an access went unrecorded, and why.
            logger.exception("access log: could not record %s %s", request.method, request.path)
        return response


def _entry_of(request: HttpRequest, response: HttpResponse) -> dict[str, Any] | None:
    path = request.path
    if path.startswith(API_PREFIX):
        if path.startswith(API_UNLOGGED):
            return None
        return _common(request, response) | {
            "channel": Channel.API,
            "client": getattr(request, "accesslog_client", None),
            "action": _action(request, response),
        }
    if path == TOKEN_PATH:
        if request.method != "POST":
            return None
        return _common(request, response) | {
            "channel": Channel.TOKEN,
            "label": _token_client_id(request),
            "action": Action.LOGIN if response.status_code == 200 else Action.LOGIN_FAILED,
        }
    if path.startswith(BACK_OFFICE_PREFIXES) or path.startswith(ADMIN_PREFIX):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # sent to the login page: nothing was shown
        return _common(request, response) | {
            "channel": Channel.ADMIN if path.startswith(ADMIN_PREFIX) else Channel.BACK_OFFICE,
            "user": user,
            "action": _action(request, response),
        }
    return None


def _common(request: HttpRequest, response: HttpResponse) -> dict[str, Any]:
    match = request.resolver_match
    route = match.view_name if match else ""
    object_type, object_id = _object_of(match)
    return {
        "method": request.method or "",
        "path": _path(request),
        "route": route,
        "object_type": object_type,
        "object_id": object_id,
        "object_ids": _listed_ids(response) if not object_id else (),
        "outcome": response.status_code,
        "ip": client_ip(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }


def _path(request: HttpRequest) -> str:
    kept = [(key, value) for key, value in request.GET.items() if key in KEPT_QUERY_PARAMETERS]
    return request.path + (f"?{urlencode(kept)}" if kept else "")


def _action(request: HttpRequest, response: HttpResponse) -> str:
    if request.method not in READ_METHODS:
        return Action.CHANGE
    disposition = response.get("Content-Disposition", "")
    if disposition.startswith("attachment") or response.get("Content-Type", "").startswith("text/csv"):
        return Action.EXPORT
    return Action.READ


def _object_of(match: Any) -> tuple[str, str]:
    """The type and id of the one object a route names (a dossier, a job, an admin change form), if any."""
    if match is None:
        return "", ""
    kwargs = match.kwargs
    if match.namespace == "admin":
        object_type = _admin_model(match.url_name or "")
        return object_type, unquote(str(kwargs.get("object_id", "")))
    if not kwargs:
        return ROUTE_OBJECT_TYPES.get(match.view_name, ""), ""
    name, value = next(iter(kwargs.items()))
    object_type = ROUTE_OBJECT_TYPES.get(match.view_name) or NAMESPACE_OBJECT_TYPES.get(match.namespace, "")
    return object_type or f"{match.namespace}:{name}", str(value)


def _admin_model(url_name: str) -> str:
    """ "riskoffice_apiclient_change" -> "riskoffice.apiclient", by the admin's own registry."""
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        if url_name.startswith(prefix):
            return model._meta.label_lower
    return ""


def _listed_ids(response: HttpResponse) -> list[str]:
    """The ids an API list answered with (a DRF response's data), capped: what a partner saw."""
    data = getattr(response, "data", None)
    rows = data.get("results") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        return []
    return [str(row["id"]) for row in rows[:MAX_LISTED_IDS] if isinstance(row, dict) and "id" in row]


def _token_client_id(request: HttpRequest) -> str:
    """The client id a token request named (HTTP Basic or the form), never its secret."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote(decoded.partition(":")[0])[:200]
    try:
        return str(request.POST.get("client_id", ""))[:200]
    except Exception:  # noqa: BLE001 - an unreadable body names no client
        return ""
