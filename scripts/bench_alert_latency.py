"""Alert latency benchmark (issue 11): from a partner's negative event to its webhook, on the production stack.

    .venv/bin/python scripts/bench_alert_latency.py                    # 20 partners x 5 insolvencies
    .venv/bin/python scripts/bench_alert_latency.py --partners 10 --events 3 --json
    .venv/bin/python scripts/bench_alert_latency.py --partners 1 --events 10 --book 0 --pace 2   # one at a time

The orchestrator (this process) builds a fresh stack on loopback, as scripts/bench_api.py does (its Stack is
reused): PostgreSQL database ``h6bench`` (dropped and created), Redis db 3 (broker) and 4 (cache) flushed,
``migrate``, the demo's synthetic history (6,000 companies, seed 7) and its champion (on it an open insolvency
weighs about 250 points), then gunicorn (gthread 2 x 8), a Celery worker (concurrency 2, every queue), Celery
beat, and the demo receiver ``manage.py webhook_receiver`` as the partners' ERP (one secret a line: every
partner's endpoint secret). The stack runs with ``RISKOFFICE_ENV=dev`` and ``DEBUG=0``: production refuses
plain-http and loopback webhook URLs (and the receiver refuses production); everything else is the production
path (PostgreSQL, Redis, gunicorn, Celery, persistent connections).

Set-up, not measured: N sandbox partners, each with an API client (token over /o/token/), a webhook endpoint
(every event type) to the receiver, and E + B companies of its own scored through the API (Prefer: wait)
whose credit is then granted (decision set to accept where the policy refused or referred, as the e2e test
does): open exposure, so every one is monitored. E companies per partner get an insolvency; the B more
(``--book``) make the daily run's book.

Measured: every partner reports its E insolvency proceedings at once (one thread per partner, one event after
the other), and per event:

(a) POST /api/v1/events latency (201);
(b) report -> the verified ``company.insolvency_proceeding`` at the receiver (its ``received_at``);
(c) report -> the re-score's ``score.dropped`` / ``score.band_changed`` / ``score.changed`` at the receiver;
(d) report -> the alert row (``Alert.created_at`` of ``event:<id>``), and the re-score run's own times.

Then the count check (every delivery in the database delivered, each webhook-id received once, each event's
company event and its score event present, duplicates the receiver answered), the machine's load, and a daily
monitored run (``monitoring_run_start``, the worker takes its chunks), once on the statistics the set-up left
and once after ``ANALYZE``, against a run of scope portfolio over the same companies: every company with a
scored dossier of its own is monitored here (the seeded history's files have no Score: a portfolio run counts
them at its start but has nothing to re-score them from). No timed assertions: figures only. Exit code 1 only
when something was lost or duplicated.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_api import PYTHON, Stack, StackOptions, distribution, log, machine, siren_for

FIRST_SIREN_BASE = 71_000_000  # far from the seeded history's and from bench_api's
SCOPES = ["scores:write", "scores:read", "events:write", "webhooks:manage", "monitoring:manage"]
SCORE_EVENT_TYPES = ("score.dropped", "score.band_changed", "score.changed")


class AlertStack(Stack):
    """bench_api's stack in the dev environment (http loopback webhooks), plus the demo receiver."""

    def __init__(self, options: StackOptions, work_dir: Path) -> None:
        super().__init__(options, work_dir)
        self.env.update(
            {
                "RISKOFFICE_ENV": "dev",
                "DEBUG": "0",
                "WEBHOOK_ALLOW_PRIVATE_URLS": "1",
                "TOKEN_RATE_LIMIT_PER_MINUTE": "100000",
                "MONITORING_DAILY_AT": "off",  # the run is started by hand below
                "MONITORING_BODACC_AT": "off",  # no BODACC on the network
                "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            }
        )
        self.secret_file = work_dir / "receiver-secrets"
        self.receiver_log = work_dir / "receiver.jsonl"
        self.receiver_url = ""

    def start_receiver(self) -> None:
        self.secret_file.write_text("")
        command = [PYTHON, "manage.py", "webhook_receiver", "--port", "0", "--secret-file", str(self.secret_file)]
        self._spawn("receiver", [*command, "--log", str(self.receiver_log)])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:(\d+)/", self.log_tail("receiver", 100_000))
            if found:
                self.receiver_url = f"http://127.0.0.1:{found.group(1)}/hooks"
                return
            if self.processes["receiver"].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the receiver did not start:\n{self.log_tail('receiver')}")

    def stop(self) -> None:
        super().stop()
        self.stop_process("receiver")

    def kept(self) -> list[dict]:
        if not self.receiver_log.exists():
            return []
        return [json.loads(line) for line in self.receiver_log.read_text().splitlines() if line.strip()]

    def shell(self, script: str, timeout: float = 900) -> dict:
        """A Django shell script whose last line printed is JSON."""
        return json.loads(self.manage("shell", "-c", script, timeout=timeout).strip().splitlines()[-1])

    def tracebacks(self) -> dict[str, int]:
        counts = super().tracebacks()
        counts["receiver"] = self.log_tail("receiver", 10_000_000).count("Traceback")
        return counts


CREATE_PARTNERS = """
import json
from riskoffice.audit import Actor
from riskoffice.clients import partner_client_create
out = []
for i in range({n}):
    new = partner_client_create(partner_name=f"Bench partner {{i:02d}}", scopes={scopes!r}, sandbox=True,
        sandbox_unlimited=True, rate_limit_per_minute=1_000_000_000, actor=Actor.of_system("bench_alert_latency"))
    out.append({{"client_id": new.client_id, "client_secret": new.client_secret}})
print(json.dumps(out))
"""

GRANT = """
import json
from collections import Counter
from dossiers.models import Dossier
from dossiers.selectors import GRANTED_DECISIONS
from alerts.selectors import monitored_companies
ids = json.loads(open({path!r}).read())
mine = Dossier.objects.filter(pk__in=ids)
decisions = dict(Counter(mine.values_list("decision", flat=True)))
granted = mine.exclude(decision__in=GRANTED_DECISIONS).update(decision="accept")
print(json.dumps({{"decisions": decisions, "set_to_accept": granted, "monitored": monitored_companies().count()}}))
"""

COLLECT = """
import json
from alerts.models import Alert, DeliveryAttempt, NegativeEvent, WebhookDelivery
from scoring.models import CompanyScore, PortfolioRun
ids = json.loads(open({path!r}).read())
out = {{"events": {{}}, "deliveries": {{}}}}
for event in NegativeEvent.objects.filter(pk__in=ids).select_related("company"):
    alert = Alert.objects.filter(dedup_key=f"event:{{event.pk}}").first()
    run = PortfolioRun.objects.filter(trigger_event=event).first()
    score = CompanyScore.objects.filter(run=run).first() if run else None
    out["events"][str(event.pk)] = {{
        "siren": event.company.siren,
        "created_at": event.created_at.timestamp(),
        "alert_at": alert.created_at.timestamp() if alert else None,
        "run_id": run.pk if run else None,
        "run_status": run.status if run else None,
        "run_started_at": run.started_at.timestamp() if run else None,
        "run_finished_at": run.finished_at.timestamp() if run and run.finished_at else None,
        "score": score.score if score else None,
        "previous_score": score.previous_score if score else None,
        "band": score.band if score else None,
        "previous_band": score.previous_band if score else None,
        "score_alert_at": (lambda a: a.created_at.timestamp() if a else None)(
            Alert.objects.filter(dedup_key=f"cscore:{{score.pk}}").first() if score else None),
    }}
first = dict(DeliveryAttempt.objects.filter(number=1).values_list("delivery_id", "attempted_at"))
http_ms = dict(DeliveryAttempt.objects.filter(number=1).values_list("delivery_id", "latency_ms"))
for d in WebhookDelivery.objects.values("id", "message_id", "event_type", "status", "attempts", "created_at"):
    out["deliveries"][d["message_id"]] = {{"type": d["event_type"], "status": d["status"], "attempts": d["attempts"],
        "created_at": d["created_at"].timestamp(),
        "first_attempt_at": first[d["id"]].timestamp() if d["id"] in first else None,
        "http_ms": http_ms.get(d["id"])}}
print(json.dumps(out))
"""

SETTLED = """
import json
from alerts.models import NegativeEvent, WebhookDelivery
from scoring.models import PortfolioRun
ids = json.loads(open({path!r}).read())
runs = PortfolioRun.objects.filter(trigger_event_id__in=ids).exclude(status="running").count()
pending = WebhookDelivery.objects.filter(status="pending").count()
print(json.dumps({{"runs_done": runs, "pending": pending, "deliveries": WebhookDelivery.objects.count()}}))
"""

TIMED_RUN = """
import json, time
from alerts.monitoring import monitoring_run_start
from scoring.models import PortfolioRun
from scoring.portfolio.runs import portfolio_run_start
scope = {scope!r}
started = time.monotonic()
if scope == "monitored":
    run = monitoring_run_start(system="bench")
else:
    run = portfolio_run_start(scope="portfolio", system="bench")
while True:
    run.refresh_from_db()
    if run.status != "running" or time.monotonic() - started > 600:
        break
    time.sleep(0.1)
seconds = time.monotonic() - started
print(json.dumps({{"run": run.pk, "scope": scope, "status": run.status, "companies": run.companies_total,
    "chunks": run.chunks_total, "rows_done": run.rows_done, "rows_moved": run.rows_moved,
    "seconds": round(seconds, 2), "db_seconds": round((run.finished_at - run.started_at).total_seconds(), 2),
    "timings": run.timings}}))
"""


# --- HTTP from the partners ---------------------------------------------------------------------------


def http(method: str, url: str, *, token: str | None = None, body: dict | None = None, headers=None):
    """(status, parsed JSON or None, seconds)."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=all_headers, method=method)  # noqa: S310 - loopback
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - loopback
            raw, status = answer.read(), answer.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    seconds = time.perf_counter() - started
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, seconds


class BenchPartner:
    def __init__(
        self, stack: AlertStack, index: int, client_id: str, client_secret: str, sirens: list[str], book: list[str]
    ):
        self.stack, self.index, self.sirens, self.book = stack, index, sirens, book
        self.token = stack.token(client_id, client_secret)
        self.base = stack.base_url
        self.dossier_ids: list[str] = []
        self.reports: list[dict] = []

    def endpoint(self, lock: threading.Lock) -> None:
        status, body, _ = http(
            "POST", f"{self.base}/api/v1/webhooks", token=self.token, body={"url": self.stack.receiver_url}
        )
        if status != 201:
            raise RuntimeError(f"webhook endpoint: {status} {body}")
        with lock:
            with self.stack.secret_file.open("a") as out:
                out.write(body["secret"] + "\n")

    def score_all(self) -> None:
        for siren in self.sirens + self.book:
            status, body, _ = http(
                "POST",
                f"{self.base}/api/v1/scores",
                token=self.token,
                body={"company": {"siren": siren}, "requested_amount": 25000},
                headers={"Prefer": "wait=10"},
            )
            if status not in (200, 201, 202):
                raise RuntimeError(f"score {siren}: {status} {body}")
            deadline = time.monotonic() + 120
            while body["status"] == "pending" and time.monotonic() < deadline:
                time.sleep(0.2)
                _, body, _ = http("GET", f"{self.base}/api/v1/scores/{body['id']}", token=self.token)
            if body["status"] != "scored":
                raise RuntimeError(f"score {siren} ended {body['status']}")
            self.dossier_ids.append(body["id"])

    def report_all(self, occurred_on: str, pace: float) -> None:
        for n, siren in enumerate(self.sirens):
            if n and pace:
                time.sleep(pace)
            reported = time.time()
            status, body, seconds = http(
                "POST",
                f"{self.base}/api/v1/events",
                token=self.token,
                body={
                    "event_id": f"bench-insolvency-{self.index}-{n}",
                    "kind": "insolvency_proceeding",
                    "occurred_on": occurred_on,
                    "company": {"siren": siren},
                },
            )
            self.reports.append(
                {"siren": siren, "reported": reported, "post_seconds": seconds, "status": status,
                 "id": (body or {}).get("id")}
            )  # fmt: skip


def in_parallel(partners: list[BenchPartner], method: str, *args) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(partners)) as pool:
        for future in [pool.submit(getattr(p, method), *args) for p in partners]:
            future.result()


def wait_for(what, *, timeout: float, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(poll)


def received_at(kept: dict) -> float:
    return datetime.fromisoformat(kept["received_at"]).timestamp()


# --- The benchmark --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    work_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    options = StackOptions(
        database_url=args.database_url,
        redis_url=args.redis_url,
        broker_db=args.broker_db,
        cache_db=args.cache_db,
        port=args.port,
        companies=args.companies,
        web_workers=2,
        web_threads=8,
        worker_class="gthread",
        celery_workers=args.celery_workers,
        web_args="",
        worker_args="",
    )
    stack = AlertStack(options, work_dir)
    log(f"logs in {work_dir}")
    report: dict = {"machine": machine(), "config": vars(args).copy(), "load": {}}
    try:
        started = time.monotonic()
        stack.reset_services()
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.manage("seed_demo", "--companies", str(args.companies))
        stack.manage("train_model", "--if-no-champion")
        credentials = stack.shell(CREATE_PARTNERS.format(n=args.partners, scopes=SCOPES))
        log(f"database ready in {time.monotonic() - started:.0f} s (migrate, seed, train, {args.partners} partners)")
        stack.start_receiver()
        stack.start_web()
        stack.start_worker()
        stack.start_beat()
        partners = []
        per_partner = args.events + args.book
        for i, c in enumerate(credentials):
            first = FIRST_SIREN_BASE + i * per_partner
            sirens = [siren_for(b) for b in range(first, first + per_partner)]
            partners.append(BenchPartner(stack, i, c["client_id"], c["client_secret"], sirens[: args.events],
                                         sirens[args.events :]))  # fmt: skip
        lock = threading.Lock()
        in_parallel(partners, "endpoint", lock)
        started = time.monotonic()
        in_parallel(partners, "score_all")
        exposures = args.partners * (args.events + args.book)
        log(f"{exposures} companies scored through the API in {time.monotonic() - started:.1f} s")
        ids_path = work_dir / "dossier-ids.json"
        ids_path.write_text(json.dumps([d for p in partners for d in p.dossier_ids]))
        report["setup"] = stack.shell(GRANT.format(path=str(ids_path)))
        log(f"exposure granted: {report['setup']}")
        # The score.completed of the set-up arrive before the measure starts.
        completed = wait_for(
            lambda: sum(1 for k in stack.kept() if k["type"] == "score.completed") >= exposures, timeout=60
        )
        if not completed:
            log("warning: not every score.completed arrived before the reports")
        time.sleep(1)
        baseline_kept = {k["webhook_id"] for k in stack.kept()}

        # --- the measure ---
        report["load"]["before"] = [round(x, 2) for x in os.getloadavg()]
        occurred_on = time.strftime("%Y-%m-%d")
        t0 = time.time()
        in_parallel(partners, "report_all", occurred_on, args.pace)
        t_sent = time.time()
        reports = [r for p in partners for r in p.reports]
        event_ids = [r["id"] for r in reports if r["id"] is not None]
        events_path = work_dir / "event-ids.json"
        events_path.write_text(json.dumps(event_ids))
        log(f"{len(reports)} events reported in {t_sent - t0:.2f} s; waiting for the re-scores and deliveries")
        load_peak = os.getloadavg()[0]

        def settled():
            nonlocal load_peak
            load_peak = max(load_peak, os.getloadavg()[0])
            state = stack.shell(SETTLED.format(path=str(events_path)))
            return state if state["runs_done"] >= len(event_ids) and state["pending"] == 0 else None

        state = wait_for(settled, timeout=args.settle, poll=1.0)
        t_settled = time.time()
        time.sleep(2)  # anything late would have arrived by now
        report["load"]["peak_1min"] = round(load_peak, 2)
        report["load"]["after"] = [round(x, 2) for x in os.getloadavg()]
        collected = stack.shell(COLLECT.format(path=str(events_path)))
        kept = [k for k in stack.kept() if k["webhook_id"] not in baseline_kept]
        report["events"] = figures(reports, collected, kept, t0=t0, t_sent=t_sent, settled=state is not None,
                                   t_settled=t_settled)  # fmt: skip
        report["receiver_duplicates_answered"] = stack.log_tail("receiver", 100_000_000).count("duplicate ")

        # --- the daily run against a portfolio run over the same companies ---
        report["runs"] = []
        for scope, label in (("monitored", "statistics as the set-up left them"), ("analyze", ""),
                             ("monitored", "after ANALYZE"), ("portfolio", "after ANALYZE")):  # fmt: skip
            if scope == "analyze":
                analyze(args.database_url)
                continue
            result = stack.shell(TIMED_RUN.format(scope=scope))
            result["label"] = label
            result["companies_per_second"] = round(result["rows_done"] / result["db_seconds"], 1)
            report["runs"].append(result)
            log(f"{scope} run: {result['rows_done']} companies re-scored in {result['db_seconds']} s")
        report["tracebacks_in_logs"] = stack.tracebacks()
    finally:
        stack.stop()
        log(f"stack stopped; logs kept in {work_dir}")
    return report


def analyze(database_url: str) -> None:
    """ANALYZE the database: the statistics autovacuum would have gathered by the night of a real book."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ANALYZE")


