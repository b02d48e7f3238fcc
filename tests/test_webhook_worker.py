"""Fault test with a real Celery worker and the configured broker (Redis in CI): events written while no
worker runs are delivered once the worker is back, each exactly once per webhook-id; a rolled-back change
sends nothing; a failed attempt is retried by beat's sweep under the same webhook-id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from alerts.models import WebhookDelivery
from alerts.services import events_publish, webhook_endpoint_create
from riskoffice.audit import Actor

from .conftest import ROOT, _database_url

pytestmark = pytest.mark.django_db(transaction=True)


class CountingReceiver:
    """Records each request with the status it answered; answers 500 to the webhook-ids in ``fail_once`` once."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[dict] = []
        self.fail_once: set[str] = set()
        self.lock = threading.Lock()

    def delivered(self) -> list[dict]:
        return [r for r in self.requests if r["status"] < 300]

    def wait_delivered(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.delivered()) < count and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture
def receiver() -> Iterator[CountingReceiver]:
    receiver = CountingReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                status = 204
                if headers["webhook-id"] in receiver.fail_once:
                    receiver.fail_once.discard(headers["webhook-id"])
                    status = 500
                receiver.requests.append({"headers": headers, "body": body, "status": status})
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver
    server.shutdown()
    server.server_close()


def _environment() -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=_database_url(), DJANGO_SETTINGS_MODULE="riskoffice.settings")


def worker_start(tmp_path: Path, name: str) -> subprocess.Popen:
    """A real `celery worker --beat`, as in production (the beat sweep included); waits until it is ready."""
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "riskoffice",
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / f"{name}-beat-schedule"),
                "--hostname",
                f"{name}-{os.getpid()}@%h",
            ],
            env=_environment(),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text() and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the worker exited at start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    process.log_path = log
    return process


def worker_stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def workers(tmp_path) -> Iterator[list[subprocess.Popen]]:
    """The workers a test starts, each stopped at the end; the broker's queues are purged first."""
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "riskoffice", "purge", "-f"],
        env=_environment(),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            worker_stop(process)


def publish_committed(partner_id: int, n: int) -> list[WebhookDelivery]:
    with transaction.atomic():
        return events_publish([(partner_id, "score.completed", {"n": n})])


def test_events_written_while_the_worker_is_down_each_arrive_once_per_webhook_id(
    marketplace, receiver, workers, tmp_path
) -> None:
    _, secret = webhook_endpoint_create(
        partner=marketplace.partner, url=receiver.url, event_types=[], actor=Actor(client=marketplace.api_client)
    )
    partner_id = marketplace.partner.pk
    workers.append(worker_start(tmp_path, "first"))
    publish_committed(partner_id, 0)
    receiver.wait_delivered(1, timeout=30)
    assert len(receiver.delivered()) == 1, workers[0].log_path.read_text()[-3000:]

    worker_stop(workers[0])
    written = [publish_committed(partner_id, n)[0] for n in range(1, 6)]
    with pytest.raises(RuntimeError), transaction.atomic():
        events_publish([(partner_id, "score.completed", {"n": "rolled back"})])
        raise RuntimeError("the change failed")
    receiver.fail_once.add(written[0].message_id)  # its first attempt fails: beat's sweep retries it
    time.sleep(1)
    assert len(receiver.requests) == 1  # nothing is sent while no worker runs

    workers.append(worker_start(tmp_path, "second"))
    receiver.wait_delivered(6, timeout=90)
    time.sleep(12)  # one more sweep of beat (every 10 s): it must not send anything twice

    log = workers[1].log_path.read_text()[-3000:]
    delivered = Counter(r["headers"]["webhook-id"] for r in receiver.delivered())
    expected = set(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert len(expected) == 6
    assert set(delivered) == expected, log
    assert all(count == 1 for count in delivered.values()), delivered
    assert [r["headers"]["webhook-id"] for r in receiver.requests].count(written[0].message_id) == 2
    bodies = [Webhook(secret).verify(r["body"], r["headers"]) for r in receiver.delivered()]
    assert sorted(body["data"]["n"] for body in bodies) == [0, 1, 2, 3, 4, 5]
    assert "rolled back" not in json.dumps(bodies)
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {WebhookDelivery.Status.DELIVERED}
