"""What the compliance work of issue 10 costs: the access log on every API read, field encryption, key rotation.

    .venv/bin/python scripts/bench_compliance.py [--n 2000] [--threads 4] [--snapshots 20000] [--keep] [--json]

One run, on PostgreSQL, in one process. It drops and creates the database ``--db`` (default
``bench_compliance``), flushes Redis db 6 (cache: the API's rate-limit counters) and db 7 (broker, unused),
migrates, trains a small B2B champion, makes one scored dossier through the real services and a real OAuth
client (sandbox, unlimited allowance, rate limit no run reaches) with a client-credentials token from
/o/token/. Then:

1. **Access log, one thread.** ``--n`` GET /api/v1/scores/{id} per arm through ``django.test.Client``, arms
   interleaved in blocks of 50 (ABAB…, then BABA… to cancel drift): A without
   ``riskoffice.accesslog.middleware.AccessLogMiddleware`` (``override_settings(MIDDLEWARE=…)``; each arm has
   its own Client, whose handler loads the middleware chain once), B with it. The access-log rows written per
   block are counted (A: 0, B: one per request) to prove the arms differ as meant. ``access_log_record``
   alone (advisory lock + hash-chained INSERT + commit) is timed too.
2. **Access log, ``--threads`` threads** (each with its own Clients and database connection), rounds of
   ``--concurrent-requests`` requests per thread per arm, arms alternated: throughput and latency per arm,
   which shows what the append lock (held until commit) serialises.
3. **Encryption.** A real ``FeatureSnapshot.features`` dict (the scored dossier's): encrypt (pickle + AES-CBC +
   HMAC under the keyring's current key, as the model field writes it) and ``decrypt_json`` (as the portfolio
   re-score reads it) against ``json.dumps`` / ``json.loads`` of the same dict (what the plain JSON column
   cost), interleaved; then, with the keyring "B,A", the decrypt of a value under the current key and under
   the old key (mid-rotation). Extrapolated to the 1,000,000-company re-score of docs/benchmarks.md.
4. **Key rotation.** ``--snapshots`` FeatureSnapshot rows bulk-created under key A (through the model field),
   then the keyring "B,A" (``override_settings(FIELD_ENCRYPTION_KEYS=…)``, which forgets the loaded keyring):
   ``rotate_keys --check`` (all old), ``rotate_keys`` (rows/s), ``rotate_keys --check`` again (none old).

The cache between blocks is cleared (outside the timed region): the client's rate-limit history stays as
short as a real partner's under the default 600 a minute, the same for both arms. ``DEBUG`` is off (no query
log). The machine's load average is printed with the figures (the cores may be shared): compare the arms of
one run, not runs.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import gc
import json
import os
import pickle
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY_A = "bench-compliance-field-key-A-" + "a" * 40
KEY_B = "bench-compliance-field-key-B-" + "b" * 40
BLOCK = 50
WARMUP = 50
ACCESS_LOG = "riskoffice.accesslog.middleware.AccessLogMiddleware"
# docs/benchmarks.md, "Portfolio re-score: 1,000,000 companies" (recorded before field encryption): wall time,
# worker time summed over the stages (2 worker processes), and the "features" stage (json.loads + merge + encode).
RECORDED_RESCORES = {
    "loaded machine (2 % new events)": {
        "wall_s": 100.7,
        "worker_s": 51.5 + 40.6 + 13.0 + 4.0 + 38.8,
        "features_s": 40.6,
    },
    "quiet machine (rerun)": {"wall_s": 50.3, "worker_s": 27.3 + 16.9 + 5.7 + 1.9 + 18.2, "features_s": 16.9},
}
PORTFOLIO_COMPANIES = 1_000_000
PORTFOLIO_WORKERS = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="GET requests per arm, one thread (default 2000).")
    parser.add_argument("--threads", type=int, default=4, help="Threads of the concurrent step (default 4).")
    parser.add_argument(
        "--concurrent-requests", type=int, default=100, help="Requests per thread per arm and round (default 100)."
    )
    parser.add_argument("--rounds", type=int, default=6, help="Rounds of the concurrent step (default 6).")
    parser.add_argument("--crypto-n", type=int, default=20000, help="Encrypt/decrypt timings (default 20000).")
    parser.add_argument("--snapshots", type=int, default=20000, help="FeatureSnapshot rows to rotate (default 20000).")
    parser.add_argument("--db", default="bench_compliance")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server URL.")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server URL (db 6 and 7 are used).")
    parser.add_argument("--keep", action="store_true", help="Keep the database at the end (it is dropped otherwise).")
    parser.add_argument("--json", action="store_true", help="End with the figures as one JSON object.")
    return parser.parse_args()


ARGS = parse_args()
VAR_DIR = tempfile.mkdtemp(prefix="riskoffice-bench-compliance-")
atexit.register(shutil.rmtree, VAR_DIR, True)
os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "riskoffice.settings",
        "RISKOFFICE_VAR_DIR": VAR_DIR,
        "DATABASE_URL": f"{ARGS.pg}/{ARGS.db}",
        "CACHE_URL": f"{ARGS.redis}/6",
        "CELERY_BROKER_URL": f"{ARGS.redis}/7",
        "DATABASE_CONN_MAX_AGE": "60",
        "FIELD_ENCRYPTION_KEYS": KEY_A,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("FIELD_ENCRYPTION_KEY_PROVIDER", None)

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402


def database_recreate() -> None:
    with psycopg.connect(f"{ARGS.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{ARGS.db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{ARGS.db}"')


def database_drop() -> None:
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{ARGS.pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{ARGS.db}" WITH (FORCE)')


database_recreate()
for _db in (6, 7):
    redis.Redis.from_url(f"{ARGS.redis}/{_db}").flushdb()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from dossiers.models import Company, Dossier  # noqa: E402
from dossiers.services import dossier_create, dossier_score_here  # noqa: E402
from riskoffice.accesslog.models import AccessLogEntry, Action, Channel  # noqa: E402
from riskoffice.accesslog.services import access_log_record  # noqa: E402
from riskoffice.audit import Actor  # noqa: E402
from riskoffice.clients import partner_client_create  # noqa: E402
from riskoffice.crypto import FERNET, decrypt_json, encrypt_value  # noqa: E402
from riskoffice.keys import keyring  # noqa: E402
from scoring.model.registry import model_register  # noqa: E402
from scoring.model.synthetic import generate_portfolio  # noqa: E402
from scoring.model.training import train_segment  # noqa: E402
from scoring.models import FeatureSnapshot  # noqa: E402

NO_ACCESS_LOG = [name for name in settings.MIDDLEWARE if name != ACCESS_LOG]
assert len(NO_ACCESS_LOG) == len(settings.MIDDLEWARE) - 1, "the access-log middleware is not in MIDDLEWARE"


def say(text: str = "") -> None:
    if not ARGS.json:
        print(text, flush=True)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def figures(samples_ns: list[int]) -> dict[str, float]:
    """p50 / p99 / mean in milliseconds."""
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def micro(samples_ns: list[int]) -> dict[str, float]:
    """p50 / p99 / mean in microseconds."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {
        "p50_us": round(float(np.percentile(us, 50)), 2),
        "p99_us": round(float(np.percentile(us, 99)), 2),
        "mean_us": round(float(us.mean()), 2),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_setting('synchronous_commit')")
        server_version, synchronous_commit = cursor.fetchone()
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": server_version,
        "synchronous_commit": synchronous_commit,
    }


