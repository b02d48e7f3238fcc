"""The analysts' back-office queue."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from riskoffice.roles import CAN_READ_DOSSIERS
from riskoffice.web import require_role

from .. import selectors
from ..models import Dossier

PAGE_SIZE = 50


@dataclass(frozen=True)
class QueuePage:
    """A page of the queue, found without counting the whole queue: one row beyond the page says another follows.

    Django's Paginator counts every matching dossier on each view, a scan of the table that no index serves.
    """

    number: int
    object_list: list[Dossier]
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


def _queue_page(dossiers: QuerySet[Dossier], number: str | None) -> QueuePage:
    page = int(number) if number and re.fullmatch(r"[1-9][0-9]{0,5}", number) else 1
    start = (page - 1) * PAGE_SIZE
    rows = list(dossiers[start : start + PAGE_SIZE + 1])
    return QueuePage(number=page, object_list=rows[:PAGE_SIZE], has_next=len(rows) > PAGE_SIZE)


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    require_role(request, CAN_READ_DOSSIERS)
    status = request.GET.get("status", "")
    dossiers = selectors.dossiers_for_user(request.user).exclude(origin=Dossier.Origin.HISTORY)
    if status in Dossier.Status.values:
        dossiers = dossiers.filter(status=status)
    page = _queue_page(dossiers, request.GET.get("page"))
    rows = [(dossier, selectors.latest_score(dossier)) for dossier in page.object_list]
    return render(
        request,
        "dossiers/queue.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "statuses": Dossier.Status.choices,
        },
    )
