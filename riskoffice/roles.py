"""Back-office roles, held as Django groups so admins manage them in one place."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest

ANALYST = "analyst"
SENIOR_ANALYST = "senior_analyst"  # risk managers: approve overrides, own the policy and the model
ADMIN = "admin"  # users, API clients, the GDPR register
AUDITOR = "auditor"  # read-only, access logs included

ALL_ROLES = (ANALYST, SENIOR_ANALYST, ADMIN, AUDITOR)
CAN_DECIDE = {ANALYST, SENIOR_ANALYST}
CAN_READ_DOSSIERS = {ANALYST, SENIOR_ANALYST, AUDITOR, ADMIN}


def user_roles(user: AbstractBaseUser | AnonymousUser | None) -> set[str]:
    # None: a DRF request with no session (UNAUTHENTICATED_USER is None for the API).
    if user is None or not user.is_authenticated:
        return set()
    cached = getattr(user, "_riskoffice_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            # The first account of a fresh install (manage.py createsuperuser) is an admin: it reads the
            # queue and manages the install, but decides nothing unless a group makes it an analyst.
            cached.add(ADMIN)
        user._riskoffice_roles = cached
    return cached


def has_any_role(user: AbstractBaseUser | AnonymousUser, roles: set[str]) -> bool:
    return bool(user_roles(user) & roles)


def roles_context(request: HttpRequest) -> dict[str, object]:
    roles = user_roles(request.user) if hasattr(request, "user") else set()
    return {"user_roles": roles, "can_decide": bool(roles & CAN_DECIDE)}
