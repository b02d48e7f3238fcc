"""Load benchmark of the partner API: the production stack on loopback, driven by closed-loop partners.

    .venv/bin/python scripts/bench_api.py                       # all six steps, 20 s each
    .venv/bin/python scripts/bench_api.py --steps poll:20 --duration 5 --json
    .venv/bin/python scripts/bench_api.py --steps poll:100 --kill-worker
    .venv/bin/python scripts/bench_api.py --compare-celery-workers 1,2
    .venv/bin/python scripts/bench_api.py --capacity 20000 --capacity-workers 1,2   # the workers alone

The orchestrator (this process) builds a fresh stack: PostgreSQL database ``bench_api`` (dropped and
created), Redis db 5 (broker) and 6 (cache) flushed, ``migrate``, a synthetic history and a trained
champion, a sandbox partner client whose allowance and rate limit no run reaches, then gunicorn, a Celery
worker and Celery beat with ``RISKOFFICE_ENV=production``. Each step runs the load driver in a separate
process (``bench_api.py _drive``): asyncio, raw HTTP/1.1 keep-alive, one connection per simulated partner,
each sending its next request once the previous dossier is scored (closed loop), each with distinct
Luhn-valid SIRENs. Two modes:

- ``poll``: POST /api/v1/scores (202), then GET /api/v1/scores/{id} every 20 ms until scored or failed;
- ``wait``: POST with ``Prefer: wait=10`` (200 with the score; a 202 falls back to polling).

After each step the orchestrator checks the database: every dossier created during the step was answered to
the client and the other way round, every one ends scored, and each has exactly one Score. Figures exclude a
short warm-up; the machine's load average is printed with them (the cores may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
MODES = ("poll", "wait")
DEFAULT_STEPS = "wait:20,poll:20,poll:100,poll:500,wait:100,wait:500"
POLL_INTERVAL_SECONDS = 0.02
PREFER_WAIT_SECONDS = 10
# SIRENs the benchmark requests: 8-digit bases from here, far from the seeded history's.
FIRST_SIREN_BASE = 70_000_000
UNLIMITED = 1_000_000_000  # allowance and requests a minute: beyond any run


# --- SIRENs and statistics (pure; tests/test_bench_api.py) ---------------------------------------------


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass the Luhn checksum (SIREN's key)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        digit = int(char)
        if position % 2 == 0:  # doubled: these become the odd positions once the key is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def siren_for(base: int) -> str:
    """The SIREN whose first 8 digits are ``base``."""
    body = f"{base:08d}"
    if len(body) != 8:
        raise ValueError(f"a SIREN base has 8 digits, got {base}")
    return body + luhn_check_digit(body)


def sirens(first: int, count: int) -> list[str]:
    """``count`` distinct Luhn-valid SIRENs from base ``first`` on."""
    return [siren_for(base) for base in range(first, first + count)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n·q/100), at least the first
    return ordered[int(rank) - 1]


def distribution(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of ``values`` in seconds, rounded to the millisecond."""

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "p50": rounded(percentile(values, 50)),
        "p95": rounded(percentile(values, 95)),
        "p99": rounded(percentile(values, 99)),
        "max": rounded(max(values) if values else None),
    }


@dataclass
class Dossier:
    """One partner request as the driver saw it: epoch times, the POST's own latency, the outcome."""

    id: str | None
    started: float
    post_seconds: float | None = None
    ended: float | None = None
    status: str | None = None


def step_figures(dossiers: Sequence[Dossier], *, begin: float, end: float) -> dict:
    """Figures over the dossiers requested in [begin, end): scored per second, time-to-score, POST latency."""
    measured = [d for d in dossiers if begin <= d.started < end]
    done = [d for d in measured if d.ended is not None and d.status == "scored"]
    scored_in_window = sum(
        1 for d in dossiers if d.status == "scored" and d.ended is not None and begin <= d.ended < end
    )
    return {
        "dossiers": len(measured),
        "scored": len(done),
        "failed": sum(1 for d in measured if d.status == "failed"),
        "unfinished": sum(1 for d in measured if d.id is not None and d.ended is None),
        "scored_per_second": round(scored_in_window / (end - begin), 1) if end > begin else None,
        "time_to_score_s": distribution([d.ended - d.started for d in done]),
        "post_latency_s": distribution([d.post_seconds for d in measured if d.post_seconds is not None]),
    }


# --- The load driver: a process of its own, asyncio, raw HTTP/1.1 ----------------------------------------

STATUS_PATTERN = re.compile(rb'"status"\s*:\s*"([a-z]+)"')
ID_PATTERN = re.compile(rb'"id"\s*:\s*"([^"]+)"')


