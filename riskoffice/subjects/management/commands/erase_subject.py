"""Erase what may be erased about a company or an individual, keeping what the law requires (GDPR Art. 17)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from riskoffice.audit import Actor
from riskoffice.subjects.erasure import erase_subject

from ._subject import add_subject_arguments, subject_from


class Command(BaseCommand):
    help = (
        "Anonymise a company's (--siren) or an individual's (--partner --reference) dossiers, except those kept "
        "under the retention of credit files; --dry-run shows what would be done."
    )

    def add_arguments(self, parser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Show what would be done; change nothing.")

    def handle(self, *args, **options) -> None:
        subject = subject_from(options)
        report = erase_subject(**subject, actor=Actor.of_system("manage.py erase_subject"), dry_run=options["dry_run"])
        self.stdout.write(json.dumps(report.as_dict(), indent=2))
        verb = "would be" if report.dry_run else "were"
        self.stderr.write(
            f"{len(report.anonymised)} dossier(s) {verb} anonymised, {len(report.kept)} kept under retention."
        )
