"""/healthz: the process answers. /readyz: database, broker and a current model, each reported."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef
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


# The segment a deployment scores by default (a dossier's default segment): always in use, so that a fresh
# deployment without any model is not ready.
DEFAULT_SEGMENT = "b2b"
# The applicant a dossier of each segment names (the dossier_applicant_matches_segment constraint): the foreign
# key's index finds "a dossier of this segment" without scanning the dossiers, which have no segment index.
APPLICANT_OF_SEGMENT = {"b2b": "company", "b2c": "individual"}


def segments_in_use() -> dict[str, bool]:
    """The segments in use, each with whether it has a champion, in one query (its subqueries run once each).

    The default segment is always in use. Another is in use when it has a current policy and either has ever had
    a champion (a champion or a retired model: a rollback or a retirement does not take it out of use) or has
    dossiers (applications arrive that need its model). The migrations give every segment a current policy, so a
    B2B-only deployment, with no B2C model and no B2C dossier, does not need a B2C champion to be ready. A segment
    without a current policy cannot score at all: ``_check_model`` reports the default segment in that case.
    """
    from dossiers.models import Dossier
    from scoring.models import ModelVersion, PolicyVersion

    champions = ModelVersion.objects.filter(segment=OuterRef("segment"))
    dossiers = {
        f"dossiers_{segment}": Exists(Dossier.objects.filter(segment=segment, **{f"{applicant}__isnull": False}))
        for segment, applicant in APPLICANT_OF_SEGMENT.items()
        if segment != DEFAULT_SEGMENT
    }
    current = (
        PolicyVersion.objects.filter(is_current=True)
        .order_by()
        .annotate(
            has_champion=Exists(champions.filter(status=ModelVersion.Status.CHAMPION)),
            had_champion=Exists(
                champions.filter(status__in=[ModelVersion.Status.CHAMPION, ModelVersion.Status.RETIRED])
            ),
            **dossiers,
        )
        .values("segment", "has_champion", "had_champion", *dossiers)
    )
    return {
        row["segment"]: row["has_champion"]
        for row in current
        if row["segment"] == DEFAULT_SEGMENT or row["had_champion"] or row.get(f"dossiers_{row['segment']}")
    }


def _check_model() -> str | None:
    in_use = segments_in_use()
    if DEFAULT_SEGMENT not in in_use:
        return f"model: no current policy for {DEFAULT_SEGMENT} (publish one on the policy page)"
    missing = [segment for segment, has_champion in sorted(in_use.items()) if not has_champion]
    if not missing:
        return None
    return "model: " + "; ".join(
        f"no champion for {segment} (run manage.py train_model --segment {segment})" for segment in missing
    )


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
