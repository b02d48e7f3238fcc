"""The BODACC check of monitored SIRENs, against a real local HTTP server standing in for BODACC.

New opening judgments become insolvency events, deposits of accounts become accounts_published, each
once (by its BODACC id); an outage records nothing for the SIREN, never half of its notices.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from alerts.bodacc_watch import bodacc_check_companies
from alerts.events import COMPANY_ACCOUNTS_PUBLISHED, COMPANY_INSOLVENCY_PROCEEDING
from alerts.models import Alert, NegativeEvent
from alerts.monitoring_tasks import bodacc_check, bodacc_check_batch
from riskoffice.celery import app as celery_app
from riskoffice.models import AuditEvent

from .conftest import PartnerClient
from .test_monitoring import deliveries, monitored_lender, scored_dossier

pytestmark = pytest.mark.django_db
BODACC = "/api/explore/v2.1/catalog/datasets/annonces-commerciales/records"


@dataclass
class Answer:
    status: int = 200
    body: Any = None


@dataclass
class FakeBodacc:
    """A local HTTP server answering BODACC's records path: answers in turn (the last repeats), or a route."""

    url: str = ""
    answers: list[Answer | Callable[[dict[str, Any]], Answer]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, path: str, *answers: Answer | Callable[[dict[str, Any]], Answer]) -> None:
        assert path == BODACC
        self.answers = list(answers)

    def calls(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def apis(settings) -> Iterator[FakeBodacc]:
    fake = FakeBodacc()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            request = {"path": parts.path, "query": {k: v[0] for k, v in parse_qs(parts.query).items()}}
            fake.requests.append(request)
            queue = fake.answers if parts.path == BODACC else []
            answer = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Answer(404, {})
            answer = answer(request) if callable(answer) else answer
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.BODACC_URL = fake.url
    settings.SOURCE_TIMEOUT_SECONDS = 2
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def lender(db) -> PartnerClient:
    return monitored_lender("Monitored Lender")


OPENING = {
    "date": "2026-11-10",
    "type": "initial",
    "famille": "Jugement d'ouverture",
    "nature": "Jugement d'ouverture d'une procédure de redressement judiciaire",
}
CLOSURE = {
    "date": "2026-11-12",
    "famille": "Jugement de clôture",
    "nature": "Jugement de clôture pour extinction du passif",
}


def notice(siren: str, record_id: str, *, jugement: dict | None = None, family: str = "collective", **extra) -> dict:
    record = {
        "id": record_id,
        "dateparution": "2026-11-14",
        "typeavis": "annonce",
        "familleavis": family,
        "tribunal": "TRIBUNAL DE COMMERCE DE BORDEAUX",
        "registre": f"{siren[:3]} {siren[3:6]} {siren[6:]},{siren}",
        **extra,
    }
    if jugement is not None:
        record["jugement"] = json.dumps(jugement, ensure_ascii=False)
    return record


def by_siren(notices: dict[str, list[dict]], *, failing: set[str] = frozenset()):
    """A route answering each SIREN's where clause with its notices (or a 503 for a failing one)."""

    def answer(request: dict[str, Any]) -> Answer:
        siren = next((s for s in [*notices, *failing] if f'registre="{s}"' in request["query"]["where"]), None)
        if siren in failing:
            return Answer(503, {"error": "maintenance"})
        records = notices.get(siren, [])
        return Answer(200, {"total_count": len(records), "results": records})

    return answer


@pytest.fixture
def today():
    return timezone.localdate()


def test_a_new_opening_judgment_is_recorded_once_alerts_and_is_sent(apis, champion, lender, today):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    siren = dossier.company.siren
    apis.answer(
        BODACC,
        by_siren(
            {
                siren: [
                    notice(siren, "B-OPEN-1", jugement=OPENING),
                    notice(siren, "B-CLOSE-1", jugement=CLOSURE),  # not an event
                    notice(siren, "B-CANCEL", jugement=OPENING, typeavis="annulation"),
                ]
            }
        ),
    )

    first = bodacc_check_companies([dossier.company_id], today=today)
    again = bodacc_check_companies([dossier.company_id], today=today)  # the same notice, seen the next day

    event = NegativeEvent.objects.get()
    assert first.recorded == [event.pk] and again.recorded == [] and not first.failed
    assert (event.kind, event.source, event.external_id, event.company) == (
        "insolvency_proceeding",
        "bodacc",
        "B-OPEN-1",
        dossier.company,
    )
    assert event.occurred_on.isoformat() == "2026-11-10"
    assert event.details["tribunal"] == "TRIBUNAL DE COMMERCE DE BORDEAUX"
    assert event.details["jugement"] == OPENING["nature"] and event.details["proceeding"] == "redressement"
    assert Alert.objects.get().negative_event == event
    (delivery,) = deliveries(COMPANY_INSOLVENCY_PROCEEDING, lender.partner)
    assert delivery.payload["data"]["event"]["source"] == "bodacc"
    assert delivery.payload["data"]["event"]["details"]["bodacc_id"] == "B-OPEN-1"
    assert AuditEvent.objects.filter(action="negative_event.found", actor_system="bodacc_check").count() == 1
    query = apis.calls(BODACC)[0]["query"]
    since = (today - timedelta(days=30)).isoformat()
    assert query["where"] == (
        f'registre="{siren}" AND (familleavis="collective" OR familleavis="dpc") AND dateparution>=date\'{since}\''
    )


def test_a_deposit_of_accounts_is_accounts_published_without_an_alert(apis, champion, lender, today):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    siren = dossier.company.siren
    deposit = {"dateCloture": "2025-12-31", "typeDepot": "Comptes annuels et rapports"}
    apis.answer(BODACC, by_siren({siren: [notice(siren, "C-DPC-1", family="dpc", depot=json.dumps(deposit))]}))

    bodacc_check_companies([dossier.company_id], today=today)

    event = NegativeEvent.objects.get()
    assert (event.kind, event.external_id) == ("accounts_published", "C-DPC-1")
    assert event.details["closing_date"] == "2025-12-31"
    assert not Alert.objects.exists()
    assert [d.event_type for d in deliveries()] == [COMPANY_ACCOUNTS_PUBLISHED]


def test_an_outage_records_nothing_for_that_siren_and_the_others_go_on(apis, champion, lender, today):
    down = scored_dossier(0, champion, partner=lender.partner)
    up = scored_dossier(1, champion, partner=lender.partner)
    apis.answer(
        BODACC,
        by_siren(
            {up.company.siren: [notice(up.company.siren, "B-UP", jugement=OPENING)]},
            failing={down.company.siren},
        ),
    )

    report = bodacc_check_companies([down.company_id, up.company_id], today=today)

    assert list(report.failed) == [down.company.siren] and "HTTP 503" in report.failed[down.company.siren]
    assert list(NegativeEvent.objects.values_list("company_id", flat=True)) == [up.company_id]
    assert Alert.objects.count() == 1


def test_a_failing_second_page_records_none_of_the_first(apis, champion, lender, today):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    siren = dossier.company.siren
    page = [notice(siren, f"B-{i:03d}", jugement=OPENING) for i in range(100)]
    apis.answer(BODACC, Answer(200, {"total_count": 150, "results": page}), Answer(503, {"error": "down"}))

    report = bodacc_check_companies([dossier.company_id], today=today)

    assert report.failed and not NegativeEvent.objects.exists() and not Alert.objects.exists()


def test_only_monitored_sirens_are_read_and_the_command_says_what_it_did(apis, champion, lender):
    monitored = scored_dossier(0, champion, partner=lender.partner)
    declined = scored_dossier(1, champion, partner=lender.partner, decision="decline")
    siren = monitored.company.siren
    apis.answer(BODACC, by_siren({siren: [notice(siren, "B-CMD", jugement=OPENING)]}))
    out, err = io.StringIO(), io.StringIO()

    call_command("monitor", "--check-bodacc", stdout=out, stderr=err)

    assert "BODACC: 1 SIREN(s) checked, 1 new notice(s) recorded, 0 failed." in out.getvalue()
    assert [call["query"]["where"].split('"')[1] for call in apis.calls(BODACC)] == [siren]
    assert declined.company.siren not in json.dumps(apis.requests)


def broker_messages(task_name: str) -> list[str]:
    """The args of the messages for ``task_name`` waiting on the real broker's default queue, taken off it."""
    found = []
    with celery_app.connection_for_read() as connection:
        queue = connection.SimpleQueue(settings.CELERY_TASK_DEFAULT_QUEUE, no_ack=True)
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                break
            if message.headers["task"] == task_name:
                found.append(message.headers["argsrepr"])
        queue.close()
    return found


def test_the_daily_check_sends_one_task_per_batch_of_monitored_companies(champion, lender, settings):
    settings.MONITORING_BODACC_BATCH = 2
    monitored = [scored_dossier(n, champion, partner=lender.partner).company_id for n in range(5)]
    scored_dossier(5, champion, partner=lender.partner, decision="decline")
    broker_messages(bodacc_check_batch.name)  # an empty queue to start with

    bodacc_check()  # what beat runs at MONITORING_BODACC_AT

    assert broker_messages(bodacc_check_batch.name) == [
        repr((monitored[0:2],)),
        repr((monitored[2:4],)),
        repr((monitored[4:],)),
    ]
