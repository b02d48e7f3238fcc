import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=3)
def score_dossier(self, dossier_id: str) -> None:
    from scoring.services import score_compute, score_fail

    try:
        score_compute(dossier_id=dossier_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("Scoring dossier %s failed for good", dossier_id)
            score_fail(dossier_id, f"Scoring failed after {self.max_retries + 1} attempts ({type(exc).__name__}).")
            return
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1)) from exc


@shared_task
def requeue_stalled_dossiers() -> None:
    """Periodic: a dossier still pending after SCORING_STALL_SECONDS is enqueued again (lost message)."""
    for dossier_id in services.stalled_dossier_ids():
        score_dossier.delay(str(dossier_id))
