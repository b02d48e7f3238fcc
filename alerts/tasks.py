from celery import shared_task

from . import services
from .monitoring_tasks import *  # noqa: F403 (monitoring's tasks, registered with Celery)
from .notify import email_alerts, email_unsent_alerts  # noqa: F401 (alert e-mails: registered with Celery)


@shared_task
def deliver_webhook(delivery_id: int) -> None:
    services.webhook_deliver(delivery_id=delivery_id)


@shared_task
def deliver_due_webhooks() -> None:
    """Periodic: retries live in the database (next_attempt_at), never in long broker countdowns."""
    for delivery_id in services.due_delivery_ids():
        deliver_webhook.delay(delivery_id)


@shared_task
def send_webhook_digests() -> None:
    """Daily (WEBHOOK_DIGEST_AT): each digest endpoint's held events, bundled into one delivery."""
    services.webhook_digests_send()
