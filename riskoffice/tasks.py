from celery import shared_task
from django.core.management import call_command
from django.utils import timezone

from .models import Heartbeat


@shared_task
def heartbeat() -> None:
    """Periodic: proves to /readyz that beat schedules and workers consume."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"beat_at": timezone.now()})


@shared_task
def clear_expired_tokens() -> None:
    call_command("cleartokens")
