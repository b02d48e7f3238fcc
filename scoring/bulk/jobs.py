"""Bulk scoring jobs: creating one from an upload, running it in a worker, finding the ones whose message was lost."""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from riskoffice.audit import Actor, audit_record
from riskoffice.queueing import enqueue, enqueue_on_commit, requeue_claim
from scoring.bulk import rows as bulk
from scoring.models import BulkScoringJob, Segment
from scoring.selectors import champion_for, policy_current

logger = logging.getLogger(__name__)
SYSTEM = Actor.of_system("bulk_scoring")

# --- writes ------------------------------------------------------------------------------


def bulk_job_create(*, user: AbstractBaseUser, segment: str, filename: str, data: bytes) -> BulkScoringJob:
    """Check an uploaded CSV, store it as a queued job and enqueue its scoring once committed."""
    from scoring.bulk.tasks import run_bulk_job

    if segment not in Segment.values:
        raise ValidationError({"segment": "Choose a segment."})
    if len(data) > bulk.MAX_BYTES:
        raise ValidationError(
            {
                "file": f"The file is {len(data) / 2**20:.1f} MB; the limit is "
                f"{bulk.MAX_BYTES // 2**20} MB. Split it into smaller files."
            }
        )
    model_version = champion_for(segment)
    if model_version is None:
        raise ValidationError(
            {
                "segment": f"No champion model for {Segment(segment).label} yet: "
                "train and promote one before scoring files."
            }
        )
    if policy_current(segment) is None:
        raise ValidationError({"segment": f"No current decision policy for {Segment(segment).label}."})
    try:
        csv_file = bulk.csv_read(data, max_rows=bulk.MAX_ROWS)
        bulk.columns_check(csv_file, model_version.feature_names)
    except bulk.CsvInputError as exc:
        raise ValidationError({"file": str(exc)}) from None

    with transaction.atomic():
        job = BulkScoringJob.objects.create(
            segment=segment,
            filename=_clean_filename(filename),
            input_csv=data,
            rows_total=len(csv_file.rows),
            model_version=model_version,
            created_by=user,
        )
        audit_record(
            actor=Actor(user=user),
            action="bulk_job.created",
            obj=job,
            after={
                "filename": job.filename,
                "segment": segment,
                "rows": job.rows_total,
                "bytes": len(data),
                "model_version": model_version.label,
            },
        )
        enqueue_on_commit(run_bulk_job, str(job.pk))
    return job


def bulk_job_run(*, job_id: Any) -> BulkScoringJob | None:
    """Score a queued job's file in chunks, moving its progress, and store the output. Safe to run twice.

    A finished job (done or failed) is left alone. A job found running is a message
    redelivered after its worker died, and starts again from the first row.
    """
    with transaction.atomic():
        job = BulkScoringJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in {BulkScoringJob.Status.DONE, BulkScoringJob.Status.FAILED}:
            return job
        job.status = BulkScoringJob.Status.RUNNING
        job.rows_done = 0
        job.save(update_fields=["status", "rows_done"])

    # Scored outside a transaction so that each chunk's progress is visible to the page polling it.
    policy = policy_current(job.segment)
    try:
        if job.model_version is None or policy is None:
            raise bulk.CsvInputError("No champion model or current policy for this segment.")
        csv_file = bulk.csv_read(bytes(job.input_csv))
        results = bulk.score_csv(
            csv_file,
            job.model_version,
            policy,
            on_progress=lambda done: BulkScoringJob.objects.filter(pk=job.pk).update(rows_done=done),
        )
        output = bulk.csv_write(csv_file, results)
    except bulk.CsvInputError as exc:
        return _bulk_job_fail(job, str(exc))
    except Exception as exc:  # shown on the job's page as well as logged
        logger.exception("Bulk job %s failed", job.pk)
        return _bulk_job_fail(job, f"Scoring failed ({type(exc).__name__}: {exc}).")

    with transaction.atomic():
        job.output_csv = output
        job.status = BulkScoringJob.Status.DONE
        job.rows_done = len(results)
        job.finished_at = timezone.now()
        job.save(update_fields=["output_csv", "status", "rows_done", "finished_at"])
        audit_record(
            actor=SYSTEM,
            action="bulk_job.finished",
            obj=job,
            before={"status": BulkScoringJob.Status.RUNNING},
            after={
                "status": job.status,
                **bulk.results_summary(results),
                "model_version": job.model_version.label,
                "policy_version": policy.label,
            },
        )
    return job


def _bulk_job_fail(job: BulkScoringJob, error: str) -> BulkScoringJob:
    with transaction.atomic():
        job.status = BulkScoringJob.Status.FAILED
        job.error = error[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        audit_record(
            actor=SYSTEM,
            action="bulk_job.failed",
            obj=job,
            before={"status": BulkScoringJob.Status.RUNNING},
            after={"status": job.status, "error": job.error},
        )
    return job


def bulk_jobs_requeue_stalled() -> list[Any]:
    """Enqueue again the queued jobs whose message was lost, backing off between tries."""
    from scoring.bulk.tasks import run_bulk_job

    claimed = requeue_claim(
        BulkScoringJob.objects.filter(status=BulkScoringJob.Status.QUEUED), waiting_since="created_at"
    )
    for job_id in claimed:
        if not enqueue(run_bulk_job, str(job_id)):
            break
    return claimed


def _clean_filename(filename: str) -> str:
    """The file's own name, without any folder a browser may send: it is shown and reused for the download."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return (name or "upload.csv")[:200]
