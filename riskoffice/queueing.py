"""Enqueuing work so that nothing is lost when the broker is down, and finding what was lost.

The row a task works on is written first; its message is sent after commit. A
message that never reached the broker (down at commit time) or was lost later
leaves the row waiting, and a periodic sweep enqueues it again with an
exponential back-off (``SCORING_STALL_SECONDS`` doubling, capped at
``REQUEUE_MAX_SECONDS``), so a row the workers cannot finish is not sent every
minute forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue(task: Any, *args: Any, countdown: float | None = None) -> bool:
    """Send ``task`` (after ``countdown`` seconds); a broker that cannot be reached is logged, not raised.

    The sweep sends it later. Countdowns stay short (seconds): Redis redelivers any message
    held past its visibility timeout, so long delays belong in the database.
    """
    try:
        if countdown is None:
            task.delay(*args)
        else:
            task.apply_async(args, countdown=countdown)
    except (OperationalError, ConnectionError, OSError) as exc:
        logger.warning("Broker unreachable, %s%r left to the sweep: %s", task.name, args, exc)
        return False
    return True


def enqueue_on_commit(task: Any, *args: Any) -> None:
    transaction.on_commit(lambda: enqueue(task, *args))


def requeue_claim(queryset: QuerySet, *, waiting_since: str, limit: int = 500) -> list[Any]:
    """Ids of rows in ``queryset`` that have waited too long, each claimed for one more attempt.

    ``waiting_since`` names the field that says when the row last moved. A row is due
    when it has not moved for ``SCORING_STALL_SECONDS`` and its back-off has passed;
    claiming it pushes its ``requeue_at`` further out (a conditional update, so two
    sweeps never claim the same row twice).
    """
    now = timezone.now()
    stall = settings.SCORING_STALL_SECONDS
    due = (
        queryset.filter(**{f"{waiting_since}__lt": now - timedelta(seconds=stall)})
        .filter(Q(requeue_at__isnull=True) | Q(requeue_at__lte=now))
        .order_by(waiting_since)
        .values_list("pk", "requeues")[:limit]
    )
    claimed = []
    for pk, requeues in due:
        wait = min(stall * 2 ** min(requeues, 20), settings.REQUEUE_MAX_SECONDS)
        updated = queryset.model.objects.filter(pk=pk, requeues=requeues).update(
            requeues=requeues + 1, requeue_at=now + timedelta(seconds=wait)
        )
        if updated:
            claimed.append(pk)
    return claimed
