"""The daily drift check of each champion: PSI of its live scores and features against its training reference.

Once a day per champion (``DriftCheck`` is unique per model and day, so a second run the same day changes
nothing): the champion's scores of the last ``MODEL_DRIFT_WINDOW_DAYS`` days, their snapshots' features,
measured against the reference stored with the model when it was trained (``ModelVersion.reference``).
Above ``MODEL_PSI_ALERT`` a warning alert goes to senior analysts (the inbox and e-mail), in the check's
transaction, once per segment and day.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.models import Alert
from alerts.notify import alerts_email_on_commit
from scoring.models import DriftCheck, Score
from scoring.selectors import champion_for

logger = logging.getLogger(__name__)


def drift_window(day: date, window_days: int) -> tuple[datetime, datetime]:
    """The scores a check of ``day`` reads: the ``window_days`` local days ending with ``day`` itself."""
    end = timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
    return end - timedelta(days=window_days), end


def drift_check_run(*, segment: str, day: date | None = None) -> DriftCheck | None:
    """Measure the segment champion's drift for ``day`` (today), store it, alert above the threshold.

    None when there is nothing to check: no champion, or a champion without a training reference (a model
    registered before references were kept; retraining gives its successor one). A check already made for
    this model and day is returned as it is.
    """
    day = day or timezone.localdate()
    champion = champion_for(segment)
    if champion is None:
        return None
    if not champion.reference:
        logger.warning("Drift of %s not checked: the model has no training reference (retrain to get one)", champion)
        return None
    existing = DriftCheck.objects.filter(model_version=champion, day=day).first()
    if existing is not None:
        return existing
    window_days = settings.MODEL_DRIFT_WINDOW_DAYS
    start, end = drift_window(day, window_days)
    rows: list[dict[str, Any]] = []
    pds: list[float] = []
    scores = (
        Score.objects.filter(model_version=champion, created_at__gte=start, created_at__lt=end)
        .order_by()
        .values_list("probability_of_default", "snapshot__features")
    )
    for pd, features in scores.iterator(chunk_size=2000):
        pds.append(pd)
        rows.append(features)
    measured: dict[str, Any] = {}
    if len(rows) >= settings.MODEL_DRIFT_MIN_SCORES:
        from scoring.model.drift import drift_measure

        measured = drift_measure(reference=champion.reference, rows=rows, pds=pds)
    return _drift_store(champion=champion, day=day, window_days=window_days, compared=len(rows), measured=measured)


@transaction.atomic
def _drift_store(*, champion: Any, day: date, window_days: int, compared: int, measured: dict[str, Any]) -> DriftCheck:
    # The worst of the score's PSI and the features' (drift_measure's "max" is the features' alone).
    candidates = {**(measured.get("features") or {})}
    if measured.get("score") is not None:
        candidates["score"] = measured["score"]
    psi_max_of = max(candidates, key=lambda name: candidates[name]) if candidates else ""
    psi_max = candidates[psi_max_of] if candidates else None
    check, created = DriftCheck.objects.get_or_create(
        model_version=champion,
        day=day,
        defaults={
            "segment": champion.segment,
            "window_days": window_days,
            "scores_compared": compared,
            "psi_score": measured.get("score"),
            "psi_features": measured.get("features") or {},
            "psi_max": psi_max,
            "psi_max_of": psi_max_of,
        },
    )
    if created and psi_max is not None and psi_max > settings.MODEL_PSI_ALERT:
        alert, raised = Alert.objects.get_or_create(
            dedup_key=f"drift:{champion.segment}:{day.isoformat()}",
            defaults={"kind": Alert.Kind.MODEL_DRIFT, "severity": Alert.Severity.WARNING, "drift_check": check},
        )
        if raised:
            check.alerted = True
            check.save(update_fields=["alerted"])
            alerts_email_on_commit([alert.pk])
    return check
