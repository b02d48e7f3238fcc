from celery import shared_task

from .services_bulk import bulk_job_run


@shared_task
def run_bulk_job(job_id: str) -> None:
    """Score an uploaded file; safe to run twice (a finished job is left alone)."""
    bulk_job_run(job_id=job_id)
