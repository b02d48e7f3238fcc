"""The embedded default (SQLite under var/, no service) holds real concurrent use behind gunicorn.

Always on SQLite, whatever DATABASE_URL the suite runs with: a fresh var/ directory, the environment
of a newcomer's machine (no DATABASE_URL, CELERY_BROKER_URL or CACHE_URL), ``manage.py migrate``, a
sandbox client made by ``manage.py create_partner_client``, gunicorn as ``scripts/demo.sh`` runs it,
then 50 partners' requests at once.

The same harness measures it (docs/benchmarks.md, "Concurrent API requests on the embedded SQLite"):

    .venv/bin/python -m tests.test_embedded_concurrency            # WAL + IMMEDIATE, gunicorn 2 x 8
    .venv/bin/python -m tests.test_embedded_concurrency --before   # the former settings and runserver
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from stdnum import luhn

ROOT = Path(__file__).resolve().parent.parent
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DATABASE_CONN_MAX_AGE")

# The DATABASES options before WAL and IMMEDIATE, for measuring what they changed (--before).
BEFORE_SETTINGS = """
from riskoffice.settings import *  # noqa: F403
DATABASES["default"]["OPTIONS"] = {"timeout": 20}  # noqa: F405
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def luhn_sirens(count: int, first: int = 10_000_000) -> list[str]:
    """``count`` distinct 9-digit SIRENs with a valid Luhn key."""
    return [f"{base:08d}" + luhn.calc_check_digit(f"{base:08d}") for base in range(first, first + count)]


@contextmanager
def serving(
    env: dict[str, str], log_path: Path, *, server: str = "gunicorn", workers: int = 2, threads: int = 8
) -> Iterator[str]:
    """The site served on a free local port, as scripts/demo.sh serves it (or runserver); yields its base URL."""
    port = free_port()
    if server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "riskoffice.wsgi", "-b", f"127.0.0.1:{port}"]
        command += ["-k", "gthread", "-w", str(workers), "--threads", str(threads), "--no-control-socket"]
    else:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base_url, process, log_path)
        yield base_url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_up(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited at start:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or a worker still importing the project
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer in {timeout} s:\n{log_path.read_text()[-3000:]}")


@dataclass
class EmbeddedSite:
    """A newcomer's installation in its own var/ directory: SQLite, filesystem broker, file cache."""

    var_dir: Path
    before: bool = False
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.env = {name: value for name, value in os.environ.items() if name not in SERVICE_VARIABLES}
        self.env.update(RISKOFFICE_VAR_DIR=str(self.var_dir), DJANGO_SETTINGS_MODULE="riskoffice.settings")
        if self.before:
            (self.var_dir / "before_settings.py").write_text(BEFORE_SETTINGS)
            self.env.update(DJANGO_SETTINGS_MODULE="before_settings", PYTHONPATH=str(self.var_dir))

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def set_up(self) -> tuple[str, str]:
        """Migrate; a sandbox client whose allowance and rate limit no load test reaches; its id and secret."""
        self.manage("migrate", "--no-input", "-v", "0")
        out = self.manage(
            "create_partner_client", "--name", "Load Partner", "--scopes", "scores:write", "scores:read",
            "--sandbox", "--json",
        )  # fmt: skip
        credentials = json.loads(out.strip().splitlines()[-1])
        self.manage(
            "shell",
            "-c",
            "from riskoffice.models import ApiClient; "
            f"ApiClient.objects.filter(application__client_id={credentials['client_id']!r})"
            ".update(sandbox_allowance=1_000_000, rate_limit_per_minute=1_000_000)",
        )
        return credentials["client_id"], credentials["client_secret"]

    def dossier_count(self) -> int:
        out = self.manage("shell", "-c", "from dossiers.models import Dossier; print(Dossier.objects.count())")
        return int(out.strip().splitlines()[-1])  # the shell may first say what it imported


@dataclass
class LoadResult:
    statuses: Counter
    errors: list[str]
    latencies: list[float]
    wall_seconds: float

    def summary(self) -> dict:
        ordered = sorted(self.latencies) or [0.0]
        return {
            "statuses": dict(self.statuses),
            "connection_errors": len(self.errors),
            "first_connection_error": self.errors[0][:160] if self.errors else None,
            "wall_s": round(self.wall_seconds, 2),
            "latency_p50_s": round(statistics.median(ordered), 3),
            "latency_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
            "latency_max_s": round(ordered[-1], 3),
        }


def post_scores_at_once(base_url: str, client_id: str, client_secret: str, sirens: list[str]) -> LoadResult:
    """One POST /api/v1/scores per SIREN, all released at the same instant from their own threads."""
    token_response = requests.post(
        f"{base_url}/o/token/", data={"grant_type": "client_credentials"}, auth=(client_id, client_secret), timeout=30
    )
    assert token_response.status_code == 200, token_response.text
    headers = {"Authorization": f"Bearer {token_response.json()['access_token']}"}
    start_line = threading.Barrier(len(sirens))

    def post(siren: str) -> tuple[int | str, float]:
        start_line.wait()
        started = time.perf_counter()
        try:
            response = requests.post(
                f"{base_url}/api/v1/scores",
                json={"company": {"siren": siren}, "requested_amount": 25000},
                headers=headers,
                timeout=120,
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}", time.perf_counter() - started
        return response.status_code, time.perf_counter() - started

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(sirens)) as pool:
        outcomes = list(pool.map(post, sirens))
    wall = time.perf_counter() - began
    statuses = Counter(outcome for outcome, _ in outcomes if isinstance(outcome, int))
    errors = [outcome for outcome, _ in outcomes if isinstance(outcome, str)]
    return LoadResult(statuses, errors, [seconds for _, seconds in outcomes], wall)


def test_fifty_partners_posting_at_once_on_the_embedded_default_all_get_202(tmp_path):
    site = EmbeddedSite(tmp_path / "var")
    client_id, client_secret = site.set_up()
    sirens = luhn_sirens(50)

    with serving(site.env, tmp_path / "web.log") as base_url:
        result = post_scores_at_once(base_url, client_id, client_secret, sirens)

    assert result.errors == [], result.errors
    assert result.statuses == Counter({202: 50}), (result.summary(), (tmp_path / "web.log").read_text()[-3000:])
    assert site.dossier_count() == 50
    assert "Traceback" not in (tmp_path / "web.log").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description="Concurrent POST /api/v1/scores against the embedded SQLite.")
    parser.add_argument("--before", action="store_true", help="former DATABASES options (no WAL/IMMEDIATE), runserver")
    parser.add_argument("--server", choices=["gunicorn", "runserver"], help="default: runserver with --before")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    server = args.server or ("runserver" if args.before else "gunicorn")
    with tempfile.TemporaryDirectory(prefix="riskoffice-load-") as tmp:
        site = EmbeddedSite(Path(tmp) / "var", before=args.before)
        client_id, client_secret = site.set_up()
        with serving(site.env, Path(tmp) / "web.log", server=server) as base_url:
            result = post_scores_at_once(base_url, client_id, client_secret, luhn_sirens(args.requests))
        log = (Path(tmp) / "web.log").read_text()
        summary = {"settings": "before" if args.before else "current", "server": server, **result.summary()}
        summary.update(dossiers=site.dossier_count(), database_locked_in_log=log.count("database is locked"))
        sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