def figures(reports, collected, kept, *, t0, t_sent, settled, t_settled) -> dict:
    events = collected["events"]
    deliveries = collected["deliveries"]
    by_event_id = {str(r["id"]): r for r in reports if r["id"] is not None}
    company_events: dict[str, list[dict]] = {}
    score_events: dict[int, list[dict]] = {}
    for k in kept:
        data = k["event"].get("data") or {}
        if k["type"] == "company.insolvency_proceeding":
            company_events.setdefault(str(data["event"]["id"]), []).append(k)
        elif k["type"] in SCORE_EVENT_TYPES and data.get("trigger") == "negative_event":
            score_events.setdefault(data.get("run_id"), []).append(k)
    post, to_company, to_score, to_alert, rescore_run, to_run_done = [], [], [], [], [], []
    moved = Counter()
    missing_company, missing_score, extra = 0, 0, 0
    for event_id, r in by_event_id.items():
        post.append(r["post_seconds"])
        e = events.get(event_id)
        if e is None:
            continue
        if e["alert_at"] is not None:
            to_alert.append(e["alert_at"] - r["reported"])
        got = company_events.get(event_id, [])
        if got:
            to_company.append(min(received_at(k) for k in got) - r["reported"])
        else:
            missing_company += 1
        extra += max(0, len(got) - 1)
        if e["run_finished_at"] is not None:
            rescore_run.append(e["run_finished_at"] - e["run_started_at"])
            to_run_done.append(e["run_finished_at"] - r["reported"])
        expected = change_type(e) if e["score"] is not None and e["previous_score"] is not None else None
        moved[expected or "none"] += 1
        got_score = score_events.get(e["run_id"], [])
        if expected is not None:
            if got_score:
                to_score.append(min(received_at(k) for k in got_score) - r["reported"])
            else:
                missing_score += 1
        extra += max(0, len(got_score) - (1 if expected else 0))
    # Where the time goes: the delivery row's wait for a worker, the HTTP exchange, the re-score task's wait.
    measured = {k["webhook_id"] for k in kept if k["type"] != "score.completed"}
    delivery_wait = [
        d["first_attempt_at"] - d["created_at"]
        for m, d in deliveries.items()
        if m in measured and d["first_attempt_at"] is not None
    ]
    delivery_http = [d["http_ms"] / 1000 for m, d in deliveries.items() if m in measured and d["http_ms"] is not None]
    rescore_wait = [e["run_started_at"] - e["created_at"] for e in events.values() if e["run_started_at"] is not None]
    ids_delivered = {m for m, d in deliveries.items()}
    ids_kept = [k["webhook_id"] for k in kept]
    statuses = Counter(d["status"] for d in deliveries.values())
    sent_types = Counter(d["type"] for d in deliveries.values())
    span = (max(received_at(k) for k in kept) - t0) if kept else None
    return {
        "reported": len(reports),
        "answered": Counter(str(r["status"]) for r in reports),
        "report_seconds": round(t_sent - t0, 2),
        "reports_per_second": round(len(reports) / (t_sent - t0), 1) if t_sent > t0 else None,
        "all_settled": settled,
        "settled_after_s": round(t_settled - t0, 1),
        "events_per_second_end_to_end": round(len(reports) / span, 1) if span else None,
        "last_webhook_after_s": round(span, 2) if span is not None else None,
        "score_moves": dict(moved),
        "post_latency_s": distribution(post),
        "to_alert_row_s": distribution(to_alert),
        "to_company_event_s": distribution(to_company),
        "to_rescore_done_s": distribution(to_run_done),
        "rescore_run_own_s": distribution(rescore_run),
        "to_score_event_s": distribution(to_score),
        "delivery_queue_wait_s": distribution(delivery_wait),
        "delivery_http_s": distribution(delivery_http),
        "rescore_queue_wait_s": distribution(rescore_wait),
        "company_events_received": sum(len(v) for v in company_events.values()),
        "score_events_received": sum(len(v) for v in score_events.values()),
        "missing_company_events": missing_company,
        "missing_score_events": missing_score,
        "unexpected_or_extra": extra,
        "deliveries_in_db": len(deliveries),
        "deliveries_by_type": dict(sent_types),
        "deliveries_by_status": dict(statuses),
        "deliveries_attempts_over_1": sum(1 for d in deliveries.values() if d["attempts"] > 1),
        "webhook_ids_received_twice": len(ids_kept) - len(set(ids_kept)),
        "received_not_in_db": len(set(ids_kept) - ids_delivered),
    }


