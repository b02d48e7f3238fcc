"""Score a CSV file with the segment's champion model and current policy, synchronously."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scoring.bulk import rows as bulk
from scoring.models import Segment
from scoring.selectors import champion_for, policy_current


class Command(BaseCommand):
    help = (
        "Append probability_of_default, score, band, decision, recommended_limit, rules_fired and the top three "
        "factors to every row of a CSV whose columns are the model's features; unreadable rows get an error."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "input_file", metavar="IN.csv", type=Path, help="CSV file with a header naming the model's features."
        )
        parser.add_argument("--out", metavar="OUT.csv", type=Path, required=True, help="Where to write the scored CSV.")
        parser.add_argument("--segment", choices=Segment.values, default=Segment.B2B.value)

    def handle(self, *args, input_file: Path, out: Path, segment: str, **options) -> None:
        if not input_file.is_file():
            raise CommandError(f"{input_file}: no such file.")
        if out.resolve() == input_file.resolve():
            raise CommandError("--out must not be the input file.")
        model_version = champion_for(segment)
        if model_version is None:
            raise CommandError(f"No champion model for segment {segment}: train one with manage.py train_model.")
        policy = policy_current(segment)
        if policy is None:
            raise CommandError(f"No current decision policy for segment {segment}.")

        started = time.monotonic()
        try:
            csv_file = bulk.csv_read(input_file.read_bytes())
            bulk.columns_check(csv_file, model_version.feature_names)
        except bulk.CsvInputError as exc:
            raise CommandError(f"{input_file}: {exc}") from None
        results = bulk.score_csv(csv_file, model_version, policy)
        try:
            out.write_bytes(bulk.csv_write(csv_file, results))
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc.strerror}.") from None

        summary = bulk.results_summary(results)
        decisions = ", ".join(f"{name} {count}" for name, count in sorted(summary["decisions"].items()))
        self.stdout.write(
            f"{summary['rows']} rows, {summary['scored']} scored, {summary['errors']} errors "
            f"in {time.monotonic() - started:.1f} s with {model_version.label} and {policy.label}"
            f"{f' ({decisions})' if decisions else ''}."
        )
        self.stdout.write(self.style.SUCCESS(f"Wrote {out}."))