class ServerClosed(ConnectionError):
    """The server closed a kept-alive connection before answering (it may not have read the request)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float = 0.0  # this attempt's latency (a 429/503 retried before it is not counted)


@dataclass
class Counters:
    http_requests: int = 0
    errors_non_2xx: dict[str, int] = field(default_factory=dict)
    connection_errors: int = 0
    timeouts: int = 0
    throttled: dict[str, int] = field(default_factory=dict)  # 429 / 503, retried after Retry-After
    reconnects: int = 0
    wait_fallbacks: int = 0  # Prefer: wait answered 202: the client polled
    first_error: str | None = None

    def error(self, kind: str, detail: str) -> None:
        if kind == "connection":
            self.connection_errors += 1
        elif kind == "timeout":
            self.timeouts += 1
        else:
            self.errors_non_2xx[kind] = self.errors_non_2xx.get(kind, 0) + 1
        self.first_error = self.first_error or f"{kind}: {detail[:300]}"


class Connection:
    """One partner's keep-alive connection; reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = False

    async def request(self, raw: bytes) -> Response:
        fresh = self.writer is None
        if fresh:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.used = False
        try:
            self.writer.write(raw)
            response = await self._read_response()
        except (ServerClosed, ConnectionResetError, BrokenPipeError) as exc:
            self.close()
            if fresh or not self.used:
                raise ConnectionError(str(exc) or type(exc).__name__) from exc
            raise ServerClosed("kept-alive connection closed by the server") from exc
        self.used = True
        if response.headers.get("connection", "").lower() == "close":
            self.close()  # gunicorn's sync workers answer one request per connection
        return response

    async def _read_response(self) -> Response:
        assert self.reader is not None
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise ServerClosed("no answer") from exc
            raise ConnectionError("truncated response head") from exc
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        return Response(status, headers, body)

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class DriveConfig:
    host: str
    port: int
    token: str
    mode: str
    concurrency: int
    duration: float
    first_siren: int
    request_timeout: float = 30.0
    max_time_to_score: float = 120.0


class Driver:
    """Closed-loop partners: each requests a score, waits for it, then requests the next."""

    def __init__(self, config: DriveConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.dossiers: list[Dossier] = []
        self.next_siren = config.first_siren
        self.host_header = f"{config.host}:{config.port}".encode()
        self.auth = f"Bearer {config.token}".encode()

    def _take_siren(self) -> str:
        siren = siren_for(self.next_siren)
        self.next_siren += 1
        return siren

    def _post(self, siren: str) -> bytes:
        body = json.dumps({"company": {"siren": siren}, "requested_amount": 25000}).encode()
        prefer = f"Prefer: wait={PREFER_WAIT_SECONDS}\r\n".encode() if self.config.mode == "wait" else b""
        return (
            b"POST /api/v1/scores HTTP/1.1\r\nHost: " + self.host_header + b"\r\nAuthorization: " + self.auth
            + b"\r\nContent-Type: application/json\r\n" + prefer
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip

    def _get(self, dossier_id: str) -> bytes:
        return (
            b"GET /api/v1/scores/" + dossier_id.encode() + b" HTTP/1.1\r\nHost: " + self.host_header
            + b"\r\nAuthorization: " + self.auth + b"\r\n\r\n"
        )  # fmt: skip

    async def _exchange(self, connection: Connection, raw: bytes, *, give_up_at: float) -> Response | None:
        """One request, 429/503 retried after their Retry-After until ``give_up_at``; None after an error (counted)."""
        while True:
            self.counters.http_requests += 1
            attempt_started = time.perf_counter()
            try:
                response = await asyncio.wait_for(connection.request(raw), self.config.request_timeout)
            except ServerClosed:
                self.counters.reconnects += 1  # an idle connection the server closed: resend on a new one
                continue
            except TimeoutError:
                connection.close()
                self.counters.error("timeout", f"no answer in {self.config.request_timeout} s")
                return None
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                connection.close()
                self.counters.error("connection", f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
                return None
            if response.status in (429, 503):
                key = str(response.status)
                self.counters.throttled[key] = self.counters.throttled.get(key, 0) + 1
                pause = _retry_after(response.headers.get("retry-after"))
                if time.time() + pause > give_up_at:
                    self.counters.error("timeout", f"still {response.status} after {self.config.max_time_to_score} s")
                    return None
                await asyncio.sleep(pause)
                continue
            if not 200 <= response.status < 300:
                self.counters.error(str(response.status), response.body.decode("utf-8", "replace"))
                return None
            response.seconds = time.perf_counter() - attempt_started
            return response

    async def _partner(self, stop_at: float) -> None:
        connection = Connection(self.config.host, self.config.port)
        try:
            while time.time() < stop_at:
                await self._one_dossier(connection)
        finally:
            connection.close()

    async def _one_dossier(self, connection: Connection) -> None:
        dossier = Dossier(id=None, started=time.time())
        self.dossiers.append(dossier)
        give_up_at = dossier.started + self.config.max_time_to_score
        response = await self._exchange(connection, self._post(self._take_siren()), give_up_at=give_up_at)
        if response is None:
            await asyncio.sleep(0.1)  # an error: do not spin
            return
        dossier.post_seconds = response.seconds
        found = ID_PATTERN.search(response.body)
        dossier.id = found.group(1).decode() if found else None
        status = _status_of(response.body)
        if response.status == 202 and self.config.mode == "wait":
            self.counters.wait_fallbacks += 1
        while status not in ("scored", "failed"):
            if dossier.id is None or time.time() > give_up_at:
                self.counters.error("timeout", f"dossier {dossier.id} not scored in {self.config.max_time_to_score} s")
                return
            await asyncio.sleep(POLL_INTERVAL_SECONDS)
            polled = await self._exchange(connection, self._get(dossier.id), give_up_at=give_up_at)
            status = _status_of(polled.body) if polled is not None else None
        dossier.ended, dossier.status = time.time(), status

    async def run(self) -> dict:
        started = time.time()
        stop_at = started + self.config.duration
        await asyncio.gather(*(self._partner(stop_at) for _ in range(self.config.concurrency)))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "started": started,
            "stopped": stop_at,
            "drained": time.time(),
            "next_siren": self.next_siren,
            "driver_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "counters": asdict(self.counters),
            "dossiers": [asdict(d) for d in self.dossiers],
        }


def _status_of(body: bytes) -> str | None:
    found = STATUS_PATTERN.search(body)  # the top-level "status" comes first in the representation
    return found.group(1).decode() if found else None


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value), 0.05), 30.0) if value else 1.0
    except ValueError:
        return 1.0


