"""Portfolio runs: starting one, taking its chunks under a lease, storing them once, finding the lost ones.

The guarantees, and where they live:

- **No chunk done twice.** A worker claims a chunk with one conditional UPDATE (pending, or running
  with an expired lease → running, a new ``lease_token``, ``attempts + 1``). It stores the chunk's
  scores in one transaction that first locks the chunk row *only if it still holds that token*, then
  writes the rows (COPY on PostgreSQL) and marks the chunk done. A worker that lost its lease writes
  nothing; ``unique (run, company)`` stands behind it in the database.
- **No chunk lost.** A worker that dies leaves its lease to expire (``PORTFOLIO_LEASE_SECONDS``,
  renewed between stages). A worker that finishes a chunk then takes over any expired chunk of the same
  run at once; the periodic sweep (``portfolio_chunks_requeue``) re-enqueues expired chunks and the
  pending chunks of a run that has stopped moving (a message lost by the broker).
- **The run closes itself.** The transaction that stores a chunk also counts it on the run row (a row
  lock, so two last chunks cannot both miss closing it); the last one sums the stages' timings and
  marks the run done.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now
from django.utils import timezone

from dossiers.models import Dossier
from riskoffice.audit import Actor, audit_record
from riskoffice.queueing import enqueue, enqueue_on_commit
from scoring.model import engine
from scoring.models import CompanyScore, ModelVersion, PortfolioChunk, PortfolioRun, Segment
from scoring.portfolio.compute import ChunkResult, ChunkSpec, ScoredRow, chunk_compute, monitored_filter_sql
from scoring.portfolio.selectors import STAGES
from scoring.selectors import champion_for

logger = logging.getLogger(__name__)
SYSTEM = Actor.of_system("portfolio_rescore")


class PortfolioUnavailable(Exception):
    """A run cannot start (no champion, a run already going, a segment without portfolio); the message says why."""


class LeaseLost(Exception):
    """Another worker took the chunk over: this one stops and writes nothing."""


@dataclass(frozen=True)
class Lease:
    chunk_id: int
    run_id: int
    token: uuid.UUID
    attempt: int


# --- starting a run ---------------------------------------------------------------------------------


def portfolio_run_start(
    *,
    segment: str = Segment.B2B,
    chunk_size: int | None = None,
    user: AbstractBaseUser | None = None,
    system: str = "",
    scope: str = PortfolioRun.Scope.PORTFOLIO,
    company_id: int | None = None,
    trigger_event: Any = None,
    enqueue_chunks: bool = True,
) -> PortfolioRun:
    """Create a run of every company with a scored dossier, split into chunks, and enqueue them after commit.

    Chunks are ranges of company ids holding ``chunk_size`` companies each, computed in SQL. With
    ``scope=monitored`` only the monitored companies (open exposure or watched) are counted and scored;
    with ``scope=event`` the one company ``company_id`` (after ``trigger_event``), in a run of its own that
    may run alongside a portfolio or monitored run. ``enqueue_chunks=False``: the caller processes them.
    """
    from scoring.portfolio.tasks import rescore_chunk

    Scope = PortfolioRun.Scope
    if scope not in Scope.values:
        raise PortfolioUnavailable(f"Unknown scope {scope!r}.")
    if (scope == Scope.EVENT) != (company_id is not None):
        raise PortfolioUnavailable("A company re-score (scope event) names its company, and only it does.")
    if segment != Segment.B2B:
        raise PortfolioUnavailable("Only the company (B2B) portfolio can be re-scored.")
    chunk_size = chunk_size or settings.PORTFOLIO_CHUNK_SIZE
    if chunk_size < 1:
        raise PortfolioUnavailable("The chunk size must be at least 1.")
    model_version = champion_for(segment)
    if model_version is None:
        raise PortfolioUnavailable(
            f"No champion model for {Segment(segment).label}: train and promote one "
            "(manage.py train_model) before re-scoring the portfolio."
        )
    actor = Actor(user=user) if user is not None else Actor.of_system(system or "portfolio_rescore")
    move_threshold = settings.PORTFOLIO_MOVE_THRESHOLD
    if scope != Scope.PORTFOLIO:
        # Every company of these runs is monitored: explain each one that will be the subject of an event.
        move_threshold = min(move_threshold, settings.MONITORING_CHANGE_POINTS)
    with transaction.atomic():
        if scope == Scope.EVENT:
            ranges = [(company_id, company_id, 1)] if company_scored(segment, company_id) else []
            if not ranges:
                raise PortfolioUnavailable("The company has no scored dossier to be re-scored from.")
        else:
            ranges = chunk_ranges(segment, chunk_size, monitored_only=scope == Scope.MONITORED)
        try:
            with transaction.atomic():
                run = PortfolioRun.objects.create(
                    segment=segment,
                    scope=scope,
                    trigger_event=trigger_event,
                    model_version=model_version,
                    started_by=user,
                    started_by_system="" if user is not None else actor.system,
                    chunk_size=chunk_size,
                    move_threshold=move_threshold,
                    companies_total=sum(count for _, _, count in ranges),
                    chunks_total=len(ranges),
                )
        except IntegrityError:
            running = (
                PortfolioRun.objects.filter(segment=segment, status=PortfolioRun.Status.RUNNING)
                .exclude(scope=Scope.EVENT)
                .first()
            )
            raise PortfolioUnavailable(
                f"A re-score of this portfolio is already running (run {running.pk if running else '?'})."
            ) from None
        now = timezone.now()
        chunks = PortfolioChunk.objects.bulk_create(
            PortfolioChunk(run=run, sequence=i, company_from=lo, company_to=hi, enqueued_at=now)
            for i, (lo, hi, _) in enumerate(ranges)
        )
        audit_record(
            actor=actor,
            action="portfolio_run.started",
            obj=run,
            after={
                "segment": segment,
                "scope": scope,
                "company_id": company_id,
                "trigger_event": getattr(trigger_event, "pk", None),
                "model_version": model_version.label,
                "companies": run.companies_total,
                "chunks": run.chunks_total,
                "chunk_size": chunk_size,
            },
        )
        if not chunks:
            _run_close(run)
        for chunk in chunks if enqueue_chunks else ():
            enqueue_on_commit(rescore_chunk, chunk.pk)
    return run


def company_scored(segment: str, company_id: int) -> bool:
    """Whether the company has a scored dossier of the segment: the features a re-score starts from."""
    return Dossier.objects.filter(company_id=company_id, status=Dossier.Status.SCORED, segment=segment).exists()


def chunk_ranges(segment: str, chunk_size: int, *, monitored_only: bool = False) -> list[tuple[int, int, int]]:
    """(first company id, last company id, companies) of each chunk, in one SQL statement.

    Ranges are contiguous: a company scored for the first time while the run starts, with an id between
    two chunks' companies, still falls in one. ``monitored_only``: only monitored companies are counted
    (the chunk's read filters on the same rule, so the companies between them are not scored).
    """
    monitored = f"AND {monitored_filter_sql('company_id')}" if monitored_only else ""
    # Only table names and our own constants are formatted in; values are parameters.
    sql = f"""
        SELECT seq, MIN(company_id), MAX(company_id), COUNT(*) FROM (
            SELECT company_id, (ROW_NUMBER() OVER (ORDER BY company_id) - 1) / %s AS seq
            FROM (SELECT DISTINCT company_id FROM {Dossier._meta.db_table}
                  WHERE status = 'scored' AND segment = %s AND company_id IS NOT NULL {monitored}) portfolio
        ) numbered GROUP BY seq ORDER BY seq
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [chunk_size, segment])
        rows = cursor.fetchall()
    ranges = []
    for i, (_, first, last, count) in enumerate(rows):
        following = rows[i + 1][1] - 1 if i + 1 < len(rows) else last
        ranges.append((int(first), int(following), int(count)))
    return ranges


