"""Train an XGBoost PD model on labelled dossiers and make it the segment's champion."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from scoring.services import champion_for, model_train_from_dossiers


class Command(BaseCommand):
    help = "Train XGBoost on labelled dossiers (those with a repaid/defaulted outcome) and store a new version."

    def add_arguments(self, parser):
        parser.add_argument("--segment", choices=["b2b"], default="b2b")
        parser.add_argument("--no-promote", action="store_true", help="Register as a candidate only.")
        parser.add_argument("--if-no-champion", action="store_true",
                            help="Do nothing when the segment already has a champion (used by make demo).")

    def handle(self, *args, segment: str, no_promote: bool, if_no_champion: bool, **options) -> None:
        if if_no_champion and champion_for(segment):
            self.stdout.write(f"{champion_for(segment).label} is already the champion; not retraining.")
            return
        try:
            version = model_train_from_dossiers(segment=segment, trained_by="train_model", promote=not no_promote)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Trained {version.label} ({version.status})."))
        self.stdout.write(json.dumps(version.metrics, sort_keys=True))
