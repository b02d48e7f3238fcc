import logging

from celery import shared_task

from . import batch

logger = logging.getLogger(__name__)


@shared_task(name="dossiers.tasks.score_dossier", bind=True, max_retries=5)
def score_dossier(self, dossier_id: str) -> None:
    """Score a batch of pending dossiers, this one first if nobody holds it (dossiers/batch.py).

    Safe to run twice: a scored dossier is left alone. An error of the batch itself (the database
    gone) is retried; a dossier whose own assessment fails is retried alone by the batch.
    """
    try:
        batch.dossiers_score_batch(first=dossier_id)
    except Exception as exc:
        logger.warning("Scoring batch for %s failed: %r", dossier_id, exc)
        # Its claims lapse with their lease; the sweep or this retry takes them again.
        raise self.retry(exc=exc, countdown=5 * (self.request.retries + 1)) from exc


@shared_task(name="dossiers.tasks.score_pending", bind=True, max_retries=5)
def score_pending(self) -> None:
    """A wake-up: score a batch of the oldest pending dossiers (dossiers/batch.py); sent after new dossiers commit."""
    try:
        batch.scoring_woken()
    except Exception as exc:
        logger.warning("Scoring batch failed: %r", exc)
        raise self.retry(exc=exc, countdown=5 * (self.request.retries + 1)) from exc


@shared_task(name="dossiers.tasks.requeue_stalled_dossiers")
def requeue_stalled_dossiers() -> None:
    """Periodic: a pending dossier nobody holds that has not moved for SCORING_STALL_SECONDS is enqueued again."""
    batch.dossiers_requeue_stalled()
    batch.scoring_backlog_measure()
