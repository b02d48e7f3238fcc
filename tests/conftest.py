"""Shared actors and infrastructure for the specification tests.

Named actors: an analyst, a senior analyst, an auditor, an outsider (logged in, no role),
and two partners with their own OAuth clients. Reference data (roles, default policies,
a champion model) is made sure of per test, because transactional tests truncate tables.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import import_module
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connections
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from riskoffice.models import ApiClient, Partner
from riskoffice.roles import ADMIN, ALL_ROLES, ANALYST, AUDITOR, SENIOR_ANALYST
from riskoffice.signin import two_factor_required
from scoring.model.synthetic import generate_b2c_portfolio, generate_portfolio
from scoring.model.training import TrainedModel, train_segment
from scoring.models import ModelVersion, PolicyVersion

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"

# --- reference data ---------------------------------------------------------------

_trained: dict[str, TrainedModel] = {}
_BOOKS = {"b2b": (generate_portfolio, 11), "b2c": (generate_b2c_portfolio, 21)}


def trained_once(segment: str = "b2b") -> TrainedModel:
    """One model per segment and test session, trained on the synthetic book and registered into each test's DB."""
    if segment not in _trained:
        generate, seed = _BOOKS[segment]
        portfolio = generate(3000, seed=seed)
        rows = [applicant.features() for applicant, _, _ in portfolio]
        labels = [int(defaulted) for _, _, defaulted in portfolio]
        dates = [f"2024-01-01T00:00:{i:06d}" for i in range(len(rows))]
        _trained[segment] = train_segment(segment, rows, labels, dates)
    return _trained[segment]


@pytest.fixture
def reference_data(db) -> None:
    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)
    # The default policies live in the data migration; transactional tests truncate them away.
    defaults = import_module("scoring.migrations.0002_default_policies").DEFAULTS
    for segment, values in defaults.items():
        if not PolicyVersion.objects.filter(segment=segment).exists():
            PolicyVersion.objects.create(segment=segment, version=1, is_current=True, **values)
    override_reasons_seed()


def override_reasons_seed() -> None:
    """The override reason codes, which live in a data migration too."""
    from dossiers.models import OverrideReason

    seed = import_module("dossiers.migrations.0007_challenge_four_eyes_assignment").REASON_CODES
    for position, (code, label_fr, label_en) in enumerate(seed):
        OverrideReason.objects.get_or_create(
            code=code, defaults={"label_fr": label_fr, "label_en": label_en, "position": position}
        )


@pytest.fixture
def champion(reference_data) -> ModelVersion:
    from scoring.model.registry import model_register
    from scoring.selectors import champion_for

    return champion_for("b2b") or model_register(
        segment="b2b", trained=trained_once(), trained_by="tests", promote=True
    )


# --- people -----------------------------------------------------------------------