# --- one chunk --------------------------------------------------------------------------------------


def portfolio_chunk_process(*, chunk_id: int) -> bool:
    """Claim a chunk, score it and store it; then take over the run's expired chunks. Safe to run twice.

    Returns whether this call stored the chunk it was given.
    """
    stored = _process_one(chunk_id)
    chunk = PortfolioChunk.objects.filter(pk=chunk_id).only("run_id").first()
    if chunk is not None:
        for _ in range(settings.PORTFOLIO_MAX_ATTEMPTS):
            expired = _expired_chunks(PortfolioChunk.objects.filter(run_id=chunk.run_id)).values_list("pk", flat=True)
            taken = next((pk for pk in expired[:5] if _process_one(pk)), None)
            if taken is None:
                break
    return stored


def _process_one(chunk_id: int) -> bool:
    lease = portfolio_chunk_claim(chunk_id=chunk_id)
    if lease is None:
        return False
    try:
        result = portfolio_chunk_compute(lease)
        return portfolio_chunk_store(lease, result)
    except LeaseLost:
        logger.warning("Portfolio chunk %s: lease lost to another worker, nothing written", chunk_id)
        return False
    except Exception as exc:
        _chunk_release(lease, f"{type(exc).__name__}: {exc}")
        raise


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_expiry() -> ExpressionWrapper:
    """The database's clock plus the lease: every machine's workers share one clock."""
    return ExpressionWrapper(
        Now() + Value(timedelta(seconds=settings.PORTFOLIO_LEASE_SECONDS), output_field=DurationField()),
        output_field=DateTimeField(),
    )


