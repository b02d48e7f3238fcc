"""The auditor's pages: search the access log and the audit trail, and export what a search found as CSV.

Auditors and admins only (403 for everyone else). Pages are found without counting the table: one row beyond
the page says another follows (as the dossier queue does). Every view here, exports included, lands in the
access log itself (riskoffice.accesslog.middleware).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from riskoffice.models import AuditEvent
from riskoffice.roles import ADMIN, AUDITOR
from riskoffice.web import require_role, seek_page

from .forms import AccessLogSearchForm, AuditSearchForm
from .models import AccessLogEntry
from .selectors import access_log_search, audit_search

CAN_READ_LOGS = {AUDITOR, ADMIN}
PAGE_SIZE = 50
EXPORT_CHUNK = 2000


def _filters(form: forms.Form) -> dict[str, Any]:
    """The valid fields of a bound form: a wrong date is reported, the rest of the search still runs."""
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if name not in form.errors}


def _search_page(
    request: HttpRequest, form_class: type[forms.Form], search: Callable[[dict[str, Any]], QuerySet], template: str
) -> HttpResponse:
    """A search form over one log, and the page of what it found (auditors and admins only)."""
    require_role(request, CAN_READ_LOGS)
    form = form_class(request.GET)
    filters = _filters(form)
    page = seek_page(search(filters), request.GET.get("page"), PAGE_SIZE)
    context = {"form": form, "page": page, "filtered": any(v not in (None, "") for v in filters.values())}
    return render(request, template, context)


def _as_text(value: Any) -> str:
    """A cell a spreadsheet must show, not run: a leading = + - @ would start a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(filename: str, header: list[str], rows: Iterator[list[Any]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff"  # a BOM, so a spreadsheet opens the accents right
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_as_text(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


def _utc(value) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- the access log ----------------------------------------------------------------------------------------


@login_required
@require_GET
def access_log(request: HttpRequest) -> HttpResponse:
    return _search_page(request, AccessLogSearchForm, access_log_search, "accesslog/access_log.html")


ACCESS_LOG_CSV = [
    "id", "at_utc", "actor", "user_id", "client_id", "channel", "action", "method", "path", "route",
    "object_type", "object_id", "object_ids", "outcome", "ip", "user_agent", "prev_hash", "hash",
]  # fmt: skip


def _entry_row(e: AccessLogEntry) -> list[Any]:
    return [
        e.pk, _utc(e.at), e.actor_label, e.actor_user_id, e.actor_client_id, e.channel, e.action, e.method,
        e.path, e.route, e.object_type, e.object_id, json.dumps(e.object_ids), e.outcome, e.ip, e.user_agent,
        e.prev_hash, e.hash,
    ]  # fmt: skip


@login_required
@require_GET
def access_log_export(request: HttpRequest) -> StreamingHttpResponse:
    require_role(request, CAN_READ_LOGS)
    entries = access_log_search(_filters(AccessLogSearchForm(request.GET)))
    rows = (_entry_row(e) for e in entries.iterator(chunk_size=EXPORT_CHUNK))
    return _csv_response(f"access-log-{timezone.localdate():%Y-%m-%d}.csv", ACCESS_LOG_CSV, rows)


# --- the audit trail ---------------------------------------------------------------------------------------


@login_required
@require_GET
def audit_trail(request: HttpRequest) -> HttpResponse:
    return _search_page(request, AuditSearchForm, audit_search, "accesslog/audit_trail.html")


AUDIT_CSV = ["id", "at_utc", "actor", "action", "object_type", "object_id", "before", "after"]


def _event_row(e: AuditEvent) -> list[Any]:
    def as_json(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    return [e.pk, _utc(e.at), e.actor_label, e.action, e.object_type, e.object_id, as_json(e.before), as_json(e.after)]


@login_required
@require_GET
def audit_trail_export(request: HttpRequest) -> StreamingHttpResponse:
    require_role(request, CAN_READ_LOGS)
    events = audit_search(_filters(AuditSearchForm(request.GET)))
    rows = (_event_row(e) for e in events.iterator(chunk_size=EXPORT_CHUNK))
    return _csv_response(f"audit-trail-{timezone.localdate():%Y-%m-%d}.csv", AUDIT_CSV, rows)
