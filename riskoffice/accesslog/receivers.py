"""Sign-ins, failed sign-ins and sign-outs into the access log (username only, never the password)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from riskoffice.signin import client_ip

from .models import Action, Channel
from .services import access_log_record


def _request_fields(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {"channel": Channel.BACK_OFFICE}
    match = getattr(request, "resolver_match", None)
    return {
        "channel": Channel.ADMIN if request.path.startswith("/admin/") else Channel.BACK_OFFICE,
        "method": request.method or "",
        "path": request.path,
        "route": match.view_name if match else "",
        "ip": client_ip(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }


@receiver(user_logged_in, dispatch_uid="accesslog_logged_in")
def _logged_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    access_log_record(action=Action.LOGIN, user=user, **_request_fields(request))


@receiver(user_logged_out, dispatch_uid="accesslog_logged_out")
def _logged_out(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if user is not None:
        access_log_record(action=Action.LOGOUT, user=user, **_request_fields(request))


@receiver(user_login_failed, dispatch_uid="accesslog_login_failed")
def _login_failed(sender, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs) -> None:
    # Only the username: Django already masks the password in ``credentials``, and we never read it.
    username = str(credentials.get("username", ""))[:150]
    access_log_record(action=Action.LOGIN_FAILED, label=username, **_request_fields(request))
