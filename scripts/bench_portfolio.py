"""Re-score a portfolio of N companies (default 1,000,000) on PostgreSQL with real Celery workers on Redis.

    .venv/bin/python scripts/bench_portfolio.py [--companies 1000000] [--workers 2] [--chunk-size N]
        [--kill-worker-at 0.5] [--events-share 0.02] [--reuse] [--json]

1. Makes a fresh PostgreSQL database (``--db``, default ``bench_portfolio``) and migrates it (``--reuse``
   keeps a database already seeded with the same number of companies).
2. Trains a small B2B champion on the synthetic book (``scoring.model.synthetic``) and registers it.
3. Seeds N companies, each with one scored dossier, its FeatureSnapshot and its Score, with COPY and
   features drawn from the synthetic book's companies (resampled, amounts jittered); then negative
   events recorded *after* the snapshots for ``--events-share`` of them, so that their scores move and
   are explained (and as many again before every later run). Seeding is set-up, timed apart.
4. Starts ``celery -A riskoffice worker`` (prefork, ``--workers`` processes) and ``celery beat`` on Redis
   (db 3 broker, db 4 cache), runs ``manage.py rescore_portfolio --wait --json`` and prints wall time,
   rows/s, seconds per stage, peak RSS per worker process and the load average.
5. ``--kill-worker-at F`` SIGKILLs the worker process holding a chunk once a fraction F of the chunks is
   done, then proves by SQL that every company has exactly one score in the run and that every chunk
   is done once (attempts > 1 on the killed one), and reports the delay the kill caused.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="Worker processes (prefork concurrency).")
    parser.add_argument("--chunk-size", type=int, default=None, help="Companies per chunk (PORTFOLIO_CHUNK_SIZE).")
    parser.add_argument("--kill-worker-at", type=float, default=None, metavar="FRACTION")
    parser.add_argument("--events-share", type=float, default=0.02, help="Companies with new events on file.")
    parser.add_argument("--db", default="bench_portfolio")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL.")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/4")
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database of the same size.")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="Re-score this many times in a row (the second sees a "
        "previous run: its previous scores come from CompanyScore).",
    )
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON object.")
    return parser.parse_args()


ARGS = parse_args()
VAR_DIR = tempfile.mkdtemp(prefix="riskoffice-bench-portfolio-")
atexit.register(shutil.rmtree, VAR_DIR, True)
ENV = {
    "DJANGO_SETTINGS_MODULE": "riskoffice.settings",
    "RISKOFFICE_VAR_DIR": VAR_DIR,
    "DATABASE_URL": f"{ARGS.pg}/{ARGS.db}",
    "CELERY_BROKER_URL": ARGS.broker,
    "CACHE_URL": ARGS.cache,
    "DATABASE_CONN_MAX_AGE": "60",
    "LOG_LEVEL": "WARNING",
}
if ARGS.chunk_size:
    ENV["PORTFOLIO_CHUNK_SIZE"] = str(ARGS.chunk_size)
os.environ.update(ENV)

import numpy as np  # noqa: E402
import psycopg  # noqa: E402


def say(text: str) -> None:
    if not ARGS.json:
        print(text, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


# --- database ---------------------------------------------------------------------------------------


def seeded_companies() -> int | None:
    try:
        with psycopg.connect(f"{ARGS.pg}/{ARGS.db}", connect_timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM dossiers_company").fetchone()[0]
    except psycopg.Error:
        return None


def database_recreate() -> None:
    with psycopg.connect(f"{ARGS.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{ARGS.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{ARGS.db}"')


import django  # noqa: E402

REUSE = ARGS.reuse and seeded_companies() == ARGS.companies
if not REUSE:
    database_recreate()
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from alerts.models import NegativeEvent  # noqa: E402
from dossiers.models import Company, Dossier  # noqa: E402
from scoring.model import engine  # noqa: E402
from scoring.model.registry import model_register  # noqa: E402
from scoring.model.synthetic import generate_portfolio, siren_from_number  # noqa: E402
from scoring.model.training import train_segment  # noqa: E402
from scoring.models import FeatureSnapshot, ModelVersion, PolicyVersion, Score  # noqa: E402
from scoring.policy.scale import band_for, score_for  # noqa: E402
from scoring.portfolio.compute import encode_columns  # noqa: E402
from scoring.selectors import champion_for  # noqa: E402

BLOCK = 100_000  # rows generated and copied at a time: the seeding process stays small


def train_champion() -> ModelVersion:
    portfolio = generate_portfolio(10_000, seed=5)
    rows = [company.features() for company, _, _ in portfolio]
    labels = [int(defaulted) for _, _, defaulted in portfolio]
    dates = [f"2024-01-01T{i:09d}" for i in range(len(rows))]
    trained = train_segment("b2b", rows, labels, dates)
    return model_register(segment="b2b", trained=trained, trained_by="bench", promote=True)


def constants(model: Any, given: set[str]) -> dict[str, Any]:
    """Database values of every column not given: its default (so columns other work adds still fill)."""
    values = {}
    for field in model._meta.concrete_fields:
        if field.column in given or field.generated or field.primary_key:
            continue
        default = field.get_default()  # "" for a text column without a default, None when nullable
        values[field.column] = None if default is None else field.get_db_prep_save(default, connection)
    return values


def copy_rows(model: Any, columns: list[str], rows: Any) -> None:
    extra = constants(model, set(columns))
    names = columns + list(extra)
    tail = tuple(extra.values())
    statement = psycopg.sql.SQL("COPY {} ({}) FROM STDIN").format(
        psycopg.sql.Identifier(model._meta.db_table), psycopg.sql.SQL(", ").join(map(psycopg.sql.Identifier, names))
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row((*row, *tail))


def seed(n: int, model_version: ModelVersion) -> dict[str, float]:
    """N companies with one scored dossier each (snapshot + score), then new events for some of them."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    pool = [company for company, _, _ in generate_portfolio(20_000, seed=99)]
    pool_features = [company.features() for company in pool]
    timings["pool"] = time.perf_counter() - started
    loaded = engine.model_load(model_version)
    loaded.booster.set_param({"nthread": os.cpu_count() or 1})
    policy = PolicyVersion.objects.get(segment="b2b", is_current=True)
    rng = np.random.default_rng(2026)
    now = timezone.now()
    collected = now - timedelta(days=30)
    jittered = ("revenue", "avg_balance_12m", "min_balance_12m")
    snapshot_features = FeatureSnapshot._meta.get_field("features")
    empty_factors = Score._meta.get_field("factors").get_db_prep_save([], connection)
    for block_start in range(0, n, BLOCK):
        t0 = time.perf_counter()
        ids = np.arange(block_start + 1, min(n, block_start + BLOCK) + 1)
        picks = rng.integers(0, len(pool), len(ids))
        factors = rng.uniform(0.9, 1.1, len(ids))
        features = []
        for pick, factor in zip(picks.tolist(), factors.tolist(), strict=True):
            row = dict(pool_features[pick])
            for name in jittered:
                if row.get(name) is not None:
                    row[name] = round(row[name] * factor, 0)
            features.append(row)
        pds = engine.calibrated_pd(
            loaded.booster.predict(engine.dmatrix(loaded, encode_columns(loaded, features)), output_margin=True),
            loaded.calibration,
        ).tolist()
        dossier_ids = [uuid.uuid4() for _ in ids]
        timings["generate"] = timings.get("generate", 0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        id_list = ids.tolist()
        copy_rows(
            Company,
            ["id", "siren", "naf_code", "created_at"],
            (
                (i, siren_from_number(i), pool[p].naf_code, collected)
                for i, p in zip(id_list, picks.tolist(), strict=True)
            ),
        )
        copy_rows(
            Dossier,
            ["id", "company_id", "segment", "requested_amount", "status", "decision", "created_at", "updated_at"],
            (
                (d, i, "b2b", pool[p].requested_amount, "scored", "accept", collected, collected)
                for d, i, p in zip(dossier_ids, id_list, picks.tolist(), strict=True)
            ),
        )
        copy_rows(
            FeatureSnapshot,
            ["id", "dossier_id", "features", "collected_at"],
            # Features are encrypted at rest (bank aggregates): written as the model field writes them.
            (
                (i, d, snapshot_features.get_db_prep_save(f, connection), collected)
                for i, d, f in zip(id_list, dossier_ids, features, strict=True)
            ),
        )
        copy_rows(
            Score,
            [
                "id",
                "dossier_id",
                "snapshot_id",
                "model_version_id",
                "policy_version_id",
                "probability_of_default",
                "score",
                "band",
                "decision",
                "base_value",
                "contributions",
                "factors",
                "created_at",
            ],
            (
                (
                    i,
                    d,
                    i,
                    model_version.pk,
                    policy.pk,
                    pd,
                    score_for(pd, "b2b"),
                    band_for(pd),
                    "accept",
                    0.0,
                    "{}",
                    empty_factors,
                    collected,
                )
                for i, d, pd in zip(id_list, dossier_ids, pds, strict=True)
            ),
        )
        timings["copy"] = timings.get("copy", 0) + time.perf_counter() - t0
        say(f"  seeded {ids[-1]:,} companies ({time.perf_counter() - started:.0f} s, load {load()})")
    t0 = time.perf_counter()
    events_add(n, rng)
    with connection.cursor() as cursor:
        for table in ("dossiers_company", "scoring_featuresnapshot", "scoring_score"):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, ARGS.companies])
    timings["events"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    connection.close()
    with psycopg.connect(f"{ARGS.pg}/{ARGS.db}", autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    timings["analyze"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    return {k: round(v, 1) for k, v in timings.items()}


def events_add(n: int, rng: np.random.Generator) -> int:
    """Negative events recorded now for ``--events-share`` of the companies: their scores move at the next run."""
    events = max(1, int(n * ARGS.events_share))
    chosen = rng.choice(n, events, replace=False) + 1
    kinds = rng.choice(
        [NegativeEvent.Kind.PAYMENT_DELAY, NegativeEvent.Kind.SEPA_INCIDENT, NegativeEvent.Kind.INSOLVENCY_PROCEEDING],
        events,
        p=[0.7, 0.25, 0.05],
    )
    today, now = timezone.localdate(), timezone.now()
    copy_rows(
        NegativeEvent,
        ["company_id", "kind", "occurred_on", "days_late", "source", "created_at"],
        (
            (int(c), str(k), today - timedelta(days=int(c % 20)), 60 if k == "payment_delay" else None, "bench", now)
            for c, k in zip(chosen, kinds, strict=True)
        ),
    )
    return events


# --- workers ----------------------------------------------------------------------------------------


def celery(*args: str, log: Path | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "riskoffice", *args]
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=ROOT, env={**os.environ, **ENV}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def workers_start() -> tuple[subprocess.Popen, subprocess.Popen, Path]:
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "riskoffice", "purge", "-f"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        check=False,
        timeout=60,
    )
    log = Path(VAR_DIR) / "worker.log"
    worker = celery(
        "worker",
        "--pool",
        "prefork",
        "--concurrency",
        str(ARGS.workers),
        "--loglevel",
        "INFO",
        "--hostname",
        f"bench-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        log=log,
    )
    beat = celery(
        "beat",
        "--schedule",
        str(Path(VAR_DIR) / "beat-schedule"),
        "--loglevel",
        "WARNING",
        log=Path(VAR_DIR) / "beat.log",
    )
    deadline = time.monotonic() + 90
    while "ready." not in log.read_text() and time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit(f"the Celery worker exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    return worker, beat, log


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def child_pids(parent: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
    except OSError:
        return []


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# --- one run ----------------------------------------------------------------------------------------


def run_once(worker: subprocess.Popen, kill_at: float | None) -> dict[str, Any]:
    """``manage.py rescore_portfolio --wait --json`` in its own process, watched from here."""
    from scoring.models import PortfolioChunk, PortfolioRun

    before = PortfolioRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    command = subprocess.Popen(
        [sys.executable, "manage.py", "rescore_portfolio", "--wait", "--json"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    loads, hwm, killed = [], {}, None
    while command.poll() is None:
        time.sleep(1)
        loads.append(os.getloadavg()[0])
        for pid in child_pids(worker.pid):
            hwm[pid] = max(hwm.get(pid, 0.0), vm_hwm_mb(pid) or 0.0)
        run = PortfolioRun.objects.filter(pk__gt=before).first()
        if kill_at is None or killed or run is None or not run.chunks_total:
            continue
        if run.chunks_done / run.chunks_total >= kill_at:
            killed = kill_a_worker(run)
    out, err = command.communicate()
    if command.returncode != 0:
        raise SystemExit(f"rescore_portfolio failed ({command.returncode}):\n{err[-3000:]}")
    summary = json.loads(out.strip().splitlines()[-1])
    summary["load_average_1m"] = {
        "mean": round(float(np.mean(loads)), 2) if loads else None,
        "max": round(float(np.max(loads)), 2) if loads else None,
    }
    summary["worker_vm_hwm_mb"] = {str(pid): mb for pid, mb in hwm.items()}
    summary["checks"] = verify(summary["run"])
    if killed:
        chunk = PortfolioChunk.objects.get(pk=killed["chunk"])
        killed["chunk_attempts"] = chunk.attempts
        killed["chunk_redone_after_s"] = round((chunk.finished_at - killed["at"]).total_seconds(), 1)
        killed["at"] = killed["at"].isoformat()
        summary["kill"] = killed
    return summary


def kill_a_worker(run: Any) -> dict[str, Any] | None:
    from scoring.models import PortfolioChunk

    chunk = PortfolioChunk.objects.filter(run=run, status=PortfolioChunk.Status.RUNNING).order_by("sequence").first()
    if chunk is None:
        return None
    pid = int(chunk.worker.rsplit(":", 1)[1])
    os.kill(pid, signal.SIGKILL)
    say(f"  killed worker process {pid} holding chunk {chunk.sequence} ({run.chunks_done}/{run.chunks_total} done)")
    return {"pid": pid, "chunk": chunk.pk, "sequence": chunk.sequence, "at": timezone.now()}


def verify(run_id: int) -> dict[str, Any]:
    """By SQL: one score per company of the portfolio, every chunk done once, chunk rows adding up."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*), COUNT(DISTINCT company_id) FROM scoring_companyscore WHERE run_id = %s", [run_id]
        )
        scores, distinct = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(DISTINCT company_id) FROM dossiers_dossier WHERE status = 'scored' AND segment = 'b2b'"
        )
        (portfolio,) = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'done'), COALESCE(SUM(rows), 0), "
            "COUNT(*) FILTER (WHERE attempts > 1), COALESCE(MAX(attempts), 0) "
            "FROM scoring_portfoliochunk WHERE run_id = %s",
            [run_id],
        )
        total, done, rows, retried, max_attempts = cursor.fetchone()
        # Every score falls in exactly one chunk's range (the ranges do not overlap).
        cursor.execute(
            "SELECT COUNT(*) FROM scoring_companyscore s JOIN scoring_portfoliochunk c ON c.run_id = s.run_id "
            "AND s.company_id BETWEEN c.company_from AND c.company_to WHERE s.run_id = %s",
            [run_id],
        )
        (in_a_chunk,) = cursor.fetchone()
        cursor.execute(
            "SELECT COUNT(*) FROM scoring_companyscore WHERE run_id = %s AND contributions IS NOT NULL", [run_id]
        )
        (explained,) = cursor.fetchone()
    checks = {
        "scores": scores,
        "distinct_companies": distinct,
        "portfolio_companies": portfolio,
        "chunks": total,
        "chunks_done": done,
        "chunk_rows": rows,
        "chunks_retried": retried,
        "max_attempts": max_attempts,
        "scores_in_exactly_one_chunk": in_a_chunk == scores,
        "explained": explained,
    }
    checks["ok"] = scores == distinct == portfolio == rows and total == done and in_a_chunk == scores
    return checks


def main() -> None:
    started = time.perf_counter()
    say(f"Load average at start: {os.getloadavg()}")
    seed_timings: dict[str, Any] = {"reused": True}
    if not REUSE:
        call_command("migrate", verbosity=0)
        model_version = train_champion()
        say(
            f"Champion {model_version.label} trained ({time.perf_counter() - started:.0f} s); "
            f"seeding {ARGS.companies:,}"
        )
        seed_timings = seed(ARGS.companies, model_version)
        say(f"Seeded in {seed_timings['total']:.0f} s: {seed_timings}")
    else:
        say(f"Reusing {ARGS.db} ({ARGS.companies:,} companies, champion {champion_for('b2b').label})")
    worker, beat, log = workers_start()
    results = []
    try:
        for i in range(ARGS.runs):
            if REUSE or i > 0:  # new events since the last run, so that some scores move and are explained
                say(f"  {events_add(ARGS.companies, np.random.default_rng(i + time.time_ns() % 1000)):,} new events")
            kill_at = ARGS.kill_worker_at if i == ARGS.runs - 1 else None
            say(f"Run {i + 1}/{ARGS.runs}: rescore_portfolio --wait (load {load()})")
            summary = run_once(worker, kill_at)
            results.append(summary)
            report(summary)
    finally:
        stop(worker)
        stop(beat)
    figures = {
        "companies": ARGS.companies,
        "workers": ARGS.workers,
        "seed_seconds": seed_timings,
        "runs": results,
        "cpu_count": os.cpu_count(),
    }
    if ARGS.json:
        print(json.dumps(figures, default=str))
    if not all(r["checks"]["ok"] for r in results):
        raise SystemExit(f"checks failed; worker log: {log}")


def report(s: dict[str, Any]) -> None:
    say(
        f"  run {s['run']} {s['status']}: {s['rows']:,} companies in {s['wall_seconds']:.1f} s = "
        f"{s['rows_per_second']:,.0f}/s, {s['moved']:,} moved and explained, load average "
        f"{s['load_average_1m']['mean']} mean / {s['load_average_1m']['max']} max"
    )
    say("  stage seconds (summed over workers): " + ", ".join(f"{k} {v:.1f}" for k, v in s["stage_seconds"].items()))
    for w in s["workers"]:
        say(f"  {w['worker']}: {w['chunks']} chunks, peak RSS {w['peak_rss_mb']:.0f} MB (ru_maxrss)")
    say(f"  worker processes' VmHWM (MB): {s['worker_vm_hwm_mb']}")
    say(f"  checks: {s['checks']}")
    if "kill" in s:
        say(f"  kill: {s['kill']}")


if __name__ == "__main__":
    main()
