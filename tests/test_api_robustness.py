"""The partner API holds against oversized bodies, pathological JSON and a database outage.

- A body over API_MAX_BODY_BYTES (1 MiB) on /api/ or /o/ is a 413 problem+json, before authentication
  or parsing: judged by its Content-Length, or read up to the limit when it comes chunked.
- JSON nested deeper than API_MAX_JSON_DEPTH (32) is a 400 problem+json (invalid-json), without ever
  reaching json.loads' recursion; malformed JSON is the same 400.
- While the database is unreachable every request answers 503 (problem+json on the API and the token
  endpoint, a plain page in the back-office) with Retry-After and one warning line in the log; the
  first request once it is back succeeds. Proven against a real gunicorn and PostgreSQL, through a
  TCP proxy the test cuts.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.db import connection

from dossiers.models import Dossier
from tests.conftest import PASSWORD, make_partner_client
from tests.test_embedded_concurrency import serving

SIREN = "552100554"
VALID = {"company": {"siren": SIREN}, "requested_amount": 25000}
PROBLEM = "application/problem+json"


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith(PROBLEM), response["Content-Type"]
    body = response.json()
    assert body["type"] == f"urn:riskoffice:problem:{slug}", body
    assert {"title", "detail", "instance"} <= set(body) and body["status"] == status
    assert "Traceback" not in json.dumps(body)
    return body


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


# --- bodies over the limit ------------------------------------------------------------------------------


def test_a_20_mb_body_is_refused_413_before_authentication(client, db):
    body = b'{"pad": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    response = client.post("/api/v1/scores", body, content_type="application/json")  # no token at all
    problem = assert_problem(response, 413, "payload-too-large")
    assert str(settings.API_MAX_BODY_BYTES) in problem["detail"]


def test_a_token_request_over_the_limit_is_refused_413(client, marketplace):
    form = "grant_type=client_credentials&padding=" + "x" * settings.API_MAX_BODY_BYTES
    response = client.post(
        "/o/token/", form, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=marketplace.basic_auth
    )
    assert_problem(response, 413, "payload-too-large")


def test_the_limit_is_a_setting_and_a_body_at_the_limit_passes(api, settings):
    payload = json.dumps(VALID)
    settings.API_MAX_BODY_BYTES = len(payload) - 1
    assert_problem(api.post("/api/v1/scores", payload), 413, "payload-too-large")
    assert Dossier.objects.count() == 0

    settings.API_MAX_BODY_BYTES = len(payload)
    assert api.post("/api/v1/scores", payload).status_code == 202


def test_the_back_office_keeps_djangos_own_limits(client, analyst):
    """Analysts upload portfolio files: the API's limit does not apply outside /api/ and /o/."""
    client.login(username=analyst.username, password=PASSWORD)
    response = client.post("/dossiers/", {"padding": "x" * (settings.API_MAX_BODY_BYTES + 1)})
    assert response.status_code != 413


# --- JSON nesting -----------------------------------------------------------------------------------------


def test_fifty_thousand_levels_of_nesting_are_a_400_problem(api):
    body = '{"company": ' + nested(50_000) + ', "requested_amount": 25000}'
    problem = assert_problem(api.post("/api/v1/scores", body), 400, "invalid-json")
    assert f"more than {settings.API_MAX_JSON_DEPTH} levels" in problem["detail"]
    assert Dossier.objects.count() == 0


def test_nesting_at_the_limit_reaches_validation_and_one_level_more_does_not(api, settings):
    settings.API_MAX_JSON_DEPTH = 5
    at_limit = '{"company": {"siren": ' + nested(3) + "}}"  # object, object, 3 arrays: 5 levels
    problem = assert_problem(api.post("/api/v1/scores", at_limit), 400, "validation-error")
    assert "company.siren" in problem["errors"]

    too_deep = '{"company": {"siren": ' + nested(4) + "}}"
    assert_problem(api.post("/api/v1/scores", too_deep), 400, "invalid-json")


def test_brackets_inside_strings_are_not_nesting(api):
    body = {"company": {"siren": SIREN}, "requested_amount": 25000, "note": "[{" * 1000 + '\\"[' * 100}
    problem = assert_problem(api.post("/api/v1/scores", json.dumps(body)), 400, "validation-error")
    assert problem["errors"] == {"note": ["Unknown field."]}


@pytest.mark.parametrize(
    "body",
    [
        '{"company": {"siren": "552100554"',
        '{"company": {"siren": "552100554"}, "requested_amount": 25000,}',
        '{"company": "unterminated [[[[ ',
        '"\\' * 300_000 + "[" * 40,  # quote, backslash, again: one unterminated string, scanned once
        "\xff\xfe{}",
    ],
    ids=["truncated", "trailing-comma", "unterminated-string", "quotes-and-escapes", "not-utf-8"],
)
def test_malformed_json_is_a_400_problem(api, body):
    started = time.monotonic()
    response = api.post("/api/v1/scores", body.encode("latin-1") if body.startswith("\xff") else body)
    assert_problem(response, 400, "invalid-json")
    assert time.monotonic() - started < 5
    assert Dossier.objects.count() == 0


# --- a real server: chunked bodies -------------------------------------------------------------------------


