from celery import shared_task
from django.core.management import call_command
from django.utils import timezone

from .idempotency import idempotency_keys_purge
from .models import Heartbeat


@shared_task
def heartbeat() -> None:
    """Periodic: proves to /readyz that beat schedules and workers consume."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"beat_at": timezone.now()})


@shared_task
def clear_expired_tokens() -> None:
    call_command("cleartokens")


@shared_task
def purge_expired_idempotency_keys() -> int:
    """Periodic: expired keys already count as absent; this keeps the table small."""
    return idempotency_keys_purge()
