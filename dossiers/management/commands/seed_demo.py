"""Generate a synthetic, labelled history of French SME credit files, and of individuals' (scoring/synthetic.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from dossiers.identifiers import vat_for_siren
from dossiers.models import Company, Dossier, Individual, Outcome
from riskoffice.audit import Actor, audit_record
from riskoffice.keys import reference_digest
from riskoffice.management.devonly import refuse_in_production
from scoring.model.features import jsonable_features
from scoring.model.synthetic import generate_b2c_portfolio, generate_portfolio
from scoring.models import FeatureSnapshot


class Command(BaseCommand):
    help = "Seed a synthetic labelled history of French companies (valid SIRENs, ground-truth defaults)."

    def add_arguments(self, parser):
        parser.add_argument("--companies", type=int, default=6000, help="How many historical files (default 6000).")
        parser.add_argument(
            "--individuals",
            type=int,
            default=0,
            help="Also seed this many B2C files of individuals (default none; make demo uses 4000).",
        )
        parser.add_argument("--seed", type=int, default=7, help="Random seed (default 7).")
        parser.add_argument("--reset", action="store_true", help="Delete the existing synthetic history first.")

    def handle(self, *args, companies: int, individuals: int, seed: int, reset: bool, **options) -> None:
        refuse_in_production("seed_demo")
        if companies < 200:
            raise CommandError("--companies must be at least 200 to train a model on.")
        if individuals and individuals < 200:
            raise CommandError("--individuals must be 0 or at least 200 to train a model on.")
        if individuals:
            self.seed_individuals(individuals, seed=seed, reset=reset)
        history = Dossier.objects.filter(origin=Dossier.Origin.HISTORY, segment="b2b")
        if history.exists() and not reset:
            self.stdout.write(f"Synthetic history already present ({history.count()} files); use --reset to redo.")
            return
        portfolio = generate_portfolio(companies, seed=seed)
        rng = np.random.default_rng(seed + 1)
        with transaction.atomic():
            if reset:
                self._clear(history)
            existing = set(
                Company.objects.filter(siren__in=[c.siren for c, _, _ in portfolio]).values_list("siren", flat=True)
            )
            Company.objects.bulk_create(
                [
                    Company(siren=c.siren, vat=vat_for_siren(c.siren), name=c.name, naf_code=c.naf_code)
                    for c, _, _ in portfolio
                    if c.siren not in existing
                ]
            )
            company_ids = dict(
                Company.objects.filter(siren__in=[c.siren for c, _, _ in portfolio]).values_list("siren", "pk")
            )
            dossiers = Dossier.objects.bulk_create(
                [
                    Dossier(
                        origin=Dossier.Origin.HISTORY,
                        company_id=company_ids[c.siren],
                        segment="b2b",
                        requested_amount=round(c.requested_amount, 2),
                        status=Dossier.Status.SCORED,
                        bank_tokens_json=json.dumps([]),
                    )
                    for c, _, _ in portfolio
                ]
            )
            defaults = self._write_history(segment="b2b", dossiers=dossiers, portfolio=portfolio, rng=rng, seed=seed)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(portfolio)} historical files, {defaults} defaults "
                f"({100 * defaults / len(portfolio):.1f} %)."
            )
        )

    def seed_individuals(self, n: int, *, seed: int, reset: bool) -> None:
        """A B2C history: individuals known by a reference only, their bank features and outcomes."""
        history = Dossier.objects.filter(origin=Dossier.Origin.HISTORY, segment="b2c")
        if history.exists() and not reset:
            self.stdout.write(f"Synthetic B2C history already present ({history.count()} files); use --reset to redo.")
            return
        portfolio = generate_b2c_portfolio(n, seed=seed)
        rng = np.random.default_rng(seed + 2)
        references = [person.reference for person, _, _ in portfolio]
        with transaction.atomic():
            if reset:
                self._clear(history)
            # History files have no partner: their references live apart from every partner's own.
            # References are encrypted: found by their keyed digests (IndividualQuerySet), set on each new row.
            existing = {
                individual.reference
                for individual in Individual.objects.filter(partner=None).matching_references(references)
            }
            Individual.objects.bulk_create(
                [
                    Individual(partner=None, reference=reference, reference_digest=reference_digest(reference))
                    for reference in references
                    if reference not in existing
                ]
            )
            individual_ids = {
                individual.reference: individual.pk
                for individual in Individual.objects.filter(partner=None).matching_references(references)
            }
            dossiers = Dossier.objects.bulk_create(
                [
                    Dossier(
                        origin=Dossier.Origin.HISTORY,
                        individual_id=individual_ids[person.reference],
                        segment="b2c",
                        requested_amount=round(person.requested_amount, 2),
                        status=Dossier.Status.SCORED,
                        bank_tokens_json=json.dumps([]),
                    )
                    for person, _, _ in portfolio
                ]
            )
            defaults = self._write_history(segment="b2c", dossiers=dossiers, portfolio=portfolio, rng=rng, seed=seed)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {len(portfolio)} historical B2C files, {defaults} defaults "
                f"({100 * defaults / len(portfolio):.1f} %)."
            )
        )

    @staticmethod
    def _clear(history) -> None:
        FeatureSnapshot.objects.filter(dossier__in=history).delete()
        Outcome.objects.filter(dossier__in=history).delete()
        history.delete()

    @staticmethod
    def _write_history(
        *, segment: str, dossiers: list[Dossier], portfolio: list, rng: np.random.Generator, seed: int
    ) -> int:
        """Backdate the files, store their features and outcomes, audit the import; returns the defaults."""
        now = timezone.now()
        # Applications spread over 36 to 12 months ago, so every outcome (12-month horizon) is known today.
        applied = [now - timedelta(days=int(d)) for d in rng.uniform(365, 3 * 365, size=len(portfolio))]
        for dossier, when in zip(dossiers, applied, strict=True):
            dossier.created_at = dossier.updated_at = when
        Dossier.objects.bulk_update(dossiers, ["created_at", "updated_at"], batch_size=500)
        FeatureSnapshot.objects.bulk_create(
            [
                FeatureSnapshot(
                    dossier=dossier,
                    features=jsonable_features(applicant.features()),
                    collected_at=when,
                    provenance={"synthetic": {"source": "synthetic", "true_pd": round(pd_true, 6)}},
                )
                for dossier, (applicant, pd_true, _), when in zip(dossiers, portfolio, applied, strict=True)
            ]
        )
        Outcome.objects.bulk_create(
            [
                Outcome(
                    dossier=dossier,
                    status="defaulted" if defaulted else "repaid",
                    occurred_on=(when + timedelta(days=int(rng.integers(30, 365)) if defaulted else 365)).date(),
                )
                for dossier, (_, _, defaulted), when in zip(dossiers, portfolio, applied, strict=True)
            ]
        )
        defaults = sum(1 for _, _, defaulted in portfolio if defaulted)
        audit_record(
            actor=Actor.of_system("seed_demo"),
            action="history.seeded",
            obj=dossiers[0],
            after={"segment": segment, "files": len(portfolio), "defaults": defaults, "seed": seed},
        )
        return defaults
