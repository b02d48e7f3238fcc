"""The scheduled retention run (beat, daily): every active data category's period applied."""

from celery import shared_task

from .retention import retention_apply


@shared_task
def apply_retention() -> int:
    """Periodic and safe to run twice (a second run finds nothing left to do); the categories that failed."""
    return sum(1 for report in retention_apply() if report.error)