def _claimable() -> Q:
    Status = PortfolioChunk.Status
    return Q(status=Status.PENDING) | Q(status=Status.RUNNING, lease_until__lt=Now())


def _expired_chunks(chunks: Any) -> Any:
    return chunks.filter(status=PortfolioChunk.Status.RUNNING, lease_until__lt=Now()).order_by("sequence")


def portfolio_chunk_claim(*, chunk_id: int, worker: str | None = None) -> Lease | None:
    """Take a chunk under a new lease, or None when it is done, held by a live lease, or its run is over.

    One UPDATE on the chunk's own row decides: two workers can never both take it.
    """
    run_id = PortfolioChunk.objects.filter(pk=chunk_id).values_list("run_id", flat=True).first()
    if run_id is None or not PortfolioRun.objects.filter(pk=run_id, status=PortfolioRun.Status.RUNNING).exists():
        return None
    token = uuid.uuid4()
    claimed = PortfolioChunk.objects.filter(
        _claimable(), pk=chunk_id, attempts__lt=settings.PORTFOLIO_MAX_ATTEMPTS
    ).update(
        status=PortfolioChunk.Status.RUNNING,
        lease_token=token,
        lease_until=_lease_expiry(),
        attempts=F("attempts") + 1,
        worker=(worker or worker_name())[:200],
        started_at=Now(),
    )
    if not claimed:
        return None
    attempt = PortfolioChunk.objects.filter(pk=chunk_id, lease_token=token).values_list("attempts", flat=True).first()
    return Lease(chunk_id=chunk_id, run_id=run_id, token=token, attempt=attempt or 0)


def portfolio_chunk_renew(lease: Lease) -> None:
    """Extend the lease; raises LeaseLost when another worker holds the chunk now."""
    renewed = PortfolioChunk.objects.filter(
        pk=lease.chunk_id, status=PortfolioChunk.Status.RUNNING, lease_token=lease.token
    ).update(lease_until=_lease_expiry())
    if not renewed:
        raise LeaseLost(lease.chunk_id)


