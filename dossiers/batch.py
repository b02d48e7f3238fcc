"""Scoring pending dossiers in batches: claim many, assess them as one matrix, store them in one transaction.

A scorer **claims** pending dossiers before it works on them: a short transaction
sets ``claimed_until`` (a lease of ``SCORING_LEASE_SECONDS``) on up to
``SCORING_BATCH_SIZE`` of them — the one its message named first, then the oldest
— skipping rows another scorer is claiming (``SKIP LOCKED`` on PostgreSQL; SQLite
serialises writers anyway). It then assesses them outside any transaction (the
sources may call HTTP services) and stores every assessment in **one**
transaction: snapshots, scores, dossier states, audit rows and webhook deliveries
are bulk inserts, a handful of statements whatever the batch's size.

The guarantees of the single-dossier path hold for each dossier of a batch:

- **one score per pending dossier**: the store re-reads the dossiers under row locks
  and writes only for those still pending, so a duplicate batch writes nothing;
- **versions**: a dossier's first score is version 1; a dossier put back to pending
  (a challenge or a retry, ``dossiers.challenge``) gets the next version, the trigger
  that asked for it and the challenge it answers, read in the same locked query;
- **audit row and event in the same transaction** as the score;
- **nothing lost when a scorer dies**: its lease passes and the sweep
  (``requeue_stalled_dossiers``, every ``SCORING_REQUEUE_INTERVAL_SECONDS``) wakes
  a worker for it once it has not moved for ``SCORING_STALL_SECONDS``;
- **a dossier that cannot be assessed** does not fail its batch: its lease is
  shortened to a back-off and it is tried again alone, until
  ``SCORING_MAX_ATTEMPTS`` attempts make it failed.

Messages are **wake-ups**, not assignments. A new dossier sends ``score_pending``
only if no wake-up is already outstanding (``scoring_wake_up``: an atomic
``cache.add`` of a flag the woken worker clears *before* it claims, so a dossier
committed after that claim sends a new one and none is stranded). A worker takes
the oldest pending dossiers, and when its batch is full it wakes another worker
before scoring, so every worker process joins in under load while a quiet system
sends about one message per batch, not one per dossier; the sweep wakes workers the
same way. ``score_dossier(id)`` (a retry after a back-off) claims its dossier first,
then others.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from alerts.services import events_publish
from riskoffice.audit import Actor, audit_record, audit_records
from riskoffice.queueing import enqueue
from riskoffice.subjects.review import human_reviews_prefetch
from scoring.assessment import Assessment, AssessmentUnavailable, assess_many
from scoring.model.shadow import shadow_scores_enqueue
from scoring.models import FeatureSnapshot, Score

from .models import Challenge, Company, Dossier
from .representation import score_representation

logger = logging.getLogger(__name__)
SYSTEM = Actor.of_system("scoring")


@dataclass
class BatchResult:
    """What one batch did: the dossiers it claimed, scored, failed and left to retry."""

    claimed: list[Any] = field(default_factory=list)
    scored: list[Any] = field(default_factory=list)
    stored: dict[Any, tuple[Dossier, Score]] = field(default_factory=dict)  # each scored dossier and its score
    failed: list[Any] = field(default_factory=list)
    retrying: list[Any] = field(default_factory=list)


def lease_until() -> Any:
    return timezone.now() + timedelta(seconds=settings.SCORING_LEASE_SECONDS)


def dossiers_claimable() -> Any:
    """Pending dossiers no scorer holds: never claimed, or whose scorer's lease has passed."""
    now = timezone.now()
    return Dossier.objects.filter(status=Dossier.Status.PENDING).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


@transaction.atomic
def dossiers_claim(*, first: Any = None, limit: int | None = None, others: bool = True) -> list[Any]:
    """Claim up to ``limit`` claimable dossiers, ``first`` before the oldest; returns their ids.

    Rows another transaction is claiming are skipped, not waited for; claiming counts an attempt.
    ``others=False`` claims ``first`` alone (or nothing).
    """
    limit = limit or settings.SCORING_BATCH_SIZE
    claimable = dossiers_claimable().select_for_update(skip_locked=True)
    ids: list[Any] = []
    if first is not None:
        ids = list(claimable.filter(pk=first).values_list("pk", flat=True))
    if others and len(ids) < limit:
        oldest = claimable.exclude(pk__in=ids).order_by("created_at").values_list("pk", flat=True)[: limit - len(ids)]
        ids += list(oldest)
    if ids:
        Dossier.objects.filter(pk__in=ids).update(
            claimed_until=lease_until(), attempts=F("attempts") + 1, updated_at=timezone.now()
        )
    return ids


WAKE_UP_KEY = "scoring:wake-up"


