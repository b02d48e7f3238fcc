"""The subject options the data-subject commands share: ``--siren X`` or ``--partner NAME --reference R``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from riskoffice.subjects.access import company_find, individual_find


def add_subject_arguments(parser: Any) -> None:
    parser.add_argument("--siren", help="The company's SIREN.")
    parser.add_argument("--partner", help="The partner's name (with --reference): an individual.")
    parser.add_argument("--reference", help="The partner's reference for the individual.")


def subject_from(options: dict[str, Any]) -> dict[str, Any]:
    """``{"company": ...}`` or ``{"individual": ...}``, or a CommandError that says what is wrong."""
    siren, partner, reference = options.get("siren"), options.get("partner"), options.get("reference")
    if bool(siren) == bool(partner or reference):
        raise CommandError("Name the subject: --siren X, or --partner NAME --reference R.")
    try:
        if siren:
            return {"company": company_find(siren)}
        if not partner or not reference:
            raise CommandError("An individual is named by --partner NAME and --reference R together.")
        return {"individual": individual_find(partner, reference)}
    except ValidationError as error:
        raise CommandError(" ".join(error.messages)) from None
