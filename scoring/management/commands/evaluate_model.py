"""Judge the model against the oracle and a logistic-regression baseline on synthetic data."""

from __future__ import annotations

import json as _json

from django.core.management.base import BaseCommand, CommandError

from scoring.model.evaluation import evaluate_synthetic


class Command(BaseCommand):
    help = (
        "Train on a synthetic book drawn from the ground-truth generator and report, on the same out-of-time "
        "holdout, the model's AUC, Gini, KS and Brier score next to the oracle's (the true PD) and a "
        "logistic regression's."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--synthetic", action="store_true", help="Evaluate on data from scoring.synthetic (the only mode for now)."
        )
        parser.add_argument("--rows", type=int, default=40000, help="Synthetic files to draw (default 40000).")
        parser.add_argument("--seed", type=int, default=7, help="Seed of the synthetic book (default 7).")
        parser.add_argument("--json", action="store_true", help="Print the figures as one JSON object, last line.")

    def handle(self, *args, synthetic: bool, rows: int, seed: int, json: bool, **options) -> None:
        if not synthetic:
            raise CommandError("Only --synthetic is supported: evaluate_model --synthetic [--rows N] [--seed S].")
        try:
            evaluation = evaluate_synthetic(rows=rows, seed=seed)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for line in evaluation.table():
            self.stdout.write(line)
        if json:
            self.stdout.write(_json.dumps(evaluation.summary(), sort_keys=True))
