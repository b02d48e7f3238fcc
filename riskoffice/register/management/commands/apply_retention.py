"""manage.py apply_retention [--dry-run]: each data category's period, what it reaches, and (unless dry) applied."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from riskoffice.audit import Actor
from riskoffice.register.models import DataCategory
from riskoffice.register.retention import retention_apply


class Command(BaseCommand):
    help = (
        "Apply the retention period of every active data category of the GDPR register (delete or anonymise what "
        "is older). --dry-run prints what would be done and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count only; change nothing, audit nothing.")
        parser.add_argument(
            "--category",
            action="append",
            dest="codes",
            metavar="CODE",
            help="Only this data category (repeatable); by default every active one.",
        )

    def handle(self, *args, **options):
        dry_run = options["dry_run"]
        codes = options["codes"] or []
        unknown = sorted(set(codes) - set(DataCategory.objects.filter(is_active=True).values_list("code", flat=True)))
        if unknown:
            raise CommandError("No active data category with the code(s): " + ", ".join(unknown))
        reports = retention_apply(dry_run=dry_run, actor=Actor.of_system("retention"), codes=codes)
        if dry_run:
            self.stdout.write("Dry run: nothing is changed.")
        for report in reports:
            line = (
                f"{report.code}: cutoff {report.cutoff:%Y-%m-%d %H:%M} ({report.retention_days} days), "
                f"action {report.action}, eligible {report.eligible}"
            )
            if not dry_run:
                line += f", applied {report.applied}"
            if report.note:
                line += f" — {report.note}"
            if report.error:
                line += f" — ERROR: {report.error}"
            self.stdout.write(line)
        failed = [report.code for report in reports if report.error]
        if failed:
            raise CommandError("Retention failed for: " + ", ".join(failed))
