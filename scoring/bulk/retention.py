"""Bulk files expire: the partner's uploaded file and the scored file are emptied once old enough.

The job stays (its counts, its audit history); ``files_expired_at`` says when the files went, and the job's
page says so. Called by the daily retention task (riskoffice.register.tasks.apply_retention).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from riskoffice.audit import Actor, audit_record
from scoring.models import BulkScoringJob

SYSTEM = Actor(system="retention")
BATCH = 200


def expire_bulk_files(*, older_than: datetime | timedelta, dry_run: bool) -> int:
    """Empty the files of every finished or failed job created before ``older_than`` (a date-time, or an age).

    Returns how many jobs had files to expire (with ``dry_run``, how many would). Queued and running jobs are
    never touched. Idempotent: a job whose files already expired is not counted again.
    """
    cutoff = timezone.now() - older_than if isinstance(older_than, timedelta) else older_than
    jobs = BulkScoringJob.objects.filter(
        created_at__lt=cutoff,
        files_expired_at__isnull=True,
        status__in=[BulkScoringJob.Status.DONE, BulkScoringJob.Status.FAILED],
    )
    if dry_run:
        return jobs.count()
    expired = 0
    while ids := list(jobs.order_by("pk").values_list("pk", flat=True)[:BATCH]):
        with transaction.atomic():
            now = timezone.now()
            for job in (
                BulkScoringJob.objects.select_for_update()
                .filter(pk__in=ids, files_expired_at__isnull=True)
                .only("pk", "created_at")
            ):
                BulkScoringJob.objects.filter(pk=job.pk).update(input_csv=None, output_csv=None, files_expired_at=now)
                audit_record(
                    actor=SYSTEM,
                    action="bulk_job.files_expired",
                    obj=job,
                    after={"files_expired_at": now.isoformat(), "created_at": job.created_at.isoformat()},
                )
                expired += 1
    return expired
