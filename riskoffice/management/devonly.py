"""Commands that belong to the demo and the developer's machine, never to production."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError


def refuse_in_production(command: str) -> None:
    """A clear error (manage.py exits non-zero) when RISKOFFICE_ENV is production."""
    if settings.RISKOFFICE_ENV == "production":
        raise CommandError(
            f"{command} is for the demo and development only and refuses to run with RISKOFFICE_ENV=production: "
            "it would create accounts with published passwords and synthetic data."
        )
