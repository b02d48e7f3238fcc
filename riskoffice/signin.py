"""Who may stay signed in to the back-office, and for how long.

- ``client_ip``: the address a login comes from, for django-axes' lockout (AXES_CLIENT_IP_CALLABLE).
- ``SessionTimeoutMiddleware``: a session ends after SESSION_IDLE_TIMEOUT_MINUTES without a request and,
  whatever happens, SESSION_ABSOLUTE_TIMEOUT_HOURS after sign-in.
- ``TwoFactorMiddleware``: until a session has passed its second factor, whoever must use one (admins,
  superusers, senior analysts, and anyone who enrolled a device) reaches only the two-factor step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AbstractBaseUser
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import user_has_device

from .middleware import database_unavailable_page
from .roles import ADMIN, SENIOR_ANALYST, user_roles

# What an unreachable database raises (riskoffice.middleware answers it with a 503).
DATABASE_AWAY = (OperationalError, InterfaceError)

# Roles that may not reach the back-office or the admin without a second factor (superusers count as admins).
TWO_FACTOR_REQUIRED_ROLES = {ADMIN, SENIOR_ANALYST}

SIGNED_IN_AT = "riskoffice_signed_in_at"
LAST_SEEN_AT = "riskoffice_last_seen_at"
# The last-seen time is written at most this often: not a session write on every request.
LAST_SEEN_RESOLUTION_SECONDS = 60

# Paths a signed-in user reaches before the second factor: signing in and out, the two-factor step itself,
# static files, the language switch, probes, and the partner API and token endpoints (OAuth, no session).
OPEN_PREFIXES = ("/login/", "/logout/", "/two-factor/", "/static/", "/i18n/", "/api/", "/o/", "/healthz", "/readyz")
OPEN_PATHS = {"/admin/login/", "/admin/logout/"}


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the outermost one saw the client at.

    Each trusted proxy appends the address it received the request from to X-Forwarded-For; anything to the
    left of those entries was written by the client and is not believed.
    """
    count = settings.TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "")
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < count:
        return remote
    return forwarded[-count]


def two_factor_required(user: AbstractBaseUser) -> bool:
    """Whether this user's role obliges them to sign in with a second factor."""
    return bool(user_roles(user) & TWO_FACTOR_REQUIRED_ROLES)


HAS_DEVICE = "riskoffice_has_otp_device"


def needs_second_factor(request: HttpRequest) -> bool:
    """Whether this session must pass a second factor: the user's role says so, or they enrolled a device.

    Roles are read on every request (a new role applies at once); whether an analyst has a device is read once
    per session, in the sign-in request itself (enrolling one verifies the session that does it).
    """
    if two_factor_required(request.user):
        return True
    _remember_device(request)
    return request.session[HAS_DEVICE]


def _remember_device(request: HttpRequest) -> None:
    if HAS_DEVICE not in request.session:
        request.session[HAS_DEVICE] = user_has_device(request.user, confirmed=True)


def _with_next(url_name: str, request: HttpRequest) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': request.get_full_path()})}"


class SessionTimeoutMiddleware:
    """Signs a back-office session out after an idle period, and after an absolute lifetime."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            expired = request.user.is_authenticated and self._expired(request)
        except DATABASE_AWAY as exception:  # the session and the user are read from the database
            return database_unavailable_page(request, exception)
        if expired:
            logout(request)
            messages.info(request, _("Your session has expired. Please log in again."))
            return redirect(_with_next("login", request))
        response = self.get_response(request)
        if response.status_code >= 500:
            return response  # e.g. the database is away: nothing to write into the session
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:  # a sign-in in this very request included
            now = time.time()
            session = request.session
            session.setdefault(SIGNED_IN_AT, now)
            if now - session.get(LAST_SEEN_AT, 0) >= LAST_SEEN_RESOLUTION_SECONDS:
                session[LAST_SEEN_AT] = now
        return response

    @staticmethod
    def _expired(request: HttpRequest) -> bool:
        now = time.time()
        signed_in_at = request.session.get(SIGNED_IN_AT)
        last_seen_at = request.session.get(LAST_SEEN_AT)
        if signed_in_at is not None and now - signed_in_at > settings.SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600:
            return True
        if last_seen_at is not None and now - last_seen_at > settings.SESSION_IDLE_TIMEOUT_MINUTES * 60:
            return True
        return False


class TwoFactorMiddleware:
    """Until the session passed its second factor, the back-office and the admin redirect to the two-factor step.

    Enrolment when the user must use a second factor and has no confirmed device yet, the code otherwise.
    Runs after django-otp's OTPMiddleware, which gives ``request.user.is_verified()``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        try:
            if (
                user.is_authenticated
                and not user.is_verified()
                and request.path not in OPEN_PATHS
                and not request.path.startswith(OPEN_PREFIXES)
                and needs_second_factor(request)
            ):
                if user_has_device(user, confirmed=True):
                    return redirect(_with_next("two-factor-verify", request))
                return redirect(_with_next("two-factor", request))
        except DATABASE_AWAY as exception:  # roles and devices are read from the database
            return database_unavailable_page(request, exception)
        response = self.get_response(request)
        if response.status_code >= 500:
            return response
        user = getattr(request, "user", None)  # None after a partner API call (DRF's unauthenticated user)
        if user is not None and user.is_authenticated and not two_factor_required(user):
            _remember_device(request)  # at sign-in, so that the pages after it need not ask
        return response
