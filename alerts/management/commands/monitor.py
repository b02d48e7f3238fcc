"""Run monitoring by hand: the re-score of the monitored companies, the BODACC check, for all or one company."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from alerts import bodacc_watch, monitoring
from alerts.models import Alert, WatchedCompany
from alerts.selectors import monitored_companies
from dossiers.identifiers import siren_error
from dossiers.models import Company
from scoring.models import CompanyScore, PortfolioRun
from scoring.portfolio.runs import PortfolioUnavailable, portfolio_chunk_process

SYSTEM = "command:monitor"


class Command(BaseCommand):
    help = (
        "Monitoring by hand. --now re-scores the monitored companies (a run whose chunks the Celery workers "
        "take; --inline scores them here); --check-bodacc reads BODACC for every monitored SIREN here; "
        "--company SIREN limits either to one company (re-scored here, at once). Without options: what is monitored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="Re-score the monitored companies now.")
        parser.add_argument("--check-bodacc", action="store_true", help="Check BODACC for new notices now.")
        parser.add_argument("--company", metavar="SIREN", help="Only this company (it must be monitored).")
        parser.add_argument("--inline", action="store_true", help="With --now: score the chunks in this process.")

    def handle(self, *args, now: bool, check_bodacc: bool, company: str | None, inline: bool, **options) -> None:
        target = self._company(company) if company else None
        if not now and not check_bodacc:
            self._status(target)
            return
        if now:
            self._rescore(target, inline=inline)
        if check_bodacc:
            self._check_bodacc(target)

    def _company(self, siren: str) -> Company:
        siren = "".join(siren.split())
        error = siren_error(siren)
        if error:
            raise CommandError(f"--company: {error}")
        found = monitored_companies().filter(siren=siren).first()
        if found is None:
            raise CommandError(f"SIREN {siren} is not monitored (no open exposure, no partner watches it).")
        return found

    def _status(self, target: Company | None) -> None:
        companies = monitored_companies() if target is None else monitored_companies().filter(pk=target.pk)
        self.stdout.write(
            f"{companies.count()} monitored companies ({WatchedCompany.objects.count()} watches); "
            f"{Alert.objects.filter(acknowledged_at__isnull=True).count()} alerts not acknowledged."
        )
        self.stdout.write("Use --now to re-score them, --check-bodacc to read BODACC.")

    def _rescore(self, target: Company | None, *, inline: bool) -> None:
        alerts_before = Alert.objects.count()
        if target is not None:
            run = monitoring.company_rescore(company=target, system=SYSTEM)
            if run is None:
                raise CommandError(f"{target.siren} has no scored dossier to be re-scored from.")
            score = CompanyScore.objects.filter(run=run, company=target).first()
            moved = (
                "no previous score"
                if score is None or score.previous_score is None
                else f"{score.previous_score} → {score.score} (band {score.previous_band} → {score.band})"
            )
            self.stdout.write(f"Run {run.pk}: {target.siren} re-scored, {moved}.")
        else:
            try:
                run = monitoring.monitoring_run_start(system=SYSTEM)
            except PortfolioUnavailable as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Run {run.pk}: {run.companies_total} monitored companies in {run.chunks_total} chunks.")
            if not inline:
                self.stdout.write("Enqueued for the Celery workers.")
                return
            for chunk_id in run.chunks.order_by("sequence").values_list("pk", flat=True):
                portfolio_chunk_process(chunk_id=chunk_id)
            run.refresh_from_db()
            self.stdout.write(f"Run {run.pk} {run.status}: {run.rows_done} re-scored, {run.rows_moved} moved.")
            if run.status == PortfolioRun.Status.FAILED:
                raise CommandError(f"Run {run.pk} failed: {run.error}")
        self.stdout.write(f"{Alert.objects.count() - alerts_before} new alert(s).")

    def _check_bodacc(self, target: Company | None) -> None:
        ids = [target.pk] if target is not None else list(monitored_companies().values_list("pk", flat=True))
        report = bodacc_watch.bodacc_check_companies(ids)
        self.stdout.write(
            f"BODACC: {report.companies} SIREN(s) checked, {len(report.recorded)} new notice(s) recorded, "
            f"{len(report.failed)} failed."
        )
        for siren, why in report.failed.items():
            self.stderr.write(f"  {siren}: {why}")
