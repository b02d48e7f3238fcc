"""Helpers every back-office view uses: role checks and service errors shown on forms."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
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
