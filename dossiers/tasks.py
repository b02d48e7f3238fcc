import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="dossiers.tasks.score_dossier", bind=True, max_retries=3)
def score_dossier(self, dossier_id: str) -> None:
    """Assess the dossier and store the assessment; safe to run twice (a scored dossier is left alone)."""
    try:
        services.dossier_score(dossier_id=dossier_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            logger.exception("Scoring dossier %s failed for good", dossier_id)
            services.dossier_fail(
                dossier_id=dossier_id,
                detail=f"Scoring failed after {self.max_retries + 1} attempts ({type(exc).__name__}).",
            )
            return
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1)) from exc


@shared_task(name="dossiers.tasks.requeue_stalled_dossiers")
def requeue_stalled_dossiers() -> None:
    """Periodic: a dossier still pending after SCORING_STALL_SECONDS is enqueued again (lost message), backing off."""
    services.dossiers_requeue_stalled()