def change_type(e: dict) -> str | None:
    """The event the re-score's move is, as alerts.monitoring.score_change_type says (default thresholds)."""
    drop, change = (
        int(os.environ.get("MONITORING_DROP_POINTS", 50)),
        int(os.environ.get("MONITORING_CHANGE_POINTS", 10)),
    )
    delta = e["score"] - e["previous_score"]
    if delta <= -drop:
        return "score.dropped"
    if e["band"] != e["previous_band"]:
        return "score.band_changed"
    if abs(delta) >= change:
        return "score.changed"
    return None


def print_report(report: dict, *, as_json: bool) -> None:
    m, c, e = report["machine"], report["config"], report["events"]

    def row(label: str, d: dict) -> str:
        cells = [("-" if d[k] is None else f"{d[k]:.3f}") for k in ("p50", "p95", "p99", "max")]
        return f"  {label:<46} " + " ".join(f"{x:>8}" for x in cells)

    out = [
        f"\n{m['date']}, {m['cpus']} x {m['cpu_model']}, Python {m['python']}; gunicorn gthread 2 x 8, "
        f"Celery worker concurrency {c['celery_workers']} + beat, demo receiver; "
        f"{c['partners']} partners x {c['events']} insolvency reports, "
        + (f"{c['pace']:g} s apart" if c["pace"] else "sent at once"),
        f"Set-up: {report['setup']}",
        "",
        f"{e['reported']} events reported in {e['report_seconds']} s ({e['reports_per_second']} reports/s), "
        f"answers {dict(e['answered'])}; all re-scored and delivered: {e['all_settled']} "
        f"(settled {e['settled_after_s']} s after the first report; last webhook at {e['last_webhook_after_s']} s: "
        f"{e['events_per_second_end_to_end']} events/s end to end)",
        f"Re-score moves: {e['score_moves']}",
        "",
        f"  {'seconds, per event':<46} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}",
        row("(a) POST /api/v1/events", e["post_latency_s"]),
        row("(d) report -> alert row", e["to_alert_row_s"]),
        row("(b) report -> company.insolvency_proceeding", e["to_company_event_s"]),
        row("    report -> re-score run done", e["to_rescore_done_s"]),
        row("    re-score run, start -> done", e["rescore_run_own_s"]),
        row("(c) report -> score.* at the receiver", e["to_score_event_s"]),
        "  where the time goes:",
        row("    event row -> its re-score run starts", e["rescore_queue_wait_s"]),
        row("    delivery row -> its first attempt", e["delivery_queue_wait_s"]),
        row("    the attempt's HTTP exchange", e["delivery_http_s"]),
        "",
        f"Received: {e['company_events_received']} company.insolvency_proceeding, {e['score_events_received']} "
        f"score events; missing: {e['missing_company_events']} company, {e['missing_score_events']} score; "
        f"unexpected or extra: {e['unexpected_or_extra']}",
        f"Deliveries in the database: {e['deliveries_in_db']} {e['deliveries_by_type']} {e['deliveries_by_status']}; "
        f"more than one attempt: {e['deliveries_attempts_over_1']}; webhook-ids received twice: "
        f"{e['webhook_ids_received_twice']}; duplicates the receiver answered: "
        f"{report['receiver_duplicates_answered']}; "
        f"received but not in the database: {e['received_not_in_db']}",
        f"Load average: before {report['load']['before']}, peak 1-min {report['load']['peak_1min']}, "
        f"after {report['load']['after']}",
        "",
    ]
    for r in report["runs"]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("timings") or {}).items() if isinstance(v, (int, float)))
        out.append(
            f"Run of scope {r['scope']} ({r['label']}): {r['rows_done']} companies re-scored "
            f"({r['companies']} counted at the start), {r['chunks']} chunk(s), {r['status']} in {r['db_seconds']} s "
            f"({r['companies_per_second']} companies/s), {r['rows_moved']} moved; seconds per stage: {stages}"
        )
    out.append(f"\nTracebacks in the logs: {report['tracebacks_in_logs']}")
    sys.stdout.write("\n".join(out) + "\n")
    if as_json:
        sys.stdout.write(json.dumps(report, default=str) + "\n")


