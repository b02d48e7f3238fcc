"""Start a portfolio re-score run on the Celery workers and, with --wait, follow it to the end."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scoring.models import PortfolioRun
from scoring.portfolio.runs import PortfolioUnavailable, portfolio_run_start
from scoring.portfolio.selectors import STAGES, run_summary


class Command(BaseCommand):
    help = (
        "Re-score every company with a scored dossier with the B2B champion: chunks of company ids are enqueued "
        "for the Celery workers (run `celery -A riskoffice worker`). --wait reports progress, the seconds of each "
        "stage (read, features, predict, explain, write), rows/s and the peak memory of each worker process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=None, help="Companies per chunk (PORTFOLIO_CHUNK_SIZE).")
        parser.add_argument("--wait", action="store_true", help="Follow the run until it is done or failed.")
        parser.add_argument("--timeout", type=float, default=None, help="With --wait: give up after this many seconds.")
        parser.add_argument("--json", action="store_true", help="Print the run's figures as one JSON object.")

    def handle(self, *args, chunk_size: int | None, wait: bool, timeout: float | None, **options) -> None:
        as_json = options["json"]
        try:
            run = portfolio_run_start(chunk_size=chunk_size, system="command:rescore_portfolio")
        except PortfolioUnavailable as exc:
            raise CommandError(str(exc)) from None
        if not as_json:
            self.stdout.write(
                f"Run {run.pk}: {run.companies_total:,} companies in {run.chunks_total} chunks of up to "
                f"{run.chunk_size:,}, with {run.model_version.label}."
            )
        if wait:
            self._follow(run, timeout=timeout, quiet=as_json)
        summary = run_summary(run)
        if as_json:
            self.stdout.write(json.dumps(summary))
        elif wait:
            self._report(summary)
        else:
            self.stdout.write("Enqueued; follow it with --wait next time, or in the run's row.")
        if summary["status"] == PortfolioRun.Status.FAILED:
            raise CommandError(f"Run {run.pk} failed: {summary['error']}")

    def _follow(self, run: PortfolioRun, *, timeout: float | None, quiet: bool) -> None:
        started = time.monotonic()
        last_line = 0.0
        while True:
            run.refresh_from_db(fields=["status", "chunks_done", "rows_done"])
            if run.status != PortfolioRun.Status.RUNNING:
                return
            elapsed = time.monotonic() - started
            if timeout is not None and elapsed > timeout:
                raise CommandError(f"Run {run.pk} still running after {timeout:.0f} s ({run.chunks_done} chunks done).")
            if not quiet and elapsed - last_line >= 5:
                last_line = elapsed
                self.stdout.write(
                    f"  {run.chunks_done}/{run.chunks_total} chunks, {run.rows_done:,} companies, "
                    f"{run.rows_done / max(elapsed, 1e-9):,.0f}/s"
                )
            time.sleep(0.5)

    def _report(self, summary: dict[str, Any]) -> None:
        self.stdout.write(
            f"Run {summary['run']} {summary['status']}: {summary['rows']:,} companies re-scored "
            f"({summary['moved']:,} moved and explained) in {summary['wall_seconds']:.1f} s, "
            f"{summary['rows_per_second']:,.0f} companies/s."
        )
        self.stdout.write("Stage seconds (summed over the workers):")
        for stage in STAGES:
            seconds = summary["stage_seconds"][stage]
            rate = summary["stage_rows_per_second"][stage]
            self.stdout.write(f"  {stage:<9}{seconds:>9.2f} s" + (f"  {rate:>12,.0f} rows/s" if rate else ""))
        self.stdout.write("Worker processes:")
        for worker in summary["workers"]:
            self.stdout.write(
                f"  {worker['worker']}: {worker['chunks']} chunks, peak RSS {worker['peak_rss_mb']:.0f} MB"
            )
        for chunk in summary["retried_chunks"]:
            self.stdout.write(f"  chunk {chunk['sequence']} took {chunk['attempts']} attempts")
        self.stdout.write(self.style.SUCCESS("Done."))