def portfolio_chunk_compute(lease: Lease) -> ChunkResult:
    """Score the chunk with its run's model (no writes), renewing the lease between stages."""
    chunk = PortfolioChunk.objects.select_related("run").get(pk=lease.chunk_id)
    run = chunk.run
    model_version = ModelVersion.objects.get(pk=run.model_version_id)
    spec = ChunkSpec(
        run_id=run.pk,
        segment=run.segment,
        company_from=chunk.company_from,
        company_to=chunk.company_to,
        move_threshold=run.move_threshold,
        scope=run.scope,
    )
    return chunk_compute(spec, engine.model_load(model_version), on_stage=lambda: portfolio_chunk_renew(lease))


def portfolio_chunk_store(lease: Lease, result: ChunkResult) -> bool:
    """Write the chunk's scores and mark it done, in one transaction, only if ``lease`` still holds it.

    Returns False (and writes nothing) when another worker took the chunk over.
    """
    started = timezone.now()
    clock = time.perf_counter()
    with transaction.atomic():
        held = list(
            PortfolioChunk.objects.select_for_update()
            .filter(pk=lease.chunk_id, status=PortfolioChunk.Status.RUNNING, lease_token=lease.token)
            .values_list("pk", flat=True)
        )
        if not held:
            logger.warning("Portfolio chunk %s: lease lost before storing, nothing written", lease.chunk_id)
            return False
        scores_write(lease.run_id, result.rows)
        # Monitoring: alerts and events for the monitored companies whose score moved, in this transaction.
        from alerts.monitoring import rescore_detect

        rescore_detect(run_id=lease.run_id, rows=result.rows)
        timings = {**result.timings, "write": round(result.timings.get("write", 0.0) + time.perf_counter() - clock, 6)}
        PortfolioChunk.objects.filter(pk=lease.chunk_id).update(
            status=PortfolioChunk.Status.DONE,
            finished_at=Now(),
            rows=len(result.rows),
            moved=result.moved,
            timings=timings,
            peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            error="",
        )
        PortfolioRun.objects.filter(pk=lease.run_id).update(
            chunks_done=F("chunks_done") + 1,
            rows_done=F("rows_done") + len(result.rows),
            rows_moved=F("rows_moved") + result.moved,
        )
        run = PortfolioRun.objects.get(pk=lease.run_id)  # locked by the update above until commit
        if run.status == PortfolioRun.Status.RUNNING and run.chunks_done == run.chunks_total:
            _run_close(run)
    logger.info(
        "Portfolio chunk %s stored: %s rows, %s moved, %.2f s (attempt %s, since %s)",
        lease.chunk_id,
        len(result.rows),
        result.moved,
        sum(timings.values()),
        lease.attempt,
        started.isoformat(),
    )
    return True


def _chunk_release(lease: Lease, error: str) -> None:
    """A chunk whose computation failed: its lease ends now, so the sweep or another worker retries it."""
    PortfolioChunk.objects.filter(pk=lease.chunk_id, lease_token=lease.token).update(
        lease_until=Now(), error=error[:2000]
    )


def _run_close(run: PortfolioRun) -> None:
    """The last chunk is stored: sum the stages over the chunks and mark the run done (in the caller's transaction)."""
    totals = dict.fromkeys(STAGES, 0.0)
    for timings in PortfolioChunk.objects.filter(run=run).values_list("timings", flat=True):
        for stage, seconds in (timings or {}).items():
            totals[stage] = totals.get(stage, 0.0) + float(seconds)
    run.status = PortfolioRun.Status.DONE
    run.finished_at = timezone.now()
    run.timings = {stage: round(seconds, 3) for stage, seconds in totals.items()}
    run.save(update_fields=["status", "finished_at", "timings"])
    audit_record(
        actor=SYSTEM,
        action="portfolio_run.finished",
        obj=run,
        before={"status": PortfolioRun.Status.RUNNING},
        after={"status": run.status, "rows": run.rows_done, "moved": run.rows_moved, "timings": run.timings},
    )


