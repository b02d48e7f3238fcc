"""The unread-alert count in the navigation: for analysts and senior analysts, counted only if a page shows it."""

from __future__ import annotations

from functools import cache

from django.http import HttpRequest

from riskoffice.roles import CAN_DECIDE, user_roles


def alerts_context(request: HttpRequest) -> dict[str, object]:
    if not hasattr(request, "user") or not user_roles(request.user) & CAN_DECIDE:
        return {}

    @cache
    def unread() -> int | str:
        # Called by the template (once, however often it is used): a page without the navigation counts nothing.
        from .inbox import UNREAD_CAP, unread_count

        count = unread_count(request.user)
        return f"{UNREAD_CAP}+" if count > UNREAD_CAP else count

    return {"alerts_unread": unread}