def drive_main(config_path: str, result_path: str) -> None:
    """Entry point of the driver process: read the config, run, write the result as JSON."""
    config = DriveConfig(**json.loads(Path(config_path).read_text()))
    result = asyncio.run(Driver(config).run())
    Path(result_path).write_text(json.dumps(result))


# --- The stack: database, broker, web, worker, beat ---------------------------------------------------------


def log(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


@dataclass
class StackOptions:
    database_url: str
    redis_url: str
    broker_db: int
    cache_db: int
    port: int
    companies: int
    web_workers: int
    web_threads: int
    worker_class: str
    celery_workers: int
    web_args: str
    worker_args: str
    rate_limit: int = UNLIMITED


class Stack:
    """The production stack on loopback, in its own var/ and log directory; stopped by ``stop()``."""

    def __init__(self, options: StackOptions, work_dir: Path) -> None:
        self.options = options
        self.work_dir = work_dir
        self.var_dir = work_dir / "var"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen] = {}
        redis = options.redis_url.rstrip("/")
        self.env = {
            **os.environ,
            "RISKOFFICE_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "riskoffice.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "0",
            "DATABASE_URL": options.database_url,
            "CELERY_BROKER_URL": f"{redis}/{options.broker_db}",
            "CACHE_URL": f"{redis}/{options.cache_db}",
            "RISKOFFICE_VAR_DIR": str(self.var_dir),
            "LOG_LEVEL": "WARNING",
        }
        self.env.pop("DATABASE_CONN_MAX_AGE", None)  # production keeps its default (persistent connections)
        self.base_url = f"http://127.0.0.1:{options.port}"

    # Set-up

    def reset_services(self) -> None:
        """Drop and create the database; flush the broker's and the cache's Redis databases."""
        import psycopg
        import redis

        url = urllib.parse.urlsplit(self.options.database_url)
        name = url.path.lstrip("/")
        admin_url = urllib.parse.urlunsplit(url._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        for db in (self.options.broker_db, self.options.cache_db):
            redis.Redis.from_url(f"{self.options.redis_url.rstrip('/')}/{db}").flushdb()

    def manage(self, *args: str, timeout: float = 900) -> str:
        result = subprocess.run(  # noqa: S603 - our own manage.py, arguments from this script
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        return result.stdout

    def prepare(self) -> tuple[str, str]:
        """Migrate, seed a history, train a champion, create the benchmark's client: its id and secret."""
        started = time.monotonic()
        self.manage("migrate", "--no-input", "-v", "0")
        self.manage("seed_demo", "--companies", str(self.options.companies))
        self.manage("train_model", "--if-no-champion")
        out = self.manage(
            "create_partner_client", "--name", "bench", "--scopes", "scores:write", "scores:read", "--sandbox",
            "--json", "--allowance", "unlimited", "--rate-limit", str(self.options.rate_limit),
        )  # fmt: skip
        credentials = json.loads(out.strip().splitlines()[-1])
        log(f"database ready in {time.monotonic() - started:.0f} s (migrate, seed, train, client)")
        return credentials["client_id"], credentials["client_secret"]

    # Processes

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        with (self.work_dir / f"{name}.log").open("a") as output:
            process = subprocess.Popen(  # noqa: S603 - the stack's own commands
                command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes[name] = process
        return process

    def start_web(self) -> None:
        o = self.options
        command = [str(BIN / "gunicorn"), "riskoffice.wsgi", "--bind", f"127.0.0.1:{o.port}"]
        command += ["--worker-class", o.worker_class, "--workers", str(o.web_workers), "--backlog", "2048"]
        if o.worker_class == "gthread":
            command += ["--threads", str(o.web_threads)]
        command += shlex.split(o.web_args)
        self._spawn("web", command)
        self._wait_for_health()

    def start_worker(self, concurrency: int | None = None) -> subprocess.Popen:
        concurrency = concurrency or self.options.celery_workers
        command = [str(BIN / "celery"), "-A", "riskoffice", "worker", "--concurrency", str(concurrency)]
        command += ["--loglevel", "WARNING", *shlex.split(self.options.worker_args)]
        return self._spawn("worker", command)

    def start_beat(self) -> None:
        schedule = str(self.var_dir / "celerybeat-schedule")
        self._spawn("beat", [str(BIN / "celery"), "-A", "riskoffice", "beat", "--loglevel", "WARNING", "-s", schedule])

    def kill_worker(self) -> int:
        """SIGKILL the worker's main process and its children (its process group); its pid."""
        process = self.processes.pop("worker")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return process.pid

    def stop_process(self, name: str, grace: float = 15) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for name in ("web", "worker", "beat"):
            self.stop_process(name)

    def _wait_for_health(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes["web"].poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log_tail('web')}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=5) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /healthz in {timeout} s:\n{self.log_tail('web')}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.work_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def tracebacks(self) -> dict[str, int]:
        counts = {}
        for name in ("web", "worker", "beat"):
            path = self.work_dir / f"{name}.log"
            counts[name] = path.read_text(errors="replace").count("Traceback") if path.exists() else 0
        return counts

    # HTTP from the orchestrator (a token, a smoke test)

    def token(self, client_id: str, client_secret: str) -> str:
        data = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        ).encode()
        with urllib.request.urlopen(f"{self.base_url}/o/token/", data=data, timeout=30) as answer:  # noqa: S310
            return json.load(answer)["access_token"]

    def score_one(self, token: str, siren: str, timeout: float = 120) -> float:
        """One dossier through the whole path (POST with Prefer: wait, then polling): seconds to its score."""
        started = time.monotonic()
        body = json.dumps({"company": {"siren": siren}, "requested_amount": 25000}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Prefer": "wait=10"}
        request = urllib.request.Request(f"{self.base_url}/api/v1/scores", data=body, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            representation = json.load(answer)
        while representation["status"] == "pending":
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"a smoke-test dossier was not scored in {timeout} s:\n{self.log_tail('worker')}")
            time.sleep(0.2)
            request = urllib.request.Request(  # noqa: S310 - loopback
                f"{self.base_url}/api/v1/scores/{representation['id']}", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
                representation = json.load(answer)
        if representation["status"] != "scored":
            raise RuntimeError(f"the smoke-test dossier ended {representation['status']}")
        return time.monotonic() - started


# --- Checking the database after a step -----------------------------------------------------------------

VERIFY_SCRIPT = textwrap.dedent(
    """
    import json, time
    from datetime import datetime, timezone
    from django.db.models import Count
    from dossiers.models import Dossier
    from scoring.models import Score
    request = json.load(open({path!r}))
    known, seen = set(request["known"]), set(request["seen"])
    mine = Dossier.objects.filter(api_client__application__client_id=request["client_id"])
    started = time.monotonic()
    while True:
        new = [str(pk) for pk in mine.values_list("pk", flat=True) if str(pk) not in known]
        pending = mine.filter(pk__in=new, status="pending").count()
        if not pending or time.monotonic() - started > request["settle"]:
            break
        time.sleep(0.5)
    waited = time.monotonic() - started
    statuses = dict(mine.filter(pk__in=new).values_list("status").annotate(n=Count("pk")).order_by())
    scores = dict(mine.filter(pk__in=new).annotate(n=Count("scores")).values_list("pk", "n"))
    begin, end = (datetime.fromtimestamp(t, tz=timezone.utc) for t in request["window"])
    stored = Score.objects.filter(dossier__in=new, created_at__gte=begin, created_at__lt=end).count()
    print(json.dumps({{
        "created": len(new),
        "answered": len(seen),
        "created_not_answered": len(set(new) - seen),
        "answered_not_in_db": len(seen - set(new)),
        "statuses": statuses,
        "settle_seconds": round(waited, 1),
        "without_score": sum(1 for n in scores.values() if n == 0),
        "scored_twice": sum(1 for n in scores.values() if n > 1),
        "scores_stored_in_window": stored,
        "ids": new,
    }}))
    """
)


def verify_step(
    stack: Stack,
    client_id: str,
    *,
    known: set[str],
    seen: set[str],
    settle: float,
    window: tuple[float, float] = (0.0, 0.0),
) -> dict:
    """Every dossier the step created was answered, ends scored, once; waits up to ``settle`` s for stragglers.

    Also counts the scores the database stored during ``window`` (epoch seconds): the server's throughput,
    whether or not the partners' polls saw them in time.
    """
    path = stack.work_dir / "verify.json"
    request = {"client_id": client_id, "known": sorted(known), "seen": sorted(seen), "settle": settle, "window": window}
    path.write_text(json.dumps(request))
    out = stack.manage("shell", "-c", VERIFY_SCRIPT.format(path=str(path)), timeout=settle + 300)
    result = json.loads(out.strip().splitlines()[-1])
    known.update(result.pop("ids"), seen)
    scored = result["statuses"].get("scored", 0)
    # Nothing lost: every dossier created ends with exactly one score, and every id a partner was given exists.
    result["none_lost"] = (
        scored == result["created"] and result["answered_not_in_db"] == 0 and result["scored_twice"] == 0
    ) and result["without_score"] == 0
    # OK: nothing lost, and every dossier created was answered to its partner (none gave up waiting).
    result["ok"] = result["none_lost"] and result["created_not_answered"] == 0
    return result


# --- Steps ----------------------------------------------------------------------------------------------


@dataclass
class Step:
    mode: str
    concurrency: int

    @property
    def label(self) -> str:
        return f"{self.mode}:{self.concurrency}"


def parse_steps(text: str) -> list[Step]:
    """``"wait:20,poll:100"`` → steps; a mode is poll or wait, a concurrency a positive integer."""
    steps = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        mode, _, count = item.partition(":")
        if mode not in MODES or not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"a step is poll:N or wait:N, got {item!r}")
        steps.append(Step(mode, int(count)))
    if not steps:
        raise argparse.ArgumentTypeError("no step given")
    return steps


@dataclass
class Run:
    """The state a run carries from step to step."""

    stack: Stack
    args: argparse.Namespace
    client_id: str
    client_secret: str
    known: set[str] = field(default_factory=set)
    next_siren: int = FIRST_SIREN_BASE


def run_step(run: Run, step: Step, *, kill_worker: bool = False) -> dict:
    """Drive one step from the driver process, sample the load average, check the database; the figures."""
    args, stack = run.args, run.stack
    config = DriveConfig(
        host="127.0.0.1",
        port=args.port,
        token=stack.token(run.client_id, run.client_secret),
        mode=step.mode,
        concurrency=step.concurrency,
        duration=args.duration,
        first_siren=run.next_siren,
        request_timeout=args.request_timeout,
        max_time_to_score=args.max_time_to_score + (args.kill_settle if kill_worker else 0),
    )
    config_path, result_path = stack.work_dir / "drive-config.json", stack.work_dir / "drive-result.json"
    config_path.write_text(json.dumps(asdict(config)))
    result_path.unlink(missing_ok=True)
    log(f"step {step.label}: {args.duration:g} s, {step.concurrency} partners")
    load_before = os.getloadavg()
    command = [PYTHON, __file__, "_drive", str(config_path), str(result_path)]
    driver = subprocess.Popen(command, cwd=ROOT)  # noqa: S603 - this script, as the load driver
    kill: dict | None = None
    try:
        loads = []
        kill_at = time.time() + args.warmup + (args.duration - args.warmup) / 2 if kill_worker else None
        while driver.poll() is None:
            loads.append(os.getloadavg()[0])
            if kill_at is not None and kill is None and time.time() >= kill_at:
                kill = kill_and_restart(stack, args.restart_after)
            time.sleep(0.5)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    if driver.returncode != 0:
        raise RuntimeError(f"the load driver failed (exit {driver.returncode})")
    result = json.loads(result_path.read_text())
    run.next_siren = result["next_siren"]
    dossiers = [Dossier(**d) for d in result["dossiers"]]
    begin = result["started"] + min(args.warmup, args.duration / 2)
    figures = step_figures(dossiers, begin=begin, end=result["stopped"])
    # With many partners the first round can outlast the warm-up, or the whole step: say so, and give the
    # figures over every dossier of the step as well.
    whole_step = step_figures(dossiers, begin=result["started"], end=result["stopped"])
    seen = {d.id for d in dossiers if d.id is not None}
    settle = args.settle + (args.kill_settle if kill_worker else 0)
    window = (begin, result["stopped"])
    verification = verify_step(stack, run.client_id, known=run.known, seen=seen, settle=settle, window=window)
    stored_per_second = round(verification["scores_stored_in_window"] / (window[1] - window[0]), 1)
    counters = result["counters"]
    outcome = {
        "step": step.label,
        "mode": step.mode,
        "concurrency": step.concurrency,
        "duration_s": args.duration,
        "warmup_s": round(begin - result["started"], 1),
        "requests": counters["http_requests"],
        **figures,
        "stored_per_second": stored_per_second,
        "whole_step": {
            **{key: whole_step[key] for key in ("dossiers", "time_to_score_s", "post_latency_s")},
            "scored_per_second": step_figures(dossiers, begin=result["started"], end=result["drained"] + 1e-3)[
                "scored_per_second"
            ],
        },
        "errors": {
            "non_2xx": counters["errors_non_2xx"],
            "connection": counters["connection_errors"],
            "timeouts": counters["timeouts"],
            "first": counters["first_error"],
        },
        "throttled_and_retried": counters["throttled"],
        "reconnects": counters["reconnects"],
        "wait_answered_202": counters["wait_fallbacks"],
        "drain_s": round(result["drained"] - result["stopped"], 1),
        "driver_cpu_s": result["driver_cpu_seconds"],
        "loadavg_1m": {
            "before": round(load_before[0], 2),
            "max": round(max(loads, default=0), 2),
            "after": round(os.getloadavg()[0], 2),
        },
        "verification": verification,
    }
    if kill is not None:
        outcome["kill_worker"] = kill_report(kill, dossiers, verification)
    log(summary_line(outcome))
    return outcome


def kill_and_restart(stack: Stack, restart_after: float) -> dict:
    killed_at = time.time()
    pid = stack.kill_worker()
    log(f"SIGKILLed the Celery worker (pid {pid}) and its children; restarting in {restart_after:g} s")
    time.sleep(restart_after)
    stack.start_worker()
    return {"killed_at": killed_at, "restarted_at": time.time(), "pid": pid}


def kill_report(kill: dict, dossiers: Sequence[Dossier], verification: dict) -> dict:
    """The dossiers requested before the kill and not yet scored when it came: how long they waited."""
    in_flight = [
        d
        for d in dossiers
        if d.id is not None and d.started < kill["killed_at"] and (d.ended or 1e18) > kill["killed_at"]
    ]
    waits = [d.ended - d.started for d in in_flight if d.ended is not None]
    return {
        "restart_after_s": round(kill["restarted_at"] - kill["killed_at"], 1),
        "in_flight": len(in_flight),
        "in_flight_scored": len(waits),
        "in_flight_time_to_score_s": distribution(waits),
        "lost": verification["statuses"].get("pending", 0) + verification["without_score"],
        "scored_twice": verification["scored_twice"],
    }


def summary_line(o: dict) -> str:
    t, p, v = o["time_to_score_s"], o["post_latency_s"], o["verification"]
    return (
        f"{o['step']}: {o['scored_per_second']} scored/s, "
        f"time-to-score p50/p95/p99 {t['p50']}/{t['p95']}/{t['p99']} s, "
        f"POST p50/p99 {p['p50']}/{p['p99']} s, errors {error_total(o)}, load {o['loadavg_1m']['max']}, "
        f"checked: {_check(v)}"
    )


def error_total(o: dict) -> int:
    e = o["errors"]
    return sum(e["non_2xx"].values()) + e["connection"] + e["timeouts"]


# --- Output ---------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def figures_table(steps: Sequence[dict]) -> str:
    header = (
        "| step | dossiers | requests | scored/s (stored/s) | time-to-score p50 / p95 / p99 "
        "| POST p50 / p95 / p99 | errors | 429/503 retried | load avg (max) | checked |"
    )
    rows = [header, "|" + "---|" * 10]
    for o in steps:
        t, p, v = o["time_to_score_s"], o["post_latency_s"], o["verification"]
        check = _check(v)
        throttled = sum(o["throttled_and_retried"].values())
        rows.append(
            f"| {o['step']} | {o['dossiers']} | {o['requests']} | {o['scored_per_second']} ({o['stored_per_second']}) "
            f"| {_ms(t['p50'])} / {_ms(t['p95'])} / {_ms(t['p99'])} "
            f"| {_ms(p['p50'])} / {_ms(p['p95'])} / {_ms(p['p99'])} "
            f"| {error_total(o)} | {throttled} | {o['loadavg_1m']['max']} | {check} |"
        )
    return "\n".join(rows)


def _check(v: dict) -> str:
    if v["ok"]:
        return "OK"
    if v["none_lost"]:
        return f"none lost; {v['created_not_answered']} created after the partner gave up"
    return "NOT OK " + json.dumps({k: x for k, x in v.items() if k not in ("ok", "none_lost")})


def details(o: dict) -> str:
    v = o["verification"]
    whole = o["whole_step"]
    lines = [
        f"{o['step']}: warm-up included: {whole['dossiers']} dossiers, time-to-score p50/p99 "
        f"{_ms(whole['time_to_score_s']['p50'])} / {_ms(whole['time_to_score_s']['p99'])}, POST p50/p99 "
        f"{_ms(whole['post_latency_s']['p50'])} / {_ms(whole['post_latency_s']['p99'])}, "
        f"{whole['scored_per_second']} scored/s from start to drained",
        f"  errors {json.dumps(o['errors'])}; 429/503 {o['throttled_and_retried']}; reconnects "
        f"{o['reconnects']}; Prefer: wait answered 202: {o['wait_answered_202']}; drain {o['drain_s']} s; "
        f"driver CPU {o['driver_cpu_s']} s; load before/max/after {o['loadavg_1m']}",
        f"  database: {v['created']} created, {v['answered']} answered, {v['created_not_answered']} created but not "
        f"answered, {v['answered_not_in_db']} answered but not in the database, statuses {v['statuses']} after "
        f"{v['settle_seconds']} s, {v['without_score']} without a score, {v['scored_twice']} scored twice",
    ]
    if o["dossiers"] < o["concurrency"]:
        lines.append(
            f"  WARNING: only {o['dossiers']} dossiers requested after the warm-up for {o['concurrency']} partners: "
            "the first round outlasted it; a longer --duration gives steadier figures"
        )
    if v["created_not_answered"] and o["errors"]["timeouts"] + o["errors"]["connection"]:
        lines.append(
            "  (dossiers created but not answered: the partner gave up on its request — a timeout or a connection "
            "error above — after the server had accepted it)"
        )
    if "kill_worker" in o:
        k = o["kill_worker"]
        waits = k["in_flight_time_to_score_s"]
        lines.append(
            f"  worker killed: {k['in_flight']} dossiers in flight, {k['in_flight_scored']} scored, longest "
            f"time-to-score {_ms(waits['max'])} (p50 {_ms(waits['p50'])}),"
            f" restarted after {k['restart_after_s']} s; lost {k['lost']}, scored twice {k['scored_twice']}"
        )
    return "\n".join(lines)


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
    }


# --- Orchestration --------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_stack(args: argparse.Namespace) -> Iterator[Run]:
    """A fresh stack for the run, stopped on exit, Ctrl-C or error (its logs are kept)."""
    work_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bench-api-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    options = StackOptions(
        database_url=args.database_url,
        redis_url=args.redis_url,
        broker_db=args.broker_db,
        cache_db=args.cache_db,
        port=args.port,
        companies=args.companies,
        web_workers=args.web_workers,
        web_threads=args.web_threads,
        worker_class=args.worker_class,
        celery_workers=args.celery_workers,
        web_args=args.web_args,
        worker_args=args.worker_args,
        rate_limit=args.rate_limit,
    )
    stack = Stack(options, work_dir)
    log(f"logs in {work_dir}")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.reset_services()
        client_id, client_secret = stack.prepare()
        stack.start_web()
        stack.start_worker()
        stack.start_beat()
        run = Run(stack, args, client_id, client_secret)
        smoke_test(run)
        yield run
    finally:
        stack.stop()
        signal.signal(signal.SIGTERM, previous)
        log(f"stack stopped; logs kept in {work_dir}")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def smoke_test(run: Run) -> None:
    """One dossier end to end before measuring (the worker is up, the champion loads); not counted."""
    seconds = run.stack.score_one(run.stack.token(run.client_id, run.client_secret), siren_for(run.next_siren))
    run.next_siren += 1
    verify_step(run.stack, run.client_id, known=run.known, seen=set(), settle=0)
    log(f"smoke test: one dossier scored in {seconds:.2f} s")


CAPACITY_SEED = """
import json, time
from decimal import Decimal
from dossiers.models import Company, Dossier
from riskoffice.models import ApiClient
client = ApiClient.objects.select_related("partner").get(application__client_id={client_id!r})
sirens = json.loads(open({path!r}).read())
started = time.monotonic()
companies = Company.objects.bulk_create(
    [Company(siren=s, vat="") for s in sirens], batch_size=2000, update_conflicts=True,
    unique_fields=["siren"], update_fields=["vat"],
)
Dossier.objects.bulk_create(
    [Dossier(partner=client.partner, api_client=client, company=c, requested_amount=Decimal(20000 + i % 50000))
     for i, c in enumerate(Company.objects.filter(siren__in=sirens))],
    batch_size=2000,
)
print(json.dumps({{"seconds": round(time.monotonic() - started, 1)}}))
"""

CAPACITY_WAKE = "from dossiers.tasks import score_pending\nfor _ in range({n}): score_pending.delay()"


def capacity(run: Run, count: int, workers: int) -> dict:
    """Scoring capacity alone: ``count`` pending dossiers written at once, then drained by ``workers`` processes.

    No HTTP: the dossiers are inserted as the API would leave them (pending, no message), the worker is
    restarted with ``workers`` processes and woken; the database's pending count is read every 0.5 s until
    it reaches zero. Figures: scored per second over the whole drain and over its middle 80 %.
    """
    import psycopg

    stack = run.stack
    stack.stop_process("worker")
    path = stack.work_dir / "capacity-sirens.json"
    path.write_text(json.dumps(sirens(run.next_siren, count)))
    run.next_siren += count
    seeded = json.loads(
        stack.manage("shell", "-c", CAPACITY_SEED.format(client_id=run.client_id, path=str(path))).splitlines()[-1]
    )
    log(f"capacity: {count} pending dossiers written in {seeded['seconds']} s; {workers} worker process(es)")
    stack.start_worker(workers)
    time.sleep(8)  # the worker's start (Django, XGBoost) is not scoring capacity
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    stack.manage("shell", "-c", CAPACITY_WAKE.format(n=workers))
    curve: list[tuple[float, int]] = []
    with psycopg.connect(stack.options.database_url, autocommit=True) as connection:
        while time.monotonic() - started < 900:
            (pending,) = connection.execute(
                "SELECT count(*) FROM dossiers_dossier d JOIN riskoffice_apiclient c ON c.id = d.api_client_id "
                "JOIN oauth2_provider_application a ON a.id = c.application_id "
                "WHERE a.client_id = %s AND d.status = 'pending'",
                [run.client_id],
            ).fetchone()
            curve.append((time.monotonic() - started, pending))
            if pending == 0:
                break
            time.sleep(0.5)
    load_max = os.getloadavg()[0]
    drained = curve[-1][0]
    # The middle 80 %: from 10 % scored to 90 % scored.
    t10 = next(t for t, p in curve if p <= count * 0.9)
    t90 = next(t for t, p in curve if p <= count * 0.1)
    verification = verify_step(stack, run.client_id, known=run.known, seen=set(), settle=60)
    return {
        "dossiers": count,
        "workers": workers,
        "drain_seconds": round(drained, 1),
        "scored_per_second": round(count / drained, 1) if drained else None,
        "scored_per_second_middle_80": round(0.8 * count / (t90 - t10), 1) if t90 > t10 else None,
        "load": {"before": round(load_before, 2), "after": round(load_max, 2)},
        "none_lost": verification["statuses"].get("scored", 0) >= count and verification["scored_twice"] == 0,
        "scored_twice": verification["scored_twice"],
    }


def compare_celery_workers(run: Run, counts: Sequence[int], step: Step) -> dict:
    """The same POST-and-poll step with each worker concurrency in turn; throughput relative to the first."""
    outcomes = []
    for count in counts:
        run.stack.stop_process("worker")
        run.stack.start_worker(count)
        smoke_test(run)
        outcome = run_step(run, step)
        outcome["celery_workers"] = count
        outcome["step"] = f"{step.label}, {count} Celery process{'es' if count > 1 else ''}"
        outcomes.append(outcome)
    return {"step": step.label, "runs": outcomes, "by_workers": throughput_by_workers(outcomes)}


def throughput_by_workers(outcomes: Sequence[dict]) -> list[dict]:
    """Mean scored/s (and stored/s) per worker count, over its runs, and its ratio to the first count's."""
    counts = list(dict.fromkeys(o["celery_workers"] for o in outcomes))
    rows = []
    for count in counts:
        runs = [o for o in outcomes if o["celery_workers"] == count]
        row = {"celery_workers": count, "runs": len(runs)}
        for key in ("scored_per_second", "stored_per_second"):
            row[key] = round(sum(o[key] or 0 for o in runs) / len(runs), 1)
        rows.append(row)
    for row in rows:
        for key in ("scored_per_second", "stored_per_second"):
            base = rows[0][key]
            row[f"{key}_ratio"] = round(row[key] / base, 2) if base else None
    return rows


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark of the partner API on the production stack (PostgreSQL, Redis, gunicorn, Celery).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=parse_steps, default=None, help=f"mode:concurrency,… (default {DEFAULT_STEPS})")
    parser.add_argument("--duration", type=float, default=20, help="seconds each step sends new requests")
    parser.add_argument("--warmup", type=float, default=3, help="first seconds of a step left out of the figures")
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON object")
    parser.add_argument("--kill-worker", action="store_true", help="SIGKILL the Celery worker mid-way in poll steps")
    parser.add_argument("--restart-after", type=float, default=3, help="with --kill-worker: seconds before a restart")
    parser.add_argument("--kill-settle", type=float, default=240, help="with --kill-worker: extra seconds to wait")
    parser.add_argument(
        "--compare-celery-workers",
        metavar="N,M",
        help="run --compare-step with each Celery worker concurrency in turn and print the throughput ratio",
    )
    parser.add_argument(
        "--compare-step", type=parse_steps, default=parse_steps("poll:100"), help="the step --compare-… runs (poll:100)"
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=0,
        metavar="N",
        help="after the steps: write N pending dossiers at once and time the workers draining them (no HTTP)",
    )
    parser.add_argument(
        "--capacity-workers",
        default="2",
        help="with --capacity: worker process counts to drain with, in turn (e.g. 1,2)",
    )
    stack = parser.add_argument_group("the stack")
    stack.add_argument("--port", type=int, default=8123, help="gunicorn listens on 127.0.0.1:PORT")
    stack.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread", help="gunicorn worker class")
    stack.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    stack.add_argument("--web-threads", type=int, default=8, help="threads per gunicorn process (gthread)")
    stack.add_argument("--celery-workers", type=int, default=2, help="Celery worker concurrency (processes)")
    stack.add_argument("--web-args", default="", help="more gunicorn arguments, e.g. '--keep-alive 5'")
    stack.add_argument("--worker-args", default="", help="more Celery worker arguments, e.g. '-Q scoring'")
    stack.add_argument(
        "--rate-limit",
        type=int,
        default=UNLIMITED,
        help="requests a minute the benchmark's client may make (lower it to see 429s honoured)",
    )
    stack.add_argument("--companies", type=int, default=2000, help="synthetic history to train the champion on")
    stack.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_api")
    stack.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    stack.add_argument("--broker-db", type=int, default=5)
    stack.add_argument("--cache-db", type=int, default=6)
    stack.add_argument("--log-dir", help="where logs and the var/ directory go (default: a new temporary directory)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--request-timeout", type=float, default=30, help="seconds before a request counts as lost")
    limits.add_argument("--max-time-to-score", type=float, default=120, help="a partner stops polling after this")
    limits.add_argument("--settle", type=float, default=60, help="seconds the check waits for pending dossiers")
    args = parser.parse_args(argv)
    if args.compare_celery_workers:
        args.compare_counts = [int(n) for n in args.compare_celery_workers.split(",")]
        if len(args.compare_counts) < 2 or min(args.compare_counts) < 1:
            parser.error("--compare-celery-workers takes two or more worker counts, e.g. 1,2")
    args.capacity_workers = [int(n) for n in args.capacity_workers.split(",")]
    if args.steps is None:
        args.steps = [] if (args.compare_celery_workers or args.capacity) else parse_steps(DEFAULT_STEPS)
    if args.warmup >= args.duration:
        parser.error("--warmup must be shorter than --duration")
    return args


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["_drive"]:
        drive_main(*argv[1:3])
        return 0
    args = parse_args(argv)
    report: dict = {"machine": machine(), "config": _config_of(args), "steps": []}
    with running_stack(args) as run:
        for step in args.steps:
            kill = args.kill_worker and step.mode == "poll"
            report["steps"].append(run_step(run, step, kill_worker=kill))
        if args.compare_celery_workers:
            report["compare_celery_workers"] = compare_celery_workers(run, args.compare_counts, args.compare_step[0])
        for workers in args.capacity_workers:
            if args.capacity:
                report.setdefault("capacity", []).append(capacity(run, args.capacity, workers))
        report["tracebacks_in_logs"] = run.stack.tracebacks()
    print_report(report, as_json=args.json)
    all_steps = report["steps"] + report.get("compare_celery_workers", {}).get("runs", [])
    capacity_ok = all(c["none_lost"] for c in report.get("capacity", []))
    # Saturation is a figure, not a failure: only a lost or twice-scored dossier fails the run.
    return 0 if capacity_ok and all(o["verification"]["none_lost"] for o in all_steps) else 1


