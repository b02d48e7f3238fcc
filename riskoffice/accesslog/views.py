"""The auditor's pages: search the access log and the audit trail, and export what a search found as CSV.

Auditors and admins only (403 for everyone else). Pages are found without counting the table: one row beyond
the page says another follows (as the dossier queue does). Every view here, exports included, lands in the
access log itself (riskoffice.accesslog.middleware).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
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
from riskoffice.web import require_role

from .forms import AccessLogSearchForm, AuditSearchForm
from .models import AccessLogEntry
from .selectors import access_log_search, audit_search

CAN_READ_LOGS = {AUDITOR, ADMIN}
PAGE_SIZE = 50
EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class LogPage:
    number: int
    object_list: list[Any]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def _page(rows: QuerySet, number: str | None) -> LogPage:
    page = int(number) if number and re.fullmatch(r"[1-9][0-9]{0,5}", number) else 1
    start = (page - 1) * PAGE_SIZE
    found = list(rows[start : start + PAGE_SIZE + 1])
    return LogPage(number=page, object_list=found[:PAGE_SIZE], has_next=len(found) > PAGE_SIZE)


def _filters(form: forms.Form) -> dict[str, Any]:
    """The valid fields of a bound form: a wrong date is reported, the rest of the search still runs."""
    form.is_valid()
    return {name: value for name, value in form.cleaned_data.items() if name not in form.errors}


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
    require_role(request, CAN_READ_LOGS)
    form = AccessLogSearchForm(request.GET)
    filters = _filters(form)
    page = _page(access_log_search(filters), request.GET.get("page"))
    context = {"form": form, "page": page, "filtered": any(v not in (None, "") for v in filters.values())}
    return render(request, "accesslog/access_log.html", context)


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
    require_role(request, CAN_READ_LOGS)
    form = AuditSearchForm(request.GET)
    filters = _filters(form)
    page = _page(audit_search(filters), request.GET.get("page"))
    context = {"form": form, "page": page, "filtered": any(v not in (None, "") for v in filters.values())}
    return render(request, "accesslog/audit_trail.html", context)


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
