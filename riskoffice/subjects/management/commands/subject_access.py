"""Everything held about a company or an individual, as JSON (GDPR Art. 15)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from riskoffice.audit import Actor, audit_record
from riskoffice.subjects.access import access_log_export, subject_access_export

from ._subject import add_subject_arguments, subject_from


class Command(BaseCommand):
    help = "Export everything held about a company (--siren) or an individual (--partner --reference) as JSON."

    def add_arguments(self, parser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--output", help="Write the JSON to this file instead of standard output.")

    def handle(self, *args, **options) -> None:
        subject = subject_from(options)
        export = subject_access_export(**subject)
        text = json.dumps(export, indent=2, ensure_ascii=False)
        audit_record(
            actor=Actor.of_system("manage.py subject_access"),
            action="subject_access.exported",
            obj=next(iter(subject.values())),
            after={"dossiers": len(export["dossiers"]), "to_file": bool(options.get("output"))},
        )
        access_log_export(dossier_ids=[d["id"] for d in export["dossiers"]], label="manage.py subject_access")
        if options.get("output"):
            try:
                Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            except OSError as error:
                raise CommandError(f"Cannot write {options['output']}: {error.strerror}.") from None
            self.stderr.write(f"Wrote {len(export['dossiers'])} dossier(s) to {options['output']}.")
        else:
            self.stdout.write(text)