def scoring_wake_up() -> None:
    """After a dossier commits: send a worker to score pending dossiers, unless one is already on its way."""
    from .tasks import score_pending

    if cache.add(WAKE_UP_KEY, 1, timeout=settings.SCORING_WAKE_UP_SECONDS) and not enqueue(score_pending):
        cache.delete(WAKE_UP_KEY)  # no message left: the next dossier (or the sweep) tries again


def scoring_woken() -> BatchResult:
    """A worker's wake-up: clear the flag first (a later dossier must send a new one), then score a batch.

    A full batch means more may be waiting: another worker is woken before this one starts scoring.
    """
    cache.delete(WAKE_UP_KEY)
    ids = dossiers_claim()
    if len(ids) >= settings.SCORING_BATCH_SIZE:
        scoring_wake_up()
    result = dossiers_score_claimed(ids)
    result.claimed = ids
    return result


def dossiers_score_batch(*, first: Any = None, limit: int | None = None) -> BatchResult:
    """Claim, assess and store a batch of pending dossiers (``first`` among them if it is claimable)."""
    ids = dossiers_claim(first=first, limit=limit)
    result = dossiers_score_claimed(ids)
    result.claimed = ids
    return result


def dossiers_score_claimed(ids: list[Any]) -> BatchResult:
    """Assess and store dossiers this scorer has claimed; each one that cannot be assessed is handled alone."""
    result = BatchResult()
    if not ids:
        return result
    dossiers = list(Dossier.objects.select_related("company", "individual", "partner").filter(pk__in=ids))
    assessed = assess_many(dossiers)
    ready = {pk: a for pk, a in assessed.items() if isinstance(a, Assessment)}
    result.stored = {dossier.pk: (dossier, score) for dossier, score in dossiers_record_assessments(ready)}
    result.scored = list(result.stored)
    for dossier in dossiers:
        error = assessed.get(dossier.pk)
        if isinstance(error, AssessmentUnavailable):
            dossier_fail(dossier_id=dossier.pk, detail=str(error))
            result.failed.append(dossier.pk)
        elif isinstance(error, Exception):
            if dossier_retry_later(dossier, error):
                result.retrying.append(dossier.pk)
            else:
                result.failed.append(dossier.pk)
    return result


def dossier_retry_later(dossier: Dossier, error: Exception) -> bool:
    """A dossier whose assessment raised: tried again after a back-off, or failed after its last attempt.

    Returns whether it will be tried again.
    """
    from .tasks import score_dossier

    if dossier.attempts >= settings.SCORING_MAX_ATTEMPTS:
        logger.error("Scoring dossier %s failed for good: %r", dossier.pk, error)
        dossier_fail(
            dossier_id=dossier.pk,
            detail=f"Scoring failed after {dossier.attempts} attempts ({type(error).__name__}).",
        )
        return False
    delay = 10 * dossier.attempts
    logger.warning(
        "Scoring dossier %s failed (attempt %s), again in %s s: %r", dossier.pk, dossier.attempts, delay, error
    )
    # Held until the back-off has passed, so that no batch takes it earlier; then its own message comes.
    Dossier.objects.filter(pk=dossier.pk, status=Dossier.Status.PENDING).update(
        claimed_until=timezone.now() + timedelta(seconds=delay)
    )
    enqueue(score_dossier, str(dossier.pk), countdown=delay)
    return True


@transaction.atomic
def dossiers_record_assessments(assessments: dict[Any, Assessment]) -> list[tuple[Dossier, Score]]:
    """Store each assessment as its dossier's score, pending → scored, with audit rows and events; (dossier, score).

    Under row locks, only dossiers still pending are written, so a duplicate batch writes nothing.
    Each score is the dossier's next version; a re-score (a challenge's or a retry's) replaces the
    decision in force with its recommendation.
    """
    if not assessments:
        return []
    dossiers = list(
        Dossier.objects.select_for_update(of=("self",))
        .select_related("company", "individual", "partner", "outcome")  # the event's body reads the outcome
        .prefetch_related(human_reviews_prefetch())  # and the human review, if one was asked for
        .annotate(**_versioning())
        .filter(pk__in=list(assessments), status=Dossier.Status.PENDING)
        .order_by("pk")  # one lock order for every batch: two batches never deadlock
    )
    if not dossiers:
        return []
    _companies_identify(dossiers, assessments)
    scores = _scores_store(dossiers, assessments)
    befores = [
        {"status": d.status, "decision": d.decision, "decision_overridden": d.decision_overridden} for d in dossiers
    ]
    for dossier, score in zip(dossiers, scores, strict=True):
        _dossier_mark_scored(dossier, assessments[dossier.pk], score)
    _dossiers_update_scored(dossiers)
    audit_records(
        [
            (
                SYSTEM,
                "dossier.scored" if score.trigger == Score.Trigger.APPLICATION else "dossier.rescored",
                dossier,
                before,
                _scored_audit(dossier, score, assessments[dossier.pk]),
            )
            for dossier, score, before in zip(dossiers, scores, befores, strict=True)
        ]
    )
    events_publish(
        [
            (dossier.partner_id, "score.completed", score_representation(dossier, score))
            for dossier, score in zip(dossiers, scores, strict=True)
            if dossier.partner_id
        ]
    )
    # The segment's challenger, if any, scores them too after commit (never changes the decision).
    shadow_scores_enqueue((dossier.segment, score.pk) for dossier, score in zip(dossiers, scores, strict=True))
    return list(zip(dossiers, scores, strict=True))