def database_url(port: int | None = None) -> str:
    """This test database's URL, optionally through a local port (the proxy) instead of the server's."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, db_port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    if port is not None:
        host, db_port = "127.0.0.1", port
    return f"postgres://{user}{password}@{host}:{db_port}/{db['NAME']}"


def gunicorn_env(db_url: str) -> dict[str, str]:
    # Persistent connections as in production: the outage test needs them to prove the health checks.
    return dict(
        os.environ, DATABASE_URL=db_url, DATABASE_CONN_MAX_AGE="60", DJANGO_SETTINGS_MODULE="riskoffice.settings"
    )


@pytest.fixture
def served_hashers(settings) -> None:
    """Secrets hashed as the served site checks them (its settings know nothing of the tests' fast MD5)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


def token_from(base_url: str, partner_client) -> dict[str, str]:
    response = requests.post(
        f"{base_url}/o/token/",
        data={"grant_type": "client_credentials"},
        auth=(partner_client.client_id, partner_client.client_secret),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def in_chunks(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_bodies_are_bounded_too_and_read_when_they_fit(transactional_db, served_hashers, tmp_path):
    partner = make_partner_client("Chunked Lender", ["scores:write", "scores:read"])
    with serving(gunicorn_env(database_url()), tmp_path / "web.log", workers=1, threads=4) as base_url:
        headers = {**token_from(base_url, partner), "Content-Type": "application/json"}

        fitting = requests.post(
            f"{base_url}/api/v1/scores", data=in_chunks(json.dumps(VALID).encode()), headers=headers, timeout=30
        )
        assert fitting.status_code == 202, fitting.text

        oversized = b'{"pad": "' + b"x" * (3 * settings.API_MAX_BODY_BYTES) + b'"}'
        refused = requests.post(f"{base_url}/api/v1/scores", data=in_chunks(oversized), headers=headers, timeout=30)
        assert refused.status_code == 413, refused.text
        assert refused.headers["Content-Type"].startswith(PROBLEM)
        assert refused.json()["type"] == "urn:riskoffice:problem:payload-too-large"
    assert Dossier.objects.count() == 1
    assert "Traceback" not in (tmp_path / "web.log").read_text()


# --- a real server: the database goes away and comes back ----------------------------------------------


class TcpProxy:
    """A local port relaying to the database server, which the test can cut and restore (same port)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR: the port comes back
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self) -> None:
        """Stop accepting (new connections are refused) and drop every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            self._close(listener)
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            self._close(sock)

    restore = start

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept() or recv()
        except OSError:
            pass
        sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
                upstream = socket.create_connection(self.upstream)
            except OSError:
                return
            with self._lock:
                self._open.update((downstream, upstream))
            threading.Thread(target=self._relay, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, downstream), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with self._lock:
                self._open.discard(sock)
            self._close(sock)


@pytest.fixture
def database_proxy() -> Iterator[TcpProxy]:
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    proxy.start()
    yield proxy
    proxy.cut()


def logged_in_back_office(base_url: str, user) -> requests.Session:
    session = requests.Session()
    session.headers["Accept-Language"] = "en"  # the back-office is French by default; these tests read English
    session.get(f"{base_url}/login/", timeout=30)
    response = session.post(
        f"{base_url}/login/",
        data={
            "username": user.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=30,
    )
    assert response.status_code == 200 and response.url.rstrip("/").endswith("/dossiers"), response.url
    return session


def assert_unavailable(response: requests.Response, problem: bool) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:500])
    assert response.headers["Retry-After"] == "5"
    if problem:
        assert response.headers["Content-Type"].startswith(PROBLEM)
        assert response.json()["type"] == "urn:riskoffice:problem:service-unavailable"
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "try again" in response.text


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="cuts the connection to a database server; SQLite is a file with no connection to cut "
    "(CI runs this on PostgreSQL)",
)
def test_while_the_database_is_away_every_request_is_a_503_and_the_first_after_it_returns_succeeds(
    transactional_db, champion, analyst, served_hashers, database_proxy, tmp_path
):
    partner = make_partner_client("Outage Lender", ["scores:write", "scores:read"])
    analyst.set_password(PASSWORD)
    analyst.save(update_fields=["password"])
    log_path = tmp_path / "web.log"
    with serving(gunicorn_env(database_url(database_proxy.port)), log_path, workers=2, threads=4) as base_url:
        headers = token_from(base_url, partner)
        created = requests.post(f"{base_url}/api/v1/scores", json=VALID, headers=headers, timeout=30)
        assert created.status_code == 202, created.text
        score_url = created.headers["Location"]
        back_office = logged_in_back_office(base_url, analyst)
        # Every thread of both workers holds a persistent connection before the cut.
        assert {requests.get(score_url, headers=headers, timeout=30).status_code for _ in range(24)} == {200}

        database_proxy.cut()
        for _ in range(3):
            assert_unavailable(requests.get(score_url, headers=headers, timeout=30), problem=True)
        token_request = requests.post(
            f"{base_url}/o/token/",
            data={"grant_type": "client_credentials"},
            auth=(partner.client_id, partner.client_secret),
            timeout=30,
        )
        assert_unavailable(token_request, problem=True)
        assert_unavailable(back_office.get(f"{base_url}/dossiers/", timeout=30), problem=False)

        database_proxy.restore()
        statuses = [requests.get(score_url, headers=headers, timeout=30).status_code for _ in range(24)]
        assert statuses == [200] * 24, statuses
        assert back_office.get(f"{base_url}/dossiers/", timeout=30).status_code == 200

    log = log_path.read_text()
    assert "Traceback" not in log, log[-5000:]
    warnings = [line for line in log.splitlines() if "Database unavailable" in line]
    assert len(warnings) == 5, log[-5000:]
    assert all(line.count("\n") == 0 and "503" in line for line in warnings)
