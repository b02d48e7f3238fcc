"""Shadow scoring: a segment's challenger scores the live dossiers too, next to the champion, and decides nothing.

When scores are stored (``dossiers.batch``), their ids are handed after commit to one task per batch,
which scores each with its segment's challenger on the very features the champion saw (the score's
snapshot), and records the PD, points, band, and the decision the live score's policy version would have
given. The dossier, its decision and what partners see are never touched, and a failure here never
holds up scoring: the hook swallows and logs its errors, and the task runs after the scores are committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Avg, Count, F, Q

from riskoffice.queueing import enqueue
from scoring.model import engine
from scoring.models import ModelVersion, Score, ShadowScore
from scoring.policy.apply import policy_apply
from scoring.policy.scale import band_for, score_for
from scoring.selectors import challenger_for

logger = logging.getLogger(__name__)


def shadow_scores_enqueue(scores: Iterable[tuple[str, Any]]) -> None:
    """After the caller commits, shadow-score these ``(segment, score id)`` with their segments' challengers.

    One query (is there a challenger for these segments?) and at most one task per call; never raises.
    """
    try:
        by_segment: dict[str, list[Any]] = {}
        for segment, score_id in scores:
            by_segment.setdefault(segment, []).append(score_id)
        if not by_segment:
            return
        shadowed = set(
            ModelVersion.objects.filter(status=ModelVersion.Status.CHALLENGER, segment__in=list(by_segment))
            .order_by()
            .values_list("segment", flat=True)
        )
        ids = [score_id for segment in sorted(shadowed) for score_id in by_segment[segment]]
        if ids:
            from scoring.model.tasks import shadow_score_many  # the tasks module imports this one

            # Robust: an error sending the message after commit is logged, never raised to the scorer.
            transaction.on_commit(lambda: enqueue(shadow_score_many, ids), robust=True)
    except Exception:  # shadow scoring must never hold up live scoring
        logger.exception("Shadow scoring could not be enqueued")


def shadow_scores_record(*, score_ids: list[Any]) -> list[ShadowScore]:
    """Each score's shadow by its segment's current challenger; a score already shadowed by it is skipped.

    Safe twice: the (score, model) pair is unique in the database and conflicts are ignored.
    """
    scores = list(
        Score.objects.filter(pk__in=score_ids)
        .select_related("snapshot", "policy_version", "dossier")
        .defer("contributions", "factors", "rules_fired", "data_flags", "snapshot__provenance")
        .order_by("pk")
    )
    created: list[ShadowScore] = []
    for segment in sorted({score.dossier.segment for score in scores}):
        challenger = challenger_for(segment)
        if challenger is None:
            continue
        done = set(
            ShadowScore.objects.filter(model_version=challenger, score_id__in=[s.pk for s in scores]).values_list(
                "score_id", flat=True
            )
        )
        todo = [s for s in scores if s.dossier.segment == segment and s.pk not in done]
        if not todo:
            continue
        loaded = engine.model_load(challenger)
        features = [dict(s.snapshot.features) for s in todo]
        # The PD as the live path computes it (base value + exact contributions), so the same model in the
        # shadow gives the very same PD, points and decision: only a different model makes them differ.
        pds = [explanation.probability_of_default for explanation in engine.explain_many(loaded, features)]
        rows = []
        for score, row, pd in zip(todo, features, pds, strict=True):
            result = policy_apply(
                score.policy_version,
                pd=pd,
                features=row,
                requested_amount=float(score.dossier.requested_amount),
                naf_code=score.dossier.naf_code,
            )
            rows.append(
                ShadowScore(
                    score=score,
                    model_version=challenger,
                    probability_of_default=pd,
                    score_value=score_for(pd, segment),
                    band=band_for(pd),
                    decision=result.decision,
                )
            )
        created += ShadowScore.objects.bulk_create(rows, ignore_conflicts=True)
    return created


def shadow_summary(model_version: ModelVersion) -> dict[str, Any]:
    """How a challenger's shadow scores compare with the champion's live ones, in three queries.

    ``n``; ``agreement`` (the share of scores where both give the same decision, None without scores);
    ``crosstab`` (champion decision × challenger decision counts); the mean PD of each; the score
    difference (challenger − champion points): median, 90th percentile, and 90th percentile of its size.
    """
    shadows = ShadowScore.objects.filter(model_version=model_version).order_by()
    totals = shadows.aggregate(
        n=Count("pk"),
        agreed=Count("pk", filter=Q(decision=F("score__decision"))),
        champion_mean_pd=Avg("score__probability_of_default"),
        challenger_mean_pd=Avg("probability_of_default"),
    )
    crosstab = [
        {"champion": row["score__decision"], "challenger": row["decision"], "n": row["n"]}
        for row in shadows.values("score__decision", "decision")
        .annotate(n=Count("pk"))
        .order_by("score__decision", "decision")
    ]
    differences = np.array(
        list(shadows.annotate(d=F("score_value") - F("score__score")).values_list("d", flat=True)), dtype=float
    )
    n = totals["n"]
    return {
        "model": model_version.label,
        "n": n,
        "agreed": totals["agreed"],
        "agreement": totals["agreed"] / n if n else None,
        "crosstab": crosstab,
        "champion_mean_pd": totals["champion_mean_pd"],
        "challenger_mean_pd": totals["challenger_mean_pd"],
        "score_difference": {
            "p50": float(np.percentile(differences, 50)) if n else None,
            "p90": float(np.percentile(differences, 90)) if n else None,
            "abs_p90": float(np.percentile(np.abs(differences), 90)) if n else None,
        },
    }
