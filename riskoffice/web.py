"""Helpers every back-office view uses: role checks and service errors shown on forms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from .roles import has_any_role


def require_role(request: HttpRequest, roles: set[str]) -> None:
    """403 unless the user holds one of ``roles``."""
    if not has_any_role(request.user, roles):
        raise PermissionDenied(_("Your role does not allow this."))


def apply_service_errors(form: forms.Form, error: ValidationError) -> None:
    """A service's ValidationError as form errors: on the named field when the form has it, else on the form."""
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@dataclass(frozen=True)
class SeekPage:
    """A page found without counting the whole table: one row beyond the page says another follows.

    Django's Paginator counts every matching row on each view, a scan no index serves on a big table (the
    dossier queue, the access log, the audit trail). Offers the attributes the templates use from Django's Page.
    """

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


def seek_page(rows: QuerySet, number: str | None, size: int) -> SeekPage:
    """Page ``number`` (as the query string gave it: anything but 1-999999 is the first page) of ``rows``."""
    page = int(number) if number and re.fullmatch(r"[1-9][0-9]{0,5}", number) else 1
    start = (page - 1) * size
    found = list(rows[start : start + size + 1])
    return SeekPage(number=page, object_list=found[:size], has_next=len(found) > size)