# --- set-up: a champion, a partner client and its token, a scored dossier ------------------------------------


def prepare() -> tuple[Dossier, str, Any]:
    call_command("migrate", "--no-input", verbosity=0)
    portfolio = generate_portfolio(3000, seed=11)
    rows = [company.features() for company, _, _ in portfolio]
    labels = [int(defaulted) for _, _, defaulted in portfolio]
    dates = [f"2024-01-01T00:00:{i:06d}" for i in range(len(rows))]
    model_register(segment="b2b", trained=train_segment("b2b", rows, labels, dates), trained_by="bench", promote=True)
    new = partner_client_create(
        partner_name="Bench Compliance",
        scopes=["scores:write", "scores:read"],
        actor=Actor.of_system("bench"),
        sandbox=True,
        sandbox_unlimited=True,
        rate_limit_per_minute=1_000_000_000,
    )
    dossier = dossier_create(
        partner=new.api_client.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=new.api_client),
        score_here=True,
    )
    assert dossier_score_here(dossier_id=dossier.pk) is not None, "the bench dossier was not scored"
    dossier.refresh_from_db()
    assert dossier.status == Dossier.Status.SCORED
    basic = base64.b64encode(f"{new.client_id}:{new.client_secret}".encode()).decode()
    response = Client().post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    return dossier, response.json()["access_token"], new.api_client


