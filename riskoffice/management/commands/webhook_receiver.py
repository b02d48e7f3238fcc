"""A partner's receiver for the demo: verifies each webhook, keeps each event once, says what it heard.

It stands in for a partner's ERP (docs/webhooks.md, "Receiving"): a request whose Standard Webhooks
signature does not verify with the endpoint's secret is refused with 401; a ``webhook-id`` already
received is answered 204 again and not kept twice (retries and redeliveries reuse it); every verified
event is printed on one line and appended as a JSON line to ``--log``.

The secret is read from ``--secret-file`` at each request, one secret a line (``setup_demo`` writes it;
during a rotation put the new one beside the old): the receiver can start before the endpoint exists.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from alerts import signing
from riskoffice.management.devonly import refuse_in_production

MAX_BODY_BYTES = 1024 * 1024  # a digest of a busy day stays far below this


def default_secret_file() -> Path:
    return settings.VAR_DIR / "demo-webhook-secret"


def default_log_file() -> Path:
    return settings.VAR_DIR / "log" / "receiver.jsonl"


def read_secrets(path: Path) -> list[str]:
    """The secrets in the file, one a line; none while it does not exist yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip().startswith(signing.SECRET_PREFIX)]


def summary(event: dict[str, Any]) -> str:
    """One line about an event: its type, the company, and the score's move when it has one."""
    data = event.get("data") or {}
    parts = [str(event.get("type", "?"))]
    company = data.get("company") or {}
    if company.get("siren"):
        parts.append(f"SIREN {company['siren']}")
    if data.get("score") is not None:
        if data.get("previous_score") is not None:
            delta = data.get("delta", data["score"] - data["previous_score"])
            parts.append(f"score {data['previous_score']} -> {data['score']} ({delta:+d})")
        else:
            parts.append(f"score {data['score']}")
    if data.get("previous_band") and data.get("band") and data["previous_band"] != data["band"]:
        parts.append(f"band {data['previous_band']} -> {data['band']}")
    negative = data.get("event") or {}
    if negative.get("kind"):
        parts.append(f"{negative['kind']} on {negative.get('occurred_on', '?')} ({negative.get('source', '?')})")
    if event.get("type") == "digest.daily":
        parts.append(f"{len(data.get('events') or [])} events")
    return "  ".join(parts)


class Receiver:
    """What the handler shares: the secret file, the log, and the webhook-ids already kept."""

    def __init__(self, *, secret_file: Path, log_file: Path, tolerance: int, write) -> None:
        self.secret_file = secret_file
        self.log_file = log_file
        self.tolerance = tolerance
        self.write = write
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        if log_file.exists():  # a restarted receiver still knows what it kept
            for line in log_file.read_text().splitlines():
                try:
                    self.seen.add(json.loads(line)["webhook_id"])
                except (ValueError, KeyError, TypeError):
                    continue

    def receive(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """(status, what happened) for one request."""
        secrets_ = read_secrets(self.secret_file)
        if not secrets_:
            return 401, f"no secret in {self.secret_file} yet"
        if not signing.verify(secrets_=secrets_, headers=headers, body=body, tolerance_seconds=self.tolerance):
            return 401, "signature does not verify"
        try:
            event = json.loads(body)
        except ValueError:
            return 400, "the body is not JSON"
        webhook_id = headers["webhook-id"]
        with self.lock:
            if webhook_id in self.seen:
                return 204, f"duplicate {webhook_id}, already kept"
            self.seen.add(webhook_id)
            record = {
                "received_at": datetime.now(UTC).isoformat(),
                "webhook_id": webhook_id,
                "id": event.get("id"),
                "type": event.get("type"),
                "event": event,
            }
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with self.log_file.open("a") as log:
                log.write(json.dumps(record, sort_keys=True) + "\n")
        lines = [f"{webhook_id}  {summary(event)}"]
        if event.get("type") == "digest.daily":
            lines += [f"    {summary(inner)}" for inner in (event.get("data") or {}).get("events") or []]
        return 204, "\n".join(lines)


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "riskoffice-demo-receiver/1"

        def do_POST(self) -> None:  # the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, "too large")
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, said = receiver.receive(headers, body)
            mark = "verified" if status == 204 and not said.startswith("duplicate") else f"{status}"
            receiver.write(f"[{datetime.now(UTC):%H:%M:%S}] {mark:8}  {said}")
            self._answer(status, "" if status == 204 else said)

        def do_GET(self) -> None:  # a health check for scripts
            self._answer(200, f"riskoffice demo receiver: {len(receiver.seen)} events kept\n")

        def _answer(self, status: int, text: str) -> None:
            self.send_response(status)
            if status == 204:
                self.end_headers()
                return
            body = text.encode()
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # one line per event is printed above, not the access log

    return Handler


class Command(BaseCommand):
    help = "Run the demo's webhook receiver: verify signatures (401 if bad), dedupe on webhook-id, log events."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8010)
        parser.add_argument(
            "--secret-file", type=Path, default=None, help="One whsec_ secret a line (default var/demo-webhook-secret)."
        )
        parser.add_argument(
            "--log", type=Path, default=None, help="JSON lines of the events kept (default var/log/receiver.jsonl)."
        )
        parser.add_argument("--tolerance", type=int, default=300, help="Seconds a webhook-timestamp may be off.")

    def handle(self, *args, host: str, port: int, secret_file, log, tolerance: int, **options) -> None:
        refuse_in_production("webhook_receiver")
        secret_file = secret_file or default_secret_file()
        log = log or default_log_file()

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        receiver = Receiver(secret_file=secret_file, log_file=log, tolerance=tolerance, write=write)
        try:
            server = ThreadingHTTPServer((host, port), handler_for(receiver))
        except OSError as error:
            raise CommandError(f"Cannot listen on {host}:{port}: {error.strerror}.") from None
        address = f"http://{host}:{server.server_address[1]}/"
        write(f"Demo webhook receiver on {address}  (secret: {secret_file}; log: {log})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