def _run_fail(run_id: int, error: str) -> None:
    with transaction.atomic():
        updated = PortfolioRun.objects.filter(pk=run_id, status=PortfolioRun.Status.RUNNING).update(
            status=PortfolioRun.Status.FAILED, finished_at=Now(), error=error[:2000]
        )
        if updated:
            run = PortfolioRun.objects.get(pk=run_id)
            audit_record(
                actor=SYSTEM,
                action="portfolio_run.failed",
                obj=run,
                before={"status": PortfolioRun.Status.RUNNING},
                after={"status": run.status, "error": run.error},
            )


# --- writing scores ---------------------------------------------------------------------------------

COLUMNS = (
    "run_id",
    "company_id",
    "probability_of_default",
    "score",
    "band",
    "previous_score",
    "previous_band",
    "base_value",
    "contributions",
    "factors",
)


def scores_write(run_id: int, rows: list[ScoredRow]) -> None:
    """Insert a chunk's CompanyScore rows: PostgreSQL's COPY, else one bulk insert."""
    if connection.vendor == "postgresql":
        _copy_scores(run_id, rows)
        return
    CompanyScore.objects.bulk_create(
        (
            CompanyScore(
                run_id=run_id,
                company_id=row.company_id,
                probability_of_default=row.probability_of_default,
                score=row.score,
                band=row.band,
                previous_score=row.previous_score,
                previous_band=row.previous_band,
                base_value=row.base_value,
                contributions=row.contributions,
                factors=row.factors,
            )
            for row in rows
        ),
        batch_size=2000,
    )


def _copy_scores(run_id: int, rows: list[ScoredRow]) -> None:
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(CompanyScore._meta.db_table), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                (
                    run_id,
                    row.company_id,
                    row.probability_of_default,
                    row.score,
                    row.band,
                    row.previous_score,
                    row.previous_band,
                    row.base_value,
                    None if row.contributions is None else json.dumps(row.contributions),
                    None if row.factors is None else json.dumps(row.factors, ensure_ascii=False),
                )
            )


# --- the sweep --------------------------------------------------------------------------------------


def portfolio_chunks_requeue() -> list[int]:
    """Enqueue again what a running run would otherwise wait for forever; fail a run whose chunk keeps failing.

    - a chunk whose lease expired (its worker died or its task failed);
    - the pending chunks of a run with no live lease at all (their messages were lost).

    A chunk is sent at most once per lease period (``enqueued_at``, a conditional update).
    """
    from scoring.portfolio.tasks import rescore_chunk

    now = timezone.now()
    resend_before = now - timedelta(seconds=settings.PORTFOLIO_LEASE_SECONDS)
    chunks = PortfolioChunk.objects.filter(run__status=PortfolioRun.Status.RUNNING)
    exhausted = _expired_chunks(chunks).filter(attempts__gte=settings.PORTFOLIO_MAX_ATTEMPTS)
    for run_id, sequence, error in exhausted.values_list("run_id", "sequence", "error"):
        _run_fail(run_id, f"Chunk {sequence} failed {settings.PORTFOLIO_MAX_ATTEMPTS} times: {error or 'no error'}")
    busy_runs = chunks.filter(status=PortfolioChunk.Status.RUNNING, lease_until__gte=Now()).values("run_id")
    due = (
        chunks.filter(
            Q(status=PortfolioChunk.Status.RUNNING, lease_until__lt=Now())
            | (Q(status=PortfolioChunk.Status.PENDING) & ~Q(run_id__in=busy_runs))
        )
        .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=resend_before))
        .filter(attempts__lt=settings.PORTFOLIO_MAX_ATTEMPTS)
        .order_by("run_id", "sequence")
        .values_list("pk", "enqueued_at")[:500]
    )
    sent = []
    for pk, enqueued_at in due:
        if PortfolioChunk.objects.filter(pk=pk, enqueued_at=enqueued_at).update(enqueued_at=now):
            if not enqueue(rescore_chunk, pk):
                break
            sent.append(pk)
    return sent