def _config_of(args: argparse.Namespace) -> dict:
    names = ("duration", "warmup", "worker_class", "web_workers", "web_threads", "celery_workers", "web_args")
    return {name: getattr(args, name) for name in (*names, "worker_args", "companies", "kill_worker")}


def print_report(report: dict, *, as_json: bool) -> None:
    m, c = report["machine"], report["config"]
    out = [
        f"\n{m['date']}, {m['cpus']} × {m['cpu_model']}, Python {m['python']}; gunicorn {c['worker_class']} "
        f"{c['web_workers']} × {c['web_threads']}, Celery worker concurrency {c['celery_workers']}; "
        f"{c['duration']:g} s a step, first {c['warmup']:g} s left out",
    ]
    if report["steps"]:
        out += ["", figures_table(report["steps"]), ""]
        out += [details(o) for o in report["steps"]]
    compare = report.get("compare_celery_workers")
    if compare:
        out += ["", f"Celery worker processes, {compare['step']}:", figures_table(compare["runs"]), ""]
        out += [details(o) for o in compare["runs"]]
        out += [
            f"  {row['celery_workers']} worker process(es), mean of {row['runs']} run(s): "
            f"{row['scored_per_second']} scored/s (ratio {row['scored_per_second_ratio']}), "
            f"{row['stored_per_second']} stored/s (ratio {row['stored_per_second_ratio']})"
            for row in compare["by_workers"]
        ]
    for c in report.get("capacity", []):
        out.append(
            f"\nCapacity: {c['dossiers']} pending dossiers drained by {c['workers']} worker process(es) in "
            f"{c['drain_seconds']} s: {c['scored_per_second']} scored/s overall, "
            f"{c['scored_per_second_middle_80']} scored/s over the middle 80 %; load {c['load']}; "
            f"none lost: {c['none_lost']}, scored twice: {c['scored_twice']}"
        )
    out.append(f"\nTracebacks in the logs: {report['tracebacks_in_logs']}")
    sys.stdout.write("\n".join(out) + "\n")
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
