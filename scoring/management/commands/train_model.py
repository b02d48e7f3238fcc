"""Train an XGBoost PD model on labelled dossiers, or on a CSV of a team's own book.

The segment's first model becomes the champion at once. With a champion in place, training on the dossiers
is a retraining run (as the monthly task does): the new model is a challenger compared with the champion on
an out-of-time holdout, and a senior analyst approves it in the back-office.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from scoring.model.csv_training import CsvTrainingError, train_from_csv
from scoring.model.registry import labelled_history, model_register, model_train_from_dossiers
from scoring.model.retraining import GovernanceError, comparison_lines, retraining_execute, retraining_start
from scoring.model.training import metrics_lines
from scoring.models import RetrainingRun
from scoring.selectors import champion_for


class Command(BaseCommand):
    help = (
        "Train XGBoost on labelled dossiers (defaults, and repaid credits whose performance window has run), "
        "or with --csv on a file of historical labelled files, and store a new version: the champion when the "
        "segment has none, else a challenger compared with it (dossiers) or a candidate (--csv)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--segment", choices=["b2b", "b2c"], default="b2b")
        parser.add_argument("--no-promote", action="store_true", help="Register as a candidate only.")
        parser.add_argument(
            "--if-no-champion",
            action="store_true",
            help="Do nothing when the segment already has a champion (used by make demo).",
        )
        parser.add_argument("--csv", metavar="FILE", help="Train on this CSV of historical labelled files.")
        parser.add_argument("--target", metavar="COLUMN", help="With --csv: the outcome column.")
        parser.add_argument(
            "--positive",
            metavar="VALUE",
            help="With --csv: the target value meaning default (default: 1, true, yes or defaulted).",
        )
        parser.add_argument(
            "--date-column",
            metavar="COLUMN",
            help="With --csv: the application date, for the time order (default: file order).",
        )
        parser.add_argument(
            "--exclude",
            metavar="COLUMN",
            action="append",
            default=[],
            help="With --csv: a column not to train on (repeatable), e.g. one flagged as leakage.",
        )
        parser.add_argument(
            "--folds",
            type=int,
            metavar="K",
            help="With --csv: cross-validate with K folds (default: 5 on books of up to 20,000 rows; 1 validates "
            "on the latest 20 %% of files instead).",
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="With --csv: end with the result as one JSON object."
        )

    def handle(self, *args, segment: str, no_promote: bool, if_no_champion: bool, **options) -> None:
        if if_no_champion and champion_for(segment):
            self.stdout.write(f"{champion_for(segment).label} is already the champion; not retraining.")
            return
        if any(options[name] for name in ("csv", "target", "positive", "date_column", "exclude", "folds")):
            self.train_from_csv(segment=segment, promote=not no_promote, **options)
            return
        if not no_promote:
            self.retrain(segment)
            return
        history = labelled_history(segment)
        self.stdout.write(history.summary())
        try:
            version = model_train_from_dossiers(
                segment=segment, trained_by="train_model", promote=not no_promote, history=history
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for line in metrics_lines(version.metrics):
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(f"Trained {version.label} ({version.status})."))
        self.stdout.write(json.dumps(version.metrics, sort_keys=True))

    def retrain(self, segment: str) -> None:
        """A retraining run, inline: a segment's first model becomes its champion; later ones are challengers that
        a senior analyst approves in the back-office (never promoted here)."""
        try:
            run = retraining_start(segment=segment, trigger=RetrainingRun.Trigger.COMMAND, enqueue=False)
        except GovernanceError as exc:
            raise CommandError(str(exc)) from None
        champion = champion_for(segment)
        if champion is None:
            self.stdout.write(
                f"No champion for {segment}: training its first model (run {run.pk}), validated on the latest files "
                "and then made the champion."
            )
        else:
            self.stdout.write(f"{champion.label} is the champion: retraining (run {run.pk}) for a challenger.")
        run = retraining_execute(run_id=run.pk)
        if run.labelled.get("summary"):
            self.stdout.write(run.labelled["summary"])
        if run.status != RetrainingRun.Status.SUCCEEDED:
            raise CommandError(f"Retraining run {run.pk} failed: {run.error}")
        version = run.challenger
        for line in metrics_lines(version.metrics):
            self.stdout.write(line)
        self.stdout.write("")
        for line in comparison_lines(version.comparison):
            self.stdout.write(line)
        self.stdout.write("")
        if version.status == version.Status.CHAMPION:
            self.stdout.write(self.style.SUCCESS(f"Trained {version.label} ({version.status})."))
        elif version.comparison.get("passed"):
            self.stdout.write(
                self.style.SUCCESS(
                    f"{version.label} is the challenger: a senior analyst approves it in the back-office."
                )
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"{version.label} is the challenger, but it did not pass the promotion gates: it shadow-scores "
                    "live dossiers and cannot be approved."
                )
            )
        self.stdout.write(json.dumps(version.metrics, sort_keys=True))

    def train_from_csv(
        self,
        *,
        segment: str,
        promote: bool,
        csv: str | None,
        target: str | None,
        positive: str | None,
        date_column: str | None,
        exclude: list[str],
        folds: int | None,
        as_json: bool,
        **options,
    ) -> None:
        if not csv or not target:
            raise CommandError("--csv FILE and --target COLUMN go together.")
        if folds is not None and folds < 1:
            raise CommandError("--folds must be 1 (validate on the latest 20 % of files) or at least 2.")
        try:
            result = train_from_csv(
                csv,
                target=target,
                positive=positive,
                date_column=date_column,
                exclude=exclude,
                segment=segment,
                folds=folds,
            )
        except CsvTrainingError as exc:
            raise CommandError(str(exc)) from None
        for line in result.report.lines():
            self.stdout.write(self.style.WARNING(line) if line.startswith("  - ") else line)
        if promote and result.report.leakage:
            # A model that learnt the outcome from a post-decision column looks perfect and scores live
            # dossiers (where that column is missing) as if nothing could go wrong: never make it the champion.
            promote = False
            self.stdout.write(
                self.style.WARNING(
                    "Not promoted: the data shows leakage (above). Drop those columns with --exclude and train again."
                )
            )
        champion = champion_for(segment)
        if promote and champion is not None:
            # A champion's successor is approved by a senior analyst after a comparison on the same holdout;
            # a CSV model's features are the file's, which the live dossiers do not have: kept as a candidate.
            promote = False
            self.stdout.write(
                self.style.WARNING(
                    f"Not promoted: {champion.label} is the champion. This model is registered as a candidate, "
                    "not compared with it: its features are the CSV's, not the live dossiers'."
                )
            )
        version = model_register(
            segment=segment, trained=result.trained, trained_by="train_model --csv", promote=promote
        )
        self.stdout.write("")
        for line in metrics_lines(version.metrics):
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"Trained {version.label} ({version.status}) on "
                f"{len(version.feature_names)} features from {result.report.path.name}."
            )
        )
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "model": version.label,
                        "status": version.status,
                        "features": version.feature_names,
                        "monotone_constraints": version.monotone_constraints,
                        "calibration": version.calibration,
                        "training_window": version.training_window,
                        "metrics": version.metrics,
                        "warnings": result.report.warnings,
                    },
                    sort_keys=True,
                    default=str,
                )
            )
