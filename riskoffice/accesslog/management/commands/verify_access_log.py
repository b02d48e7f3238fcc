"""manage.py verify_access_log: recompute the access log's hash chain; exit non-zero at the first bad entry."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from riskoffice.accesslog.services import accesslog_chain_contains, accesslog_verify


class Command(BaseCommand):
    help = (
        "Recompute the access log's hash chain. Exits non-zero naming the first entry that was modified, "
        "deleted or inserted; prints the head hash, to be kept outside the database."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="HASH",
            help="A head hash printed by an earlier run: it must still be in the chain (repeatable).",
        )

    def handle(self, *args, anchor: list[str], **options) -> None:
        result = accesslog_verify()
        if not result.ok:
            raise CommandError(
                f"access log broken at entry #{result.first_bad_id}: {result.problem} "
                f"({result.checked} entries verified before it; last good hash {result.head_hash or '-'})"
            )
        missing = [value for value in anchor if not accesslog_chain_contains(value)]
        if missing:
            raise CommandError(f"access log rewritten: anchored hash {missing[0]} is no longer in the chain")
        self.stdout.write(f"access log OK: {result.checked} entries verified")
        self.stdout.write(f"head hash: {result.head_hash or '-'}")
