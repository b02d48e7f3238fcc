"""Portfolio reads: a run's progress and figures, a company's latest score."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Sum
from django.utils import timezone

from scoring.models import CompanyScore, PortfolioChunk, PortfolioRun

STAGES = ("read", "features", "predict", "explain", "write")


def company_latest_score(company_id: int) -> CompanyScore | None:
    """The company's score in its most recent run (cscore_company_latest_idx)."""
    return CompanyScore.objects.filter(company_id=company_id).order_by("-run_id").first()


def run_summary(run: PortfolioRun) -> dict[str, Any]:
    """A run's progress and figures: wall time, rows/s, seconds per stage, peak memory per worker process.

    Stage seconds are summed over the chunks (worker time, so they add up to more than the wall time
    when several workers run at once). Peak RSS is the largest ``ru_maxrss`` a worker process reported.
    """
    run.refresh_from_db()
    chunks = PortfolioChunk.objects.filter(run=run)
    done = chunks.filter(status=PortfolioChunk.Status.DONE)
    end = run.finished_at or timezone.now()
    wall = max((end - run.started_at).total_seconds(), 1e-9)
    stages = dict.fromkeys(STAGES, 0.0)
    for timings in done.values_list("timings", flat=True):
        for stage, seconds in (timings or {}).items():
            stages[stage] = stages.get(stage, 0.0) + float(seconds)
    workers = [
        {"worker": row["worker"], "chunks": row["chunks"], "peak_rss_mb": round((row["peak"] or 0) / 1024, 1)}
        for row in done.values("worker").annotate(chunks=Count("pk"), peak=Max("peak_rss_kb")).order_by("worker")
    ]
    retried = list(chunks.filter(attempts__gt=1).order_by("sequence").values("sequence", "attempts", "worker"))
    return {
        "run": run.pk,
        "status": run.status,
        "error": run.error,
        "model_version": run.model_version.label,
        "companies": run.companies_total,
        "chunks": run.chunks_total,
        "chunks_done": run.chunks_done,
        "rows": run.rows_done,
        "moved": run.rows_moved,
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(run.rows_done / wall, 1),
        "stage_seconds": {stage: round(seconds, 2) for stage, seconds in stages.items()},
        "stage_rows_per_second": {
            stage: (round(run.rows_done / seconds, 1) if seconds else None) for stage, seconds in stages.items()
        },
        "workers": workers,
        "peak_rss_mb": max((w["peak_rss_mb"] for w in workers), default=0.0),
        "retried_chunks": retried,
        "attempts": chunks.aggregate(total=Sum("attempts"))["total"] or 0,
    }
