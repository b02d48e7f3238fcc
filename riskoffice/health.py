"""/healthz: the process answers. /readyz: database, broker and a current model, each reported."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from .models import Heartbeat

HEARTBEAT_MAX_AGE = timedelta(minutes=2)


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"database: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    if not settings.BROKER_CONFIGURED:
        return None  # the embedded filesystem transport has no service to reach
    from riskoffice.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return f"broker: {type(exc).__name__}"
    return None


def _check_workers() -> str | None:
    """Workers consume: the heartbeat task that beat schedules every 30 s ran recently."""
    beat = Heartbeat.objects.filter(name="worker").first()
    if beat is None or timezone.now() - beat.beat_at > HEARTBEAT_MAX_AGE:
        return "workers: no task consumed in the last 2 minutes (is a worker with beat running?)"
    return None


def _check_model() -> str | None:
    from scoring.selectors import champion_for

    return None if champion_for("b2b") else "model: no champion model for b2b (run manage.py train_model)"


def _check_register() -> str | None:
    """Reported, never failing readiness: a gap in the GDPR register must not take production down."""
    from riskoffice.register.selectors import register_gaps

    try:
        gaps = len(register_gaps())
    except Exception as exc:  # noqa: BLE001 - reported, like the other checks, never a 500
        return f"register: not checked ({type(exc).__name__})"
    return f"{gaps} gap(s): run manage.py gdpr_register --check" if gaps else None


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database()}
    if checks["database"] is None:
        checks.update(broker=_check_broker(), workers=_check_workers(), model=_check_model())
    ready = all(problem is None for problem in checks.values())
    if checks["database"] is None:
        checks["register"] = _check_register()
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: problem or "ok" for name, problem in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
