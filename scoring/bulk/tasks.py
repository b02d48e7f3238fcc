from celery import shared_task

from scoring.bulk import jobs


# Named as when it lived in scoring/tasks.py, so that messages already queued still run.
@shared_task(name="scoring.tasks.run_bulk_job")
def run_bulk_job(job_id: str) -> None:
    """Score an uploaded file; safe to run twice (a finished job is left alone)."""
    jobs.bulk_job_run(job_id=job_id)


@shared_task(name="scoring.tasks.requeue_stalled_bulk_jobs")
def requeue_stalled_bulk_jobs() -> None:
    """Periodic: a job still queued after SCORING_STALL_SECONDS is enqueued again (lost message), backing off."""
    jobs.bulk_jobs_requeue_stalled()
