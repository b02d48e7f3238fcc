"""The demo's receiver stands in for a partner's ERP: it trusts only signed events, and keeps each one once.

It runs as `manage.py webhook_receiver` in its own process, as scripts/demo.sh runs it; requests are
signed by the independent Standard Webhooks library, as our deliveries would be. setup_demo points the
demo partner's endpoint at it and hands it the secret.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from standardwebhooks import Webhook

from alerts import signing
from alerts.events import EVENT_TYPES
from alerts.models import WebhookEndpoint
from dossiers.models import Dossier
from dossiers.selectors import GRANTED_DECISIONS
from riskoffice.management.commands.setup_demo import DEMO_RECEIVER_URL
from riskoffice.models import Partner

from .conftest import ROOT

DROPPED = {
    "id": "evt_5f0c",
    "type": "score.dropped",
    "timestamp": "2026-03-02T06:00:04+00:00",
    "data": {
        "company": {"siren": "552100554", "name": "Michelin"},
        "score": 540,
        "previous_score": 612,
        "delta": -72,
        "band": "C",
        "previous_band": "B",
    },
}


@dataclass
class RunningReceiver:
    url: str
    secret_file: Path
    log_file: Path
    output: Path

    def post(self, event: dict, *, secret: str, message_id: str, at: datetime | None = None) -> requests.Response:
        """The event signed with ``secret`` by the standardwebhooks library, POSTed as a delivery is."""
        body = json.dumps(event)
        at = at or datetime.now(UTC)
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, at, body),
            "content-type": "application/json",
        }
        return requests.post(self.url, data=body.encode(), headers=headers, timeout=10)

    def kept(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines()]

    def printed(self) -> str:
        return self.output.read_text()


@pytest.fixture
def receiver(tmp_path) -> Iterator[RunningReceiver]:
    """`manage.py webhook_receiver` in its own process, on a free port, with a secret file and a log of its own."""
    secret_file, log_file, output = tmp_path / "secret", tmp_path / "receiver.jsonl", tmp_path / "receiver.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "webhook_receiver",
                "--port",
                "0",
                "--secret-file",
                str(secret_file),
                "--log",
                str(log_file),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", output.read_text())):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the receiver did not start:\n{output.read_text()}")
        time.sleep(0.1)
    yield RunningReceiver(f"http://127.0.0.1:{found.group(1)}/hooks", secret_file, log_file, output)
    process.terminate()
    process.wait(timeout=10)


def test_a_signed_event_is_answered_204_kept_and_printed_on_one_line(receiver):
    secret = signing.secret_generate()
    receiver.secret_file.write_text(secret + "\n")

    response = receiver.post(DROPPED, secret=secret, message_id="msg_1")

    assert response.status_code == 204
    (kept,) = receiver.kept()
    assert kept["webhook_id"] == "msg_1"
    assert kept["type"] == "score.dropped" and kept["id"] == "evt_5f0c"
    assert kept["event"] == DROPPED
    line = next(line for line in receiver.printed().splitlines() if "msg_1" in line)
    assert "verified" in line and "score.dropped" in line
    assert "SIREN 552100554" in line and "612 -> 540 (-72)" in line and "band B -> C" in line


def test_a_bad_signature_is_refused_with_401_and_nothing_is_kept(receiver):
    receiver.secret_file.write_text(signing.secret_generate() + "\n")

    forged = receiver.post(DROPPED, secret=signing.secret_generate(), message_id="msg_forged")

    assert forged.status_code == 401
    assert receiver.kept() == []
    unsigned = requests.post(receiver.url, json=DROPPED, headers={"webhook-id": "msg_2"}, timeout=10)
    assert unsigned.status_code == 401
    assert receiver.kept() == []


def test_a_replayed_old_delivery_is_refused(receiver):
    secret = signing.secret_generate()
    receiver.secret_file.write_text(secret + "\n")

    stale = receiver.post(DROPPED, secret=secret, message_id="msg_old", at=datetime.now(UTC) - timedelta(hours=1))

    assert stale.status_code == 401
    assert receiver.kept() == []


def test_a_retry_with_the_same_webhook_id_is_acknowledged_but_kept_once(receiver):
    secret = signing.secret_generate()
    receiver.secret_file.write_text(secret + "\n")

    first = receiver.post(DROPPED, secret=secret, message_id="msg_retried")
    retry = receiver.post(DROPPED, secret=secret, message_id="msg_retried")
    other = receiver.post(DROPPED, secret=secret, message_id="msg_other")

    assert first.status_code == retry.status_code == other.status_code == 204
    assert [k["webhook_id"] for k in receiver.kept()] == ["msg_retried", "msg_other"]
    assert "duplicate msg_retried" in receiver.printed()


def test_during_a_rotation_either_secret_verifies(receiver):
    old, new = signing.secret_generate(), signing.secret_generate()
    receiver.secret_file.write_text(f"{new}\n{old}\n")

    assert receiver.post(DROPPED, secret=old, message_id="msg_old_secret").status_code == 204
    assert receiver.post(DROPPED, secret=new, message_id="msg_new_secret").status_code == 204
    both = json.dumps(DROPPED).encode()
    headers = signing.headers(secrets_=[new, old], message_id="msg_both", timestamp=int(time.time()), body=both)
    assert requests.post(receiver.url, data=both, headers=headers, timeout=10).status_code == 204
    assert len(receiver.kept()) == 3


def test_before_setup_demo_wrote_a_secret_everything_is_refused(receiver):
    response = receiver.post(DROPPED, secret=signing.secret_generate(), message_id="msg_early")
    assert response.status_code == 401
    assert "no secret" in response.text


def test_a_digest_prints_each_event_it_carries(receiver):
    secret = signing.secret_generate()
    receiver.secret_file.write_text(secret + "\n")
    changed = {**DROPPED, "id": "evt_2", "type": "score.changed"}
    digest = {"id": "evt_d", "type": "digest.daily", "timestamp": "2026-03-03T06:00:00+00:00", "data": {}}
    digest["data"]["events"] = [changed, {**changed, "id": "evt_3"}]

    assert receiver.post(digest, secret=secret, message_id="msg_digest").status_code == 204

    printed = receiver.printed()
    assert "digest.daily" in printed and "2 events" in printed
    assert printed.count("score.changed") == 2


def test_the_receiver_refuses_to_run_in_production(settings):
    settings.RISKOFFICE_ENV = "production"
    with pytest.raises(CommandError, match="production"):
        call_command("webhook_receiver", "--port", "0")


# --- setup_demo points the demo partner at it -----------------------------------------------------------


@pytest.mark.django_db
def test_setup_demo_registers_one_endpoint_for_every_event_and_gives_the_receiver_its_secret(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("setup_demo", "--no-samples", stdout=out)
    call_command("setup_demo", "--no-samples", stdout=StringIO())  # run twice: still one endpoint

    partner = Partner.objects.get(name="Demo Marketplace")
    (endpoint,) = WebhookEndpoint.objects.filter(partner=partner)
    assert endpoint.url == DEMO_RECEIVER_URL and endpoint.is_active
    assert all(endpoint.wants(event_type) for event_type in EVENT_TYPES)
    assert (tmp_path / "demo-webhook-secret").read_text().split() == [endpoint.secret]
    assert (tmp_path / "demo-webhook-secret").stat().st_mode & 0o777 == 0o600
    assert DEMO_RECEIVER_URL in out.getvalue()
    assert partner.technical_contact_email, "told by e-mail if the endpoint is disabled"
    assert User.objects.get(username="analyst").email, "alert e-mails reach the demo analyst"


@pytest.mark.django_db
def test_setup_demo_replaces_an_endpoint_that_was_disabled_meanwhile(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("setup_demo", "--no-samples", stdout=StringIO())
    WebhookEndpoint.objects.update(is_active=False, disabled_reason="The receiver answered 410 Gone.")

    call_command("setup_demo", "--no-samples", stdout=StringIO())

    (endpoint,) = WebhookEndpoint.objects.all()
    assert endpoint.is_active
    assert (tmp_path / "demo-webhook-secret").read_text().split() == [endpoint.secret]


@pytest.mark.django_db
def test_setup_demo_prints_the_one_command_that_records_an_insolvency_on_an_exposed_company(
    settings, tmp_path, champion
):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("setup_demo", stdout=out)

    printed = out.getvalue()
    command = re.search(r"curl -s -X POST \S+/api/v1/events .*?'(\{.*?\})'", printed, re.DOTALL)
    assert command, printed
    event = json.loads(command.group(1))
    assert event["kind"] == "insolvency_proceeding"
    exposed = Dossier.objects.filter(
        partner__name="Demo Marketplace",
        company__siren=event["company"]["siren"],
        decision__in=GRANTED_DECISIONS,
        outcome__isnull=True,
    )
    assert exposed.exists(), "the command names a company the demo partner holds open exposure on"


@pytest.mark.django_db
def test_setup_demo_without_private_urls_allowed_still_sets_up_the_demo_and_says_why_no_webhook(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    out = StringIO()
    call_command("setup_demo", "--no-samples", stdout=out)

    assert not WebhookEndpoint.objects.exists()
    assert "no endpoint registered for the demo receiver" in out.getvalue()
    assert "127.0.0.1" in out.getvalue() and "loopback" in out.getvalue()