def ok(report: dict) -> bool:
    e = report["events"]
    return (
        e["missing_company_events"] == 0
        and e["missing_score_events"] == 0
        and e["unexpected_or_extra"] == 0
        and e["webhook_ids_received_twice"] == 0
        and e["received_not_in_db"] == 0
        and set(e["deliveries_by_status"]) <= {"delivered"}
    )


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Latency from a partner's negative event to its alert and webhooks (issue 11).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--partners", type=int, default=20, help="partners, each with its endpoint and client")
    parser.add_argument("--events", type=int, default=5, help="insolvencies each partner reports (one company each)")
    parser.add_argument(
        "--book", type=int, default=50, help="more companies each partner holds exposure on (the daily run's book)"
    )
    parser.add_argument(
        "--pace", type=float, default=0, help="seconds each partner waits between two reports (0: back to back)"
    )
    parser.add_argument("--companies", type=int, default=6000, help="synthetic history the champion is trained on")
    parser.add_argument("--celery-workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument("--settle", type=float, default=180, help="seconds to wait for every re-score and delivery")
    parser.add_argument("--port", type=int, default=8126)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/h6bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument("--broker-db", type=int, default=3)
    parser.add_argument("--cache-db", type=int, default=4)
    parser.add_argument("--log-dir", help="logs and var/ (default: a new temporary directory)")
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON object")
    return parser.parse_args(argv)


def main(argv) -> int:
    args = parse_args(argv)
    report = run(args)
    print_report(report, as_json=args.json)
    return 0 if ok(report) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
