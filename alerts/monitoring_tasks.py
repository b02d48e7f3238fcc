"""Celery tasks of monitoring (the daily re-score, the BODACC check, the re-score after a negative event).

Thin and id-based; every one is safe to run twice.
"""

from celery import shared_task


@shared_task(name="alerts.monitoring.daily_rescore")
def daily_rescore() -> None:
    """Beat, daily (MONITORING_DAILY_AT): re-score the monitored companies; skipped while a run is going."""
    from . import monitoring

    monitoring.monitoring_daily()


@shared_task(name="alerts.monitoring.rescore_after_event")
def rescore_after_event(event_id: int) -> None:
    """Re-score the company of a new negative event, at once (its own run: scope event)."""
    from . import monitoring

    monitoring.event_rescore(event_id=event_id)


@shared_task(name="alerts.monitoring.requeue_event_rescores")
def requeue_event_rescores() -> None:
    """Periodic: re-send the re-scores of recent negative events whose message was lost."""
    from . import monitoring

    monitoring.event_rescores_requeue()


@shared_task(name="alerts.monitoring.bodacc_check")
def bodacc_check() -> None:
    """Beat, daily (MONITORING_BODACC_AT): one batch task per MONITORING_BODACC_BATCH monitored companies."""
    from . import bodacc_watch

    bodacc_watch.bodacc_check_enqueue()


@shared_task(name="alerts.monitoring.bodacc_check_batch")
def bodacc_check_batch(company_ids: list[int]) -> None:
    """Read BODACC for these companies, one SIREN and one transaction at a time."""
    from . import bodacc_watch

    bodacc_watch.bodacc_check_companies(company_ids)