def arm_clients(count: int) -> dict[str, list[Client]]:
    """``count`` Clients per arm; A's load their middleware chain (on the first request) without the access log."""
    clients = {"A": [Client() for _ in range(count)], "B": [Client() for _ in range(count)]}
    return clients


class Requester:
    def __init__(self, path: str, token: str) -> None:
        self.path, self.header = path, f"Bearer {token}"

    def get(self, client: Client) -> int:
        """One GET; its time in ns. Which arm it is depends on the middleware chain ``client`` loaded (warm)."""
        t0 = time.perf_counter_ns()
        response = client.get(self.path, HTTP_AUTHORIZATION=self.header)
        elapsed = time.perf_counter_ns() - t0
        if response.status_code != 200:
            raise RuntimeError(f"GET {self.path} answered {response.status_code}: {response.content[:300]!r}")
        return elapsed


def log_count() -> int:
    return AccessLogEntry.objects.count()


def warm(requester: Requester, clients: dict[str, list[Client]]) -> None:
    """Load each Client's middleware chain (A's under override_settings, without the access log), then warm up.

    A Client's handler builds its chain on its first request and keeps it, so A's Clients stay without the
    access log after the override ends: no per-request override (process-wide, not thread-safe) is needed.
    """
    for arm, arm_clients_ in clients.items():
        for client in arm_clients_:
            if arm == "A":
                with override_settings(MIDDLEWARE=NO_ACCESS_LOG):
                    client.get("/api/v1/schema/")
            else:
                client.get("/api/v1/schema/")
            for _ in range(WARMUP // len(arm_clients_) + 1):
                requester.get(client)


def sequential(requester: Requester, clients: dict[str, list[Client]]) -> dict[str, Any]:
    samples: dict[str, list[int]] = {"A": [], "B": []}
    written: dict[str, int] = {"A": 0, "B": 0}
    blocks = -(-ARGS.n // BLOCK)
    gc.collect()
    for block in range(blocks):
        order = ("A", "B") if block % 2 == 0 else ("B", "A")
        for arm in order:
            cache.clear()  # the client's throttle history: a real partner's length, not the run's
            before = log_count()
            client = clients[arm][0]
            for _ in range(BLOCK):
                samples[arm].append(requester.get(client))
            written[arm] += log_count() - before
    result = {arm: figures(samples[arm]) | {"requests": len(samples[arm]), "log_rows": written[arm]} for arm in "AB"}
    result["ratio_p50"] = round(result["B"]["p50_ms"] / result["A"]["p50_ms"], 3)
    result["ratio_p99"] = round(result["B"]["p99_ms"] / result["A"]["p99_ms"], 3)
    result["added_p50_ms"] = round(result["B"]["p50_ms"] - result["A"]["p50_ms"], 3)
    result["added_mean_ms"] = round(result["B"]["mean_ms"] - result["A"]["mean_ms"], 3)
    assert written["A"] == 0, f"arm A wrote {written['A']} access-log rows"
    assert written["B"] == result["B"]["requests"], f"arm B wrote {written['B']} rows for {result['B']['requests']}"
    return result


def record_alone(n: int, warmup: int = WARMUP) -> dict[str, float] | None:
    """``access_log_record`` as the middleware calls it for an API read: lock + INSERT + commit."""
    samples = []
    for i in range(n + warmup):
        t0 = time.perf_counter_ns()
        access_log_record(
            channel=Channel.API,
            action=Action.READ,
            label="bench",
            method="GET",
            path="/api/v1/scores/00000000-0000-0000-0000-000000000000",
            route="api:score-detail",
            object_type="dossiers.dossier",
            object_id="00000000-0000-0000-0000-000000000000",
            outcome=200,
            ip="127.0.0.1",
        )
        if i >= warmup:
            samples.append(time.perf_counter_ns() - t0)
    return figures(samples) if samples else None


CONTROL_TABLE = "bench_append_control"


def control_append(n: int, warmup: int = 0) -> None:
    """The control: an INSERT of a row of the same size and a commit, with no lock and no chain."""
    for _ in range(n + warmup):
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {CONTROL_TABLE} (at, payload) VALUES (now(), %s) RETURNING id",  # noqa: S608
                ["x" * 400],
            )
            cursor.fetchone()


def appends_in_threads(op: Any, threads: int, per_thread: int) -> float:
    """``op(n, warmup=…)`` run by ``threads`` threads at once, ``per_thread`` each: operations per second."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            op(0, warmup=5)  # this thread's connection, opened before timing
            barrier.wait()
            op(per_thread, warmup=0)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)
            barrier.abort()
        finally:
            connection.close()

    pool = [threading.Thread(target=append, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    t0 = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def append_scaling() -> dict[str, Any]:
    """Appends/s from 1 thread and from ``--threads`` threads, interleaved, against a control without the lock.

    The append lock is held until commit, so appends (and their commits' WAL flushes) run one at a time; the
    control (same row size, same commit, no lock) shows what the threads would do without it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {CONTROL_TABLE} (id bigserial PRIMARY KEY, at timestamptz, payload text)"
        )
    ops = {"access_log": record_alone, "control": control_append}
    many = ARGS.threads
    rates: dict[tuple[str, int], list[float]] = {(name, t): [] for name in ops for t in (1, many)}
    per_thread = 200
    for round_ in range(3):
        for name, op in ops.items() if round_ % 2 == 0 else reversed(ops.items()):
            for threads in (1, many) if round_ % 2 == 0 else (many, 1):
                rates[name, threads].append(appends_in_threads(op, threads, per_thread * many // threads))
    result: dict[str, Any] = {"threads": many}
    for name in ops:
        one, several = statistics.median(rates[name, 1]), statistics.median(rates[name, many])
        result[name] = {
            "one_thread_per_s": round(one),
            "many_threads_per_s": round(several),
            "ratio": round(several / one, 2),
        }
    return result


class Worker(threading.Thread):
    """One thread: its own Clients (one per arm) and its own database connection; runs the jobs it is given."""

    def __init__(self, requester: Requester, clients: dict[str, Client]) -> None:
        super().__init__(daemon=True)
        self.requester, self.clients = requester, clients
        self.jobs: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self.done: queue.Queue[tuple[str, list[int] | BaseException]] = queue.Queue()

    def run(self) -> None:
        try:
            while (job := self.jobs.get()) is not None:
                arm, count = job
                try:
                    client = self.clients[arm]
                    self.done.put((arm, [self.requester.get(client) for _ in range(count)]))
                except BaseException as error:  # noqa: BLE001 - handed to the main thread
                    self.done.put((arm, error))
        finally:
            connection.close()


def concurrent(requester: Requester, clients: dict[str, list[Client]]) -> dict[str, Any]:
    workers = [Worker(requester, {"A": clients["A"][i], "B": clients["B"][i]}) for i in range(ARGS.threads)]
    for worker in workers:
        worker.start()
    for worker in workers:  # each thread's connection opened and warm before timing
        worker.jobs.put(("A", 5))
        worker.jobs.put(("B", 5))
        worker.done.get()
        worker.done.get()
    samples: dict[str, list[int]] = {"A": [], "B": []}
    walls: dict[str, float] = {"A": 0.0, "B": 0.0}
    written: dict[str, int] = {"A": 0, "B": 0}
    per_thread = ARGS.concurrent_requests
    try:
        for round_ in range(ARGS.rounds):
            for arm in ("A", "B") if round_ % 2 == 0 else ("B", "A"):
                cache.clear()
                before = log_count()
                gc.collect()
                t0 = time.perf_counter()
                for worker in workers:
                    worker.jobs.put((arm, per_thread))
                for worker in workers:
                    _, outcome = worker.done.get()
                    if isinstance(outcome, BaseException):
                        raise outcome
                    samples[arm].extend(outcome)
                walls[arm] += time.perf_counter() - t0
                written[arm] += log_count() - before
    finally:
        for worker in workers:
            worker.jobs.put(None)
        for worker in workers:
            worker.join()
    result: dict[str, Any] = {}
    for arm in "AB":
        result[arm] = figures(samples[arm]) | {
            "requests": len(samples[arm]),
            "log_rows": written[arm],
            "seconds": round(walls[arm], 2),
            "requests_per_s": round(len(samples[arm]) / walls[arm], 1),
        }
    assert written["A"] == 0 and written["B"] == result["B"]["requests"], written
    result["ratio_throughput"] = round(result["B"]["requests_per_s"] / result["A"]["requests_per_s"], 3)
    result["ratio_p50"] = round(result["B"]["p50_ms"] / result["A"]["p50_ms"], 3)
    result["ratio_p99"] = round(result["B"]["p99_ms"] / result["A"]["p99_ms"], 3)
    return result


# --- encryption ------------------------------------------------------------------------------------------


def encryption(features: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(features)
    token = encrypt_value(features)
    assert decrypt_json(token) == features == json.loads(text)
    plain = pickle.dumps(features)
    clock = time.perf_counter_ns
    timed = {
        "json_dumps": lambda: json.dumps(features),
        "json_loads": lambda: json.loads(text),
        "encrypt": lambda: encrypt_value(features),
        "decrypt_json": lambda: decrypt_json(token),
        "fernet_decrypt": lambda: FERNET.decrypt(token),
        "pickle_loads": lambda: pickle.loads(plain),  # noqa: S301 - our own bytes
    }
    samples: dict[str, list[int]] = {name: [] for name in timed}
    for _ in range(200):
        for fn in timed.values():
            fn()
    gc.collect()
    for _ in range(ARGS.crypto_n):
        for name, fn in timed.items():
            t0 = clock()
            fn()
            samples[name].append(clock() - t0)
    result: dict[str, Any] = {name: micro(values) for name, values in samples.items()}

    # Mid-rotation: the keyring "B,A"; a value under B (current) and one under A (old: B's HMAC fails first).
    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert keyring().current.secret == KEY_B.encode()
        under_b = encrypt_value(features)
        ring = {
            "decrypt_json_current_key": lambda: decrypt_json(under_b),
            "decrypt_json_old_key": lambda: decrypt_json(token),
        }
        ring_samples: dict[str, list[int]] = {name: [] for name in ring}
        for _ in range(ARGS.crypto_n // 2):
            for name, fn in ring.items():
                t0 = clock()
                fn()
                ring_samples[name].append(clock() - t0)
    assert keyring().current.secret == KEY_A.encode()
    result |= {name: micro(values) for name, values in ring_samples.items()}

    extra_read_us = result["decrypt_json"]["p50_us"] - result["json_loads"]["p50_us"]
    extra_write_us = result["encrypt"]["p50_us"] - result["json_dumps"]["p50_us"]
    extra_s = extra_read_us * PORTFOLIO_COMPANIES / 1e6
    result |= {
        "features": len(features),
        "json_bytes": len(text.encode()),
        "ciphertext_bytes": len(token),
        "extra_read_us_p50": round(extra_read_us, 2),
        "extra_write_us_p50": round(extra_write_us, 2),
        "ratio_read_p50": round(result["decrypt_json"]["p50_us"] / result["json_loads"]["p50_us"], 2),
        "ratio_write_p50": round(result["encrypt"]["p50_us"] / result["json_dumps"]["p50_us"], 2),
        "rescore_extra_worker_s": round(extra_s, 1),
        "rescore_share": {
            name: {
                "extra_worker_s": round(extra_s, 1),
                "share_of_worker_time": round(extra_s / recorded["worker_s"], 3),
                "share_of_features_stage": round(extra_s / recorded["features_s"], 3),
                "extra_wall_s": round(extra_s / PORTFOLIO_WORKERS, 1),
                "share_of_wall": round(extra_s / PORTFOLIO_WORKERS / recorded["wall_s"], 3),
            }
            for name, recorded in RECORDED_RESCORES.items()
        },
    }
    return result


# --- key rotation ----------------------------------------------------------------------------------------


def rotation(features: dict[str, Any]) -> dict[str, Any]:
    company = Company.objects.create(siren="732829320")
    holder = Dossier.objects.create(company=company, segment="b2b", requested_amount=Decimal("1000"))
    now = timezone.now()
    jittered = [name for name, value in features.items() if isinstance(value, float)][:3]
    t0 = time.perf_counter()
    for start in range(0, ARGS.snapshots, 2000):
        batch = []
        for i in range(start, min(ARGS.snapshots, start + 2000)):
            row = dict(features)
            for name in jittered:
                row[name] = round(row[name] * (0.9 + (i % 200) / 1000), 2)
            batch.append(FeatureSnapshot(dossier=holder, features=row, provenance={}, collected_at=now))
        FeatureSnapshot.objects.bulk_create(batch)
    seeded_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE scoring_featuresnapshot")

    def run(*args: str) -> tuple[float, str]:
        out = StringIO()
        t0 = time.perf_counter()
        call_command("rotate_keys", *args, stdout=out)
        return time.perf_counter() - t0, out.getvalue()

    with override_settings(FIELD_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert keyring().current.secret == KEY_B.encode()
        check_before_s, check_before = run("--check")
        rotate_s, rotated_out = run()
        check_after_s, check_after = run("--check")
        sample = FeatureSnapshot.objects.filter(dossier=holder).order_by("pk").first()
        assert sample is not None and set(sample.features) == set(features)
    rotated = int(rotated_out.split("Rotated ", 1)[1].split(" ", 1)[0])
    old_before = int(check_before.strip().splitlines()[-1].split(" ", 1)[0])
    old_after = int(check_after.strip().splitlines()[-1].split(" ", 1)[0])
    assert old_after == 0, check_after
    assert rotated >= ARGS.snapshots, rotated_out
    snapshot_line = next(line for line in rotated_out.splitlines() if "scoring.FeatureSnapshot.features" in line)
    return {
        "snapshots": ARGS.snapshots,
        "seed_seconds": round(seeded_s, 2),
        "seed_rows_per_s": round(ARGS.snapshots / seeded_s),
        "values_old_before": old_before,
        "check_before_seconds": round(check_before_s, 2),
        "check_before_values_per_s": round(old_before / check_before_s),
        "rotated": rotated,
        "rotate_seconds": round(rotate_s, 2),
        "rotate_values_per_s": round(rotated / rotate_s),
        "check_after_seconds": round(check_after_s, 2),
        "check_after_values_per_s": round(old_before / check_after_s),
        "values_old_after": old_after,
        "feature_snapshot_line": snapshot_line.strip(),
    }


# --- report ----------------------------------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    say(f"Fresh database {ARGS.db}: migrate, train a champion, score one dossier, make a client and its token ...")
    dossier, token, _ = prepare()
    features = FeatureSnapshot.objects.filter(dossier=dossier).order_by("-collected_at").first().features
    setup_s = time.perf_counter() - started
    requester = Requester(f"/api/v1/scores/{dossier.pk}", token)
    clients = arm_clients(max(1, ARGS.threads))
    warm(requester, clients)
    result: dict[str, Any] = {"machine": machine(), "setup_seconds": round(setup_s, 1), "load_average_1m": {}}
    m = result["machine"]
    say(
        f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, Django {m['django']}, PostgreSQL "
        f"{m['postgresql']} (synchronous_commit {m['synchronous_commit']}); set-up {setup_s:.1f} s"
    )

    result["load_average_1m"]["sequential"] = load()
    t0 = time.perf_counter()
    seq = result["sequential"] = sequential(requester, clients)
    say(
        f"\n1. GET /api/v1/scores/{{id}}, one thread, {ARGS.n} per arm in blocks of {BLOCK} "
        f"({time.perf_counter() - t0:.0f} s, load {load()})"
    )
    say(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'log rows':>10}")
    for arm, label in (("A", "A: without the access log"), ("B", "B: with the access log")):
        f = seq[arm]
        say(f"{label:34}{f['p50_ms']:>9.3f}{f['p99_ms']:>9.3f}{f['mean_ms']:>9.3f}{f['log_rows']:>10}")
    say(
        f"B/A: p50 {seq['ratio_p50']:.3f}, p99 {seq['ratio_p99']:.3f}; added p50 {seq['added_p50_ms']:.3f} ms, "
        f"mean {seq['added_mean_ms']:.3f} ms"
    )
    alone = result["access_log_record_alone"] = record_alone(max(200, ARGS.n // 4))
    say(
        f"access_log_record alone (lock + INSERT + commit): p50 {alone['p50_ms']:.3f} ms, "
        f"p99 {alone['p99_ms']:.3f} ms, mean {alone['mean_ms']:.3f} ms"
    )

    scaling = result["append_scaling"] = append_scaling()
    for name, label in (("access_log", "access_log_record"), ("control", "control: INSERT + commit, no lock")):
        f = scaling[name]
        say(
            f"{label} in a loop: {f['one_thread_per_s']:,}/s from 1 thread, {f['many_threads_per_s']:,}/s from "
            f"{scaling['threads']} threads (×{f['ratio']:.2f})"
        )

    result["load_average_1m"]["concurrent"] = load()
    t0 = time.perf_counter()
    conc = result["concurrent"] = concurrent(requester, clients)
    say(
        f"\n2. {ARGS.threads} threads, {ARGS.rounds} rounds × {ARGS.concurrent_requests} requests per thread per arm "
        f"({time.perf_counter() - t0:.0f} s, load {load()})"
    )
    say(f"{'':34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}")
    for arm, label in (("A", "A: without the access log"), ("B", "B: with the access log")):
        f = conc[arm]
        say(f"{label:34}{f['requests_per_s']:>9.1f}{f['p50_ms']:>9.3f}{f['p99_ms']:>9.3f}{f['requests']:>10}")
    say(f"B/A: throughput {conc['ratio_throughput']:.3f}, p50 {conc['ratio_p50']:.3f}, p99 {conc['ratio_p99']:.3f}")

    result["load_average_1m"]["encryption"] = load()
    enc = result["encryption"] = encryption(features)
    say(
        f"\n3. A FeatureSnapshot.features dict ({enc['features']} features, {enc['json_bytes']} B of JSON, "
        f"{enc['ciphertext_bytes']} B encrypted), {ARGS.crypto_n} timings each (load {load()})"
    )
    say(f"{'':44}{'p50 µs':>9}{'p99 µs':>9}{'mean µs':>9}")
    for name, label in (
        ("json_dumps", "json.dumps (plain column, write)"),
        ("encrypt", "encrypt: pickle + AES + HMAC (write)"),
        ("json_loads", "json.loads (plain column, read)"),
        ("decrypt_json", "decrypt_json: HMAC + AES + unpickle (read)"),
        ("fernet_decrypt", "  of which FERNET.decrypt"),
        ("pickle_loads", "  of which pickle.loads"),
        ("decrypt_json_current_key", "decrypt_json, ring B,A, value under B"),
        ("decrypt_json_old_key", "decrypt_json, ring B,A, value under A"),
    ):
        f = enc[name]
        say(f"{label:44}{f['p50_us']:>9.2f}{f['p99_us']:>9.2f}{f['mean_us']:>9.2f}")
    say(
        f"Read: +{enc['extra_read_us_p50']:.1f} µs a value (×{enc['ratio_read_p50']:.1f}); write: "
        f"+{enc['extra_write_us_p50']:.1f} µs (×{enc['ratio_write_p50']:.1f}). A 1,000,000-company re-score decrypts "
        f"1,000,000 snapshots: +{enc['rescore_extra_worker_s']:.1f} s of worker time."
    )
    for name, share in enc["rescore_share"].items():
        say(
            f"  against the recorded re-score, {name}: {share['share_of_worker_time']:.1%} of worker time, "
            f"{share['share_of_features_stage']:.1%} of the features stage, ≈ +{share['extra_wall_s']:.1f} s wall "
            f"with {PORTFOLIO_WORKERS} workers ({share['share_of_wall']:.1%})"
        )

    result["load_average_1m"]["rotation"] = load()
    rot = result["rotation"] = rotation(features)
    say(
        f"\n4. rotate_keys over {rot['snapshots']:,} FeatureSnapshot rows (+ the other encrypted values), load {load()}"
    )
    say(f"seeded under key A by bulk_create: {rot['seed_seconds']:.1f} s ({rot['seed_rows_per_s']:,} rows/s)")
    say(
        f"--check, ring B,A, before: {rot['values_old_before']:,} old values in {rot['check_before_seconds']:.1f} s "
        f"({rot['check_before_values_per_s']:,}/s)"
    )
    say(
        f"rotate_keys: {rot['rotated']:,} values in {rot['rotate_seconds']:.1f} s "
        f"({rot['rotate_values_per_s']:,} values/s)"
    )
    say(f"--check after: {rot['values_old_after']} old, {rot['check_after_seconds']:.1f} s")
    say(f"  {rot['feature_snapshot_line']}")
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    say(f"\nTotal {result['total_seconds']:.0f} s.")
    if ARGS.json:
        print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    finally:
        if not ARGS.keep:
            database_drop()