def _user(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def analyst(reference_data) -> User:
    return _user("alice.analyst", ANALYST)


@pytest.fixture
def senior(reference_data) -> User:
    return _user("sam.senior", SENIOR_ANALYST)


@pytest.fixture
def auditor(reference_data) -> User:
    return _user("aude.auditor", AUDITOR)


@pytest.fixture
def outsider(reference_data) -> User:
    return _user("oscar.outsider", None)


@pytest.fixture
def admin_user(reference_data) -> User:
    """An admin as setup_demo makes one: the admin role, and staff and superuser for the admin site."""
    user = _user("ada.admin", ADMIN)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


# --- partners and their OAuth clients -------------------------------------------------


@dataclass
class PartnerClient:
    partner: Partner
    api_client: ApiClient
    client_id: str
    client_secret: str
    scopes: list[str] = field(default_factory=list)

    @property
    def basic_auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()


def make_partner_client(
    name: str, scopes: list[str], *, sandbox: bool = True, allowance: int | None = 100_000
) -> PartnerClient:
    """A partner and its OAuth client; sandbox by default, with an allowance no ordinary test reaches."""
    partner = Partner.objects.create(name=name, is_sandbox=sandbox)
    secret = secrets.token_urlsafe(24)
    app = Application.objects.create(
        name=f"{name} app",
        client_id=f"{name.lower().replace(' ', '-')}-{secrets.token_hex(4)}",
        client_secret=secret,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    api_client = ApiClient.objects.create(
        application=app, partner=partner, allowed_scopes=scopes, sandbox_allowance=allowance if sandbox else None
    )
    return PartnerClient(partner, api_client, app.client_id, secret, scopes)


ALL_SCOPES = ["scores:write", "scores:read", "outcomes:write", "events:write", "webhooks:manage", "monitoring:manage"]


@pytest.fixture
def marketplace(db) -> PartnerClient:
    return make_partner_client("Pay Later Marketplace", ALL_SCOPES)


@pytest.fixture
def other_partner(db) -> PartnerClient:
    return make_partner_client("Other Lender", ALL_SCOPES)


def problem_of(response) -> dict:
    """The RFC 9457 body of an API error, checked for its media type, members and the absence of a traceback."""
    assert response["Content-Type"].startswith("application/problem+json"), response["Content-Type"]
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == response.status_code
    assert "Traceback" not in json.dumps(body)
    return body


def obtain_token(client, partner_client: PartnerClient, scope: str | None = None) -> str:
    """A real client-credentials token from /o/token/, through Django's test client."""
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    response = client.post("/o/token/", data, HTTP_AUTHORIZATION=partner_client.basic_auth)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def api(client, marketplace):
    """The marketplace's authenticated API client: api.post(path, json) / api.get(path)."""
    token = obtain_token(client, marketplace)

    class Api:
        partner = marketplace

        def post(self, path: str, body: object, **extra: str):
            payload = body if isinstance(body, (str, bytes)) else json.dumps(body)
            extra.setdefault("content_type", "application/json")
            return client.post(path, payload, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)

        def get(self, path: str, **extra: str):
            return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)

    return Api()


# --- a local webhook receiver -------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    requests: list[dict] = field(default_factory=list)
    status: int = 204
    event: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int = 1, timeout: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            self.event.wait(0.1)
        return self.requests


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(receiver.status)
            self.end_headers()
            receiver.event.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()


# --- a real Celery worker process ------------------------------------------------------------


def _database_url() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path) -> Iterator[subprocess.Popen]:
    """`celery -A riskoffice worker --beat` on the configured broker, against this test's database."""
    env = dict(
        os.environ,
        DATABASE_URL=_database_url(),
        DJANGO_SETTINGS_MODULE="riskoffice.settings",
        SCORING_STALL_SECONDS="5",
        SCORING_LEASE_SECONDS="3",
        SCORING_REQUEUE_INTERVAL_SECONDS="2",
    )
    celery = [sys.executable, "-m", "celery", "-A", "riskoffice"]
    subprocess.run([*celery, "purge", "-f"], env=env, cwd=ROOT, capture_output=True, timeout=60, check=False)
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                *celery,
                "worker",
                "--beat",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / "beat-schedule"),
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text() and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited at start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    if "ready." not in log.read_text():
        process.kill()
        pytest.fail(f"the Celery worker did not become ready in 60 s:\n{log.read_text()[-3000:]}")
    process.log_path = log
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def broker_queue_length(queue: str) -> int:
    """Messages waiting on the configured broker's queue (Redis or the embedded filesystem transport)."""
    from riskoffice.celery import app

    with app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue, passive=False).message_count


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Rate-limit counters live in the cache, which outlives a test's database: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Client secrets and passwords are hashed with PBKDF2 in production; tests need no such cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def english_back_office(settings) -> Iterator[None]:
    """The specifications read the back-office in English, though a new visitor gets French (tests/test_i18n.py).

    A request with no language cookie and no Accept-Language is answered in English, and so is code run outside
    a request. tests/test_i18n.py overrides this fixture to see the French default.
    """
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