def _versioning() -> dict[str, Any]:
    """Per dossier, read with its row lock: its last score version, and the newest challenge no score answers yet."""
    return {
        "last_score_version": Subquery(
            Score.objects.filter(dossier=OuterRef("pk")).order_by("-version").values("version")[:1]
        ),
        "open_challenge_id": Subquery(
            Challenge.objects.filter(dossier=OuterRef("pk"), scores__isnull=True)
            .order_by("-created_at", "-pk")
            .values("pk")[:1]
        ),
    }


def _trigger(dossier: Dossier) -> str:
    """Why this score: a challenge not answered yet, a retry (a pending dossier still carrying the reason it
    failed, ``dossiers.challenge.dossier_retry``), a re-score of a scored one, else the application."""
    if dossier.status_detail:
        return Score.Trigger.RETRY
    if dossier.open_challenge_id is not None:
        return Score.Trigger.CHALLENGE
    return Score.Trigger.APPLICATION if dossier.last_score_version is None else Score.Trigger.RETRY


def _companies_identify(dossiers: list[Dossier], assessments: dict[Any, Assessment]) -> None:
    """The registry's name and NAF code on the shared Company rows (never a sandbox's invented identity)."""
    changed = {}
    for dossier in dossiers:
        identity = assessments[dossier.pk].registry_identity
        if dossier.company_id and identity:
            company = dossier.company
            company.name = identity.get("name", company.name)
            company.naf_code = identity.get("naf_code", company.naf_code)
            changed[company.pk] = company
    if changed:
        Company.objects.bulk_update(list(changed.values()), ["name", "naf_code"])


def _scores_store(dossiers: list[Dossier], assessments: dict[Any, Assessment]) -> list[Score]:
    """The assessments' rows: the features as collected, and the scores with their versions and reasons."""
    now = timezone.now()
    snapshots = FeatureSnapshot.objects.bulk_create(
        [
            FeatureSnapshot(
                dossier=dossier,
                features=assessments[dossier.pk].features,
                provenance=assessments[dossier.pk].provenance,
                collected_at=now,
            )
            for dossier in dossiers
        ]
    )
    return Score.objects.bulk_create(
        [
            _score_row(dossier, snapshot, assessments[dossier.pk])
            for dossier, snapshot in zip(dossiers, snapshots, strict=True)
        ]
    )


def _score_row(dossier: Dossier, snapshot: FeatureSnapshot, assessment: Assessment) -> Score:
    result = assessment.policy_result
    return Score(
        version=(dossier.last_score_version or 0) + 1,
        trigger=_trigger(dossier),
        challenge_id=dossier.open_challenge_id,
        dossier=dossier,
        snapshot=snapshot,
        model_version=assessment.model_version,
        policy_version=assessment.policy,
        probability_of_default=assessment.probability_of_default,
        score=assessment.score,
        band=assessment.band,
        decision=result.decision,
        recommended_limit=result.recommended_limit,
        rules_fired=result.rules_fired,
        base_value=assessment.explanation.base_value,
        contributions=assessment.explanation.contributions,
        factors=assessment.factors,
        data_flags=assessment.data_flags,
    )


def _dossier_mark_scored(dossier: Dossier, assessment: Assessment, score: Score) -> None:
    dossier.status = Dossier.Status.SCORED
    dossier.status_detail = ""
    dossier.applicant_name = (assessment.applicant_identity.get("name") or "")[:200]
    dossier.naf_code = (assessment.applicant_identity.get("naf_code") or "")[:6]
    if score.trigger != Score.Trigger.APPLICATION:
        dossier.decision_overridden = False  # a re-score's recommendation replaces the decision in force
    if not dossier.decision_overridden:
        dossier.decision = assessment.policy_result.decision
    dossier.claimed_until = None
    dossier.updated_at = timezone.now()  # bulk_update does not apply auto_now


