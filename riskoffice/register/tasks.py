"""Placeholder: the scheduled retention task (filled by the register/retention work)."""

from celery import shared_task


@shared_task
def apply_retention() -> None:
    return None
