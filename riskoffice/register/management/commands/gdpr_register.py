"""manage.py gdpr_register --check: the register's gaps, exit status 1 when there are any."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from riskoffice.register.selectors import register_gaps, register_reminders


class Command(BaseCommand):
    help = (
        "Check the GDPR Art. 30 register: active processing activities missing a mandatory item, data categories "
        "without a retention that applies. Exits non-zero when there are gaps."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="List the gaps; fail when there are any.")

    def handle(self, *args, **options):
        if not options["check"]:
            raise CommandError("Nothing to do: pass --check to list the register's gaps.")
        gaps = register_gaps()
        for reminder in register_reminders():
            self.stdout.write(f"to review: {reminder}")
        if gaps:
            for gap in gaps:
                self.stdout.write(f"gap: {gap}")
            raise CommandError(f"The register has {len(gaps)} gap(s).")
        self.stdout.write(self.style.SUCCESS("register: ok"))