def _dossiers_update_scored(dossiers: list[Dossier]) -> None:
    """The batch's dossiers marked scored in one UPDATE joined to a VALUES list of what differs per dossier.

    Django's ``bulk_update`` writes a CASE per field and row, and building it was a third of a
    worker's time (py-spy, 250-dossier batches). Portable: PostgreSQL and SQLite (3.33+) both
    know ``UPDATE … FROM (VALUES …)`` and name the columns column1, column2….
    """
    table = connection.ops.quote_name(Dossier._meta.db_table)
    pk = Dossier._meta.pk
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(dossiers))
    params: list[Any] = [
        value
        for d in dossiers
        for value in (
            pk.get_db_prep_value(d.pk, connection),
            d.decision,
            d.applicant_name,
            d.naf_code,
            d.decision_overridden,
        )
    ]
    updated_at = Dossier._meta.get_field("updated_at").get_db_prep_value(dossiers[0].updated_at, connection)
    sql = (
        f"UPDATE {table} SET status = %s, status_detail = '', claimed_until = NULL, updated_at = %s, "  # noqa: S608
        "decision = v.column2, applicant_name = v.column3, naf_code = v.column4, decision_overridden = v.column5 "
        f"FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Dossier.Status.SCORED, updated_at, *params])


def _scored_audit(dossier: Dossier, score: Score, assessment: Assessment) -> dict[str, Any]:
    return {
        "status": dossier.status,
        "decision": dossier.decision,
        "score_id": score.pk,
        "score_version": score.version,
        "score_trigger": score.trigger,
        "challenge_id": score.challenge_id,
        "model_version": assessment.model_version.label,
        "policy_version": assessment.policy.label,
        "rules_fired": assessment.policy_result.rules_fired,
    }


@transaction.atomic
def dossier_fail(*, dossier_id: Any, detail: str) -> None:
    """A pending dossier that cannot be scored becomes failed, with the reason the partner and analysts read."""
    dossier = Dossier.objects.select_for_update().get(pk=dossier_id)
    if dossier.status != Dossier.Status.PENDING:
        return
    dossier.status = Dossier.Status.FAILED
    dossier.status_detail = detail[:300]
    dossier.claimed_until = None
    dossier.save(update_fields=["status", "status_detail", "claimed_until", "updated_at"])
    audit_record(actor=SYSTEM, action="dossier.scoring_failed", obj=dossier, after={"detail": detail})


# --- back-pressure ------------------------------------------------------------------------------

BACKLOG_CACHE_KEY = "scoring:backlog-seconds"


class ScoringBacklogFull(Exception):
    """The workers are behind: the API answers 503 with Retry-After rather than queue more than they can score."""

    problem_status = 503
    problem_slug = "scoring-backlog"
    problem_title = "Scoring is behind"

    def __init__(self, *, backlog_seconds: int) -> None:
        self.retry_after = max(5, min(60, backlog_seconds // 2))
        self.detail = (
            f"The oldest score request not yet taken up has waited {backlog_seconds} s; new requests are refused "
            f"until the workers catch up. Retry after {self.retry_after} s (the request was not recorded)."
        )
        super().__init__(self.detail)


def scoring_backlog_measure() -> int:
    """How long the oldest pending dossier nobody holds has waited, in seconds; kept in the cache for the API.

    Beat's sweep measures it every SCORING_REQUEUE_INTERVAL_SECONDS; the figure expires after a few
    intervals, so admission never stays closed on a stale reading when beat stops.
    """
    oldest = dossiers_claimable().order_by("created_at").values_list("created_at", flat=True).first()
    seconds = int((timezone.now() - oldest).total_seconds()) if oldest else 0
    cache.set(BACKLOG_CACHE_KEY, seconds, timeout=3 * settings.SCORING_REQUEUE_INTERVAL_SECONDS)
    return seconds


def scoring_admission_check() -> None:
    """Refuse a new score request while the backlog is older than SCORING_BACKLOG_MAX_SECONDS (one cache read)."""
    backlog = cache.get(BACKLOG_CACHE_KEY) or 0
    if backlog > settings.SCORING_BACKLOG_MAX_SECONDS:
        raise ScoringBacklogFull(backlog_seconds=backlog)


def dossiers_requeue_stalled() -> list[Any]:
    """Wake workers for the pending dossiers nobody holds that have not moved for a while (message lost, scorer dead).

    One wake-up per batch's worth of them, not a message each: a woken worker takes the oldest
    claimable dossiers, and these are among them. Each is counted (its back-off doubles), so the
    sweep does not report the same dossier at every pass.
    """
    from riskoffice.queueing import requeue_claim

    from .tasks import score_pending

    claimed = requeue_claim(dossiers_claimable(), waiting_since="updated_at")
    for _ in range(math.ceil(len(claimed) / settings.SCORING_BATCH_SIZE)):
        if not enqueue(score_pending):
            break  # the broker is down: the claimed rest wait for their back-off, as they would anyway
    return claimed