# --- a real browser -----------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page(monkeypatch) -> Iterator:
    """A page in Debian's headless Chromium; missing Chromium is a failure, never a skip.

    ``page.broken_resources`` collects failed sub-resources and script errors for the test to assert on.
    """
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test still reads the ORM synchronously.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB", accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.broken_resources = []
        page.on(
            "response",
            lambda r: (
                page.broken_resources.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document"
                else None
            ),
        )
        page.on("pageerror", lambda error: page.broken_resources.append(f"script error: {error}"))
        yield page
        context.close()
        browser.close()
        # ORM calls made while Playwright's loop ran opened connections of their own: close them here,
        # or PostgreSQL refuses to drop the test database ("accessed by other users").
        connections.close_all()


@pytest.fixture
def committed_dossier(champion, marketplace, monkeypatch):
    """A scored B2B dossier for tests that commit (browser tests): scored here, never by a worker."""
    from dossiers.services import dossier_create, dossier_score
    from dossiers.tasks import score_pending
    from riskoffice.audit import Actor

    # This test commits, so dossier_create's on_commit would enqueue a scoring task; score it here instead.
    monkeypatch.setattr(score_pending, "delay", lambda *args, **kwargs: None)
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier.refresh_from_db()
    return dossier


# --- signing in: the password form, then the second factor for whoever needs one -------------------------------


def totp_device(user: User):
    """The user's authenticator app: their confirmed TOTP device, given to them if they have none yet."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-pk").first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def totp_code_for(key: bytes, *, step: int = 30, t0: int = 0, digits: int = 6, drift: int = 0, after: int = -1) -> str:
    """What an authenticator app holding ``key`` shows now (RFC 6238), for a time step later than ``after``.

    A device accepts each time step once: when the current one was used already (the same person signed in
    twice within 30 s), the app's next code is the one for the next step, which the device accepts early.
    When that was used too, this waits for the app to show a new code.
    """
    from django_otp.oath import hotp

    while True:
        now = int((time.time() - t0) // step) + drift
        if after < now + 1:
            return f"{hotp(key, max(now, after + 1), digits):0{digits}d}"
        time.sleep(1)  # a third sign-in of the same person within one 30-second step


def totp_code(device) -> str:
    """The code the user's authenticator app shows now, for the device as the database holds it."""
    device.refresh_from_db()
    return totp_code_for(
        device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift, after=device.last_t
    )


def login(client, user, password: str = PASSWORD) -> None:
    """Sign a named actor in through the login form, then through the two-factor form when they need it."""
    response = client.post("/login/", {"username": user.get_username(), "password": password})
    assert response.status_code == 302, f"the login form refused {user}: {response.status_code}"
    if two_factor_required(user) or TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        response = client.post("/two-factor/verify/", {"code": totp_code(totp_device(user))})
        assert response.status_code == 302 and "/two-factor/" not in response["Location"], (
            f"the two-factor form refused {user}'s code: {response.status_code}"
        )


def pass_second_factor(page, user) -> None:
    """In the browser, after the password: the code from the user's app, when their role or device asks for one.

    On the verify form the app is the device the user already has; on the enrolment form the app is set up from
    the secret the page shows, as a person would type it in.
    """
    from playwright.sync_api import expect

    if not (two_factor_required(user) or TOTPDevice.objects.filter(user=user, confirmed=True).exists()):
        return
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    if "/two-factor/verify/" in page.url:
        page.get_by_label("Code").fill(totp_code(totp_device(user)))
        page.get_by_role("button", name="Verify").click()
    else:
        secret = page.get_by_test_id("two-factor-secret").inner_text().replace(" ", "")
        page.get_by_label("Code").fill(totp_code_for(base64.b32decode(secret)))
        page.get_by_role("button", name="Confirm").click()
