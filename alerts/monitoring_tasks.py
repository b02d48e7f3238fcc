"""Celery tasks of monitoring (the daily re-score, the BODACC check, the re-score after a negative event)."""
