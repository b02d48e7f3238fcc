"""The API documents itself: an OpenAPI 3 schema that is valid, public, complete, and that the live API keeps.

Schemathesis generates requests from the schema and sends them to a live server: every answer must be
one the schema allows (status, content type, body). The docs pages are served from our own static files.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
import requests
import schemathesis
import yaml
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from alerts import signing
from alerts.events import CRITICAL_EVENT_TYPES, DIGEST, EVENT_TYPES
from alerts.models import WebhookDelivery
from alerts.monitoring import event_rescore
from alerts.services import webhook_deliver
from dossiers.models import Dossier
from dossiers.services import dossier_score
from riskoffice.models import ApiClient
from riskoffice.openapi import WATCHED_SIREN, scopes_for
from scoring.models import Score

from .conftest import ALL_SCOPES, ROOT, make_partner_client, obtain_token

SCHEMA_URL = "/api/v1/schema/"
# Every scope a client can be granted.
SCOPES = sorted(ALL_SCOPES)
# Every operation of the API: scores 5, events 1, webhooks 11, monitoring 3.
OPERATIONS = 20
PROBLEM = "application/problem+json"
# Requests per operation: enough to find a mismatch between the schema and the API in about a minute.
EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 50, GenerationMode.NEGATIVE: 25}


def _schema(client: Client) -> dict[str, Any]:
    response = client.get(SCHEMA_URL, {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    return response.json()


def _api_routes() -> list[tuple[str, type]]:
    """(OpenAPI path, view class) of every URL in the "api" namespace."""
    (api,) = [r for r in get_resolver().url_patterns if isinstance(r, URLResolver) and r.namespace == "api"]
    routes = []
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        path = "/api/v1/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        routes.append((path.replace("{pk}", "{id}"), pattern.callback.cls))
    return routes


# --- the schema ------------------------------------------------------------------------------------


def test_the_schema_is_public_yaml_by_default_and_json_on_request(client, db):
    response = client.get(SCHEMA_URL, HTTP_AUTHORIZATION="Bearer not-a-token-we-issued")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")

    as_json = client.get(SCHEMA_URL, {"format": "json"})
    assert as_json["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert as_json.json() == json.loads(json.dumps(document))

    negotiated = client.get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert negotiated.json()["info"]["title"] == "riskoffice partner API"


def test_the_schema_validates_with_no_warning(tmp_path):
    """What CI runs: `manage.py spectacular --validate --fail-on-warn` (a warning is a failure)."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert yaml.safe_load(target.read_text())["paths"]


def test_every_api_url_is_documented_with_its_scopes_and_problem_errors(client, db):
    schema = _schema(client)
    routes = _api_routes()
    assert {path for path, _ in routes} == set(schema["paths"]), "the schema lists exactly the API's URLs"
    for path, view in routes:
        methods = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)]
        assert sorted(schema["paths"][path]) == sorted(methods), path
        for method in methods:
            operation = schema["paths"][path][method]
            where = f"{method.upper()} {path}"
            assert operation.get("summary") and operation.get("description"), f"{where} is annotated"
            assert operation["security"] == [{"oauth2": scopes_for(view, method)}], where
            assert scopes_for(view, method), f"{where} requires a scope"
            for status in ("401", "403", "429", "503"):
                assert PROBLEM in operation["responses"][status]["content"], f"{where} {status}"
            for status in ("429", "503"):
                assert "Retry-After" in operation["responses"][status]["headers"], f"{where} {status}"


def test_the_security_scheme_is_client_credentials_against_the_token_endpoint(client, db):
    scheme = _schema(client)["components"]["securitySchemes"]["oauth2"]
    flow = scheme["flows"]["clientCredentials"]
    assert list(scheme["flows"]) == ["clientCredentials"]
    assert flow["tokenUrl"] == "/o/token/"
    assert sorted(flow["scopes"]) == SCOPES


def test_the_problem_component_is_rfc_9457(client, db):
    problem = _schema(client)["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["properties"]["type"]["pattern"] == "^urn:riskoffice:problem:[a-z0-9-]+$"
    assert "errors" in problem["properties"]


# --- the events: every type's payload documented, and what the code sends matches it --------------------

WEBHOOK_CALLBACKS = ("/api/v1/webhooks", "post")


def as_json_schema(document: dict[str, Any], node: Any) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, ``nullable`` as a null alternative."""
    if isinstance(node, list):
        return [as_json_schema(document, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return as_json_schema(document, document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
    converted = {key: as_json_schema(document, value) for key, value in node.items() if key != "nullable"}
    return {"anyOf": [converted, {"type": "null"}]} if node.get("nullable") else converted


def event_callbacks(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each event type's documented delivery: {type: the callback's POST operation}."""
    path, method = WEBHOOK_CALLBACKS
    callbacks = document["paths"][path][method]["callbacks"]
    return {name: callback["{$request.body#/url}"]["post"] for name, callback in callbacks.items()}


def event_payload_errors(document: dict[str, Any], payload: dict[str, Any]) -> list[str]:
    """Why ``payload`` (a delivery's body) is not what the schema documents for its type; [] when it is."""
    operation = event_callbacks(document).get(payload.get("type"))
    if operation is None:
        return [f"no callback documents {payload.get('type')!r}"]
    body = as_json_schema(document, operation["requestBody"]["content"]["application/json"]["schema"])
    validator = jsonschema.Draft202012Validator(body)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(payload)]


def test_every_event_type_is_documented_with_its_envelope_and_payload(client, db):
    document = _schema(client)
    callbacks = event_callbacks(document)
    assert set(callbacks) == {*EVENT_TYPES, DIGEST}, "one callback per event type, and the digest"
    for name, operation in callbacks.items():
        assert operation["summary"] and operation["description"], name
        body = as_json_schema(document, operation["requestBody"]["content"]["application/json"]["schema"])
        assert {"id", "type", "timestamp", "data"} <= set(body["required"]), name
        assert name in body["properties"]["type"]["enum"], name
        assert ("Critical" in operation["description"]) == (name in CRITICAL_EVENT_TYPES), name


MONITORING_TYPES = {t for t in EVENT_TYPES if t.startswith(("score.", "company."))} - {"score.completed"}


def test_every_monitoring_event_has_an_example_that_its_own_schema_accepts(client, db):
    document = _schema(client)
    for name, operation in event_callbacks(document).items():
        examples = operation["requestBody"]["content"]["application/json"].get("examples", {})
        if name in MONITORING_TYPES | {DIGEST}:
            assert examples, f"{name} has an example payload"
        for example in examples.values():
            assert example["value"]["type"] == name
            assert event_payload_errors(document, example["value"]) == [], name


def test_the_events_an_insolvency_report_causes_are_sent_as_documented(client, champion, db):
    """A partner with open exposure reports an insolvency: the company event and the re-score's, as documented."""
    partner = make_partner_client("Documented Events", SCOPES)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {obtain_token(client, partner)}"}

    def post(path: str, body: dict) -> Any:
        return client.post(path, json.dumps(body), content_type="application/json", **bearer)

    assert post("/api/v1/webhooks", {"url": "https://partner.example/hooks"}).status_code == 201
    created = post("/api/v1/scores", {"company": {"siren": "552100554"}, "requested_amount": 25000}).json()
    dossier_score(dossier_id=created["id"])
    Dossier.objects.filter(pk=created["id"]).update(decision="accept")  # granted: open exposure, monitored
    report = post(
        "/api/v1/events",
        {
            "event_id": "doc-1",
            "kind": "insolvency_proceeding",
            "occurred_on": datetime.now(UTC).date().isoformat(),
            "company": {"siren": "552100554"},
        },
    )
    assert report.status_code == 201, report.content[:300]
    event_rescore(event_id=report.json()["id"])  # what the task enqueued after commit does

    document = _schema(client)
    payloads = [d.payload for d in WebhookDelivery.objects.filter(endpoint__partner=partner.partner)]
    types = {payload["type"] for payload in payloads}
    assert {"score.completed", "company.insolvency_proceeding"} <= types, types
    for payload in payloads:
        assert event_payload_errors(document, payload) == [], payload["type"]


# --- the docs pages ---------------------------------------------------------------------------------

EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}""", re.IGNORECASE)
ASSET = re.compile(r"""(?:src|href)="([^"]+)\"""")


@pytest.mark.parametrize("url", ["/api/docs/", "/api/docs/redoc/"])
def test_the_docs_pages_load_nothing_from_outside(client, db, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert not EXTERNAL.findall(html), "no CDN, no web font: the docs must work on a closed network"
    assert SCHEMA_URL in html
    assets = ASSET.findall(html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset


# --- the examples ------------------------------------------------------------------------------------


def _request_examples(schema: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in content.get("examples", {}).items():
                found.append((method, path, name, example["value"]))
    return found


def _backdate_and_grant(dossier_id: str) -> None:
    """Requested and decided long enough ago for any example's dates, and granted: outcomes label granted credit."""
    long_ago = datetime(2025, 1, 2, tzinfo=UTC)
    Dossier.objects.filter(pk=dossier_id).update(created_at=long_ago, decision="accept")
    Score.objects.filter(dossier_id=dossier_id).update(created_at=long_ago)


def _scored_dossier(api) -> str:
    """A scored dossier of the marketplace, requested, decided and granted long enough ago for any example."""
    created = api.post("/api/v1/scores", {"company": {"siren": "732829320"}, "requested_amount": 1000}).json()
    dossier_score(dossier_id=created["id"])
    _backdate_and_grant(created["id"])
    return created["id"]


def test_every_request_example_is_accepted_by_the_api(client, champion):
    partner = make_partner_client("Examples", SCOPES)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {obtain_token(client, partner)}"}

    class Api:
        def post(self, path: str, body: object):
            return client.post(path, json.dumps(body), content_type="application/json", **bearer)

    api = Api()
    examples = _request_examples(_schema(client))
    documented = {(method, path) for method, path, _, _ in examples}
    assert documented == {
        ("post", "/api/v1/scores"),
        ("post", "/api/v1/scores/{id}/outcome"),
        ("post", "/api/v1/scores/{id}/human-review"),
        ("post", "/api/v1/events"),
        ("post", "/api/v1/webhooks"),
        ("patch", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/monitoring"),
    }
    for method, path, name, value in examples:
        if path.startswith("/api/v1/webhooks/"):
            created = api.post("/api/v1/webhooks", {"url": "https://partner.example/hooks"})
            assert created.status_code == 201, created.content[:300]
            url = path.replace("{id}", str(created.json()["id"]))
        else:
            url = path.replace("{id}", _scored_dossier(api))  # one dossier per example: an outcome is recorded once
        send = client.patch if method == "patch" else client.post
        response = send(url, json.dumps(value), content_type="application/json", **bearer)
        assert response.status_code in (200, 201, 202), f"{method} {path} example {name}: {response.content[:300]}"


# --- the live API keeps the schema ---------------------------------------------------------------------


@pytest.fixture
def fuzzing_client(transactional_db, live_server) -> dict[str, str]:
    """A sandbox partner with every scope, no allowance or rate limit in the way; its bearer header."""
    partner = make_partner_client("Schemathesis", SCOPES, allowance=1_000_000)
    ApiClient.objects.filter(pk=partner.api_client.pk).update(rate_limit_per_minute=1_000_000)
    response = requests.post(
        f"{live_server.url}/o/token/",
        data={"grant_type": "client_credentials", "scope": " ".join(SCOPES)},
        auth=(partner.client_id, partner.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
]


def _fuzz(operation, base_url: str, headers: dict[str, str], mode: GenerationMode) -> str | None:
    """Hypothesis-generated requests for one operation; the smallest failing case, if any, as text.

    Positive requests follow the schema; negative ones break it on purpose and must get a documented 4xx.
    """

    @settings(
        max_examples=EXAMPLES_PER_OPERATION[mode],
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: CI never fails by chance
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Unsatisfiable:  # nothing in the operation's schema can be broken (no body, no constrained parameter)
        return None
    except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis raises a FailureGroup per case
        return f"{operation.label} ({mode.value}): {exc}"[:4000]
    return None


def test_real_scores_and_outcomes_read_as_the_schema_says(live_server, fuzzing_client, champion):
    """Answers generated requests rarely reach: a pending then scored dossier, its outcomes, the list holding them."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}{SCHEMA_URL}?format=json")

    def call(method: str, path: str, url: str, **kwargs: Any) -> requests.Response:
        headers = {**fuzzing_client, **kwargs.pop("headers", {})}
        response = requests.request(method, url, headers=headers, timeout=30, **kwargs)
        schema[path][method].validate_response(response)
        return response

    created = call(
        "POST",
        "/api/v1/scores",
        f"{live_server.url}/api/v1/scores",
        json={"company": {"siren": "552100554"}, "requested_amount": 9000},
    )
    score_url = created.headers["Location"]
    pending = call("GET", "/api/v1/scores/{id}", score_url)
    assert pending.json()["status"] == "pending" and pending.headers["Retry-After"]
    dossier_score(dossier_id=created.json()["id"])
    _backdate_and_grant(created.json()["id"])
    for language in ("fr", "en"):
        scored = call("GET", "/api/v1/scores/{id}", score_url, headers={"Accept-Language": language})
        assert scored.json()["status"] == "scored"

    outcomes = [
        ({"status": "defaulted", "occurred_on": "2025-03-01", "outstanding_amount": 4000}, 201),
        ({"status": "written_off", "occurred_on": "2025-04-01", "written_off_amount": 3500}, 200),
        ({"status": "repaid", "occurred_on": "2025-05-01"}, 409),
    ]
    for body, expected in outcomes:
        response = call("POST", "/api/v1/scores/{id}/outcome", f"{score_url}/outcome", json=body)
        assert response.status_code == expected, response.text
    listed = call("GET", "/api/v1/scores", f"{live_server.url}/api/v1/scores")
    assert listed.json()["results"][0]["outcome"]["status"] == "written_off"


def test_real_webhook_and_watch_answers_read_as_the_schema_says(
    live_server, fuzzing_client, champion, webhook_receiver
):
    """The endpoint's life (change, rotate, pause, resume), a real delivery in its log, a redelivery, and a watch."""
    schema = schemathesis.openapi.from_url(f"{live_server.url}{SCHEMA_URL}?format=json")

    def call(method: str, path: str, expected: int, **kwargs: Any) -> requests.Response:
        url = live_server.url + path.format(**kwargs.pop("params", {}))
        response = requests.request(method, url, headers=fuzzing_client, timeout=30, **kwargs)
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text[:300]}"
        schema[path][method].validate_response(response)
        return response

    hook = call("POST", "/api/v1/webhooks", 201, json={"url": webhook_receiver.url}).json()
    ids = {"id": hook["id"]}
    call("PATCH", "/api/v1/webhooks/{id}", 200, params=ids, json={"mode": "digest", "event_types": []})
    call("PATCH", "/api/v1/webhooks/{id}", 200, params=ids, json={"mode": "immediate"})
    rotated = call("POST", "/api/v1/webhooks/{id}/rotate-secret", 200, params=ids).json()
    assert rotated["secret"].startswith("whsec_") and rotated["previous_secret_expires_at"]
    call("POST", "/api/v1/webhooks/{id}/pause", 200, params=ids)
    assert call("GET", "/api/v1/webhooks/{id}", 200, params=ids).json()["paused"] is True
    call("POST", "/api/v1/webhooks/{id}/resume", 200, params=ids)

    created = call("POST", "/api/v1/scores", 202, json={"company": {"siren": WATCHED_SIREN}, "requested_amount": 9000})
    dossier_score(dossier_id=created.json()["id"])  # its score.completed: a delivery to the endpoint
    delivery = WebhookDelivery.objects.get(endpoint_id=hook["id"])
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"  # to the local receiver, as a worker would
    log = call("GET", "/api/v1/webhooks/{id}/deliveries", 200, params=ids).json()["results"]
    assert [d["message_id"] for d in log] == [delivery.message_id]
    one = {**ids, "message_id": delivery.message_id}
    detail = call("GET", "/api/v1/webhooks/{id}/deliveries/{message_id}", 200, params=one).json()
    assert detail["attempt_log"][0]["status_code"] == 204
    call("POST", "/api/v1/webhooks/{id}/deliveries/{message_id}/redeliver", 202, params=one)
    call("POST", "/api/v1/webhooks/{id}/deliveries/{message_id}/redeliver", 409, params=one)  # pending again

    watch = {"siren": WATCHED_SIREN}
    call("POST", "/api/v1/monitoring", 201, json={"company": watch})
    call("POST", "/api/v1/monitoring", 200, json={"company": watch})
    call("POST", "/api/v1/monitoring", 422, json={"company": {"siren": "552100554"}})  # never scored by this partner
    assert call("GET", "/api/v1/monitoring", 200).json()["results"][0]["company"]["siren"] == WATCHED_SIREN
    call("DELETE", "/api/v1/monitoring/{siren}", 204, params=watch)
    call("DELETE", "/api/v1/monitoring/{siren}", 404, params=watch)
    call("DELETE", "/api/v1/webhooks/{id}", 204, params=ids)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_the_live_api_answers_as_its_schema_says(live_server, fuzzing_client, mode):
    # NUL characters are left to the explicit tests below (test_nul_characters_are_refused_never_a_500).
    config = schemathesis.Config.from_dict({"generation": {"allow-x00": False}})
    schema = schemathesis.openapi.from_url(f"{live_server.url}{SCHEMA_URL}?format=json", config=config)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operations += 1
        failure = _fuzz(result.ok(), live_server.url, fuzzing_client, mode)
        if failure:
            failures.append(failure)
    assert operations == OPERATIONS
    assert not failures, "\n\n".join(failures)


# Found by the fuzzing above on PostgreSQL, whose JSONB refuses U+0000 (SQLite stores it): an Idempotency-Key
# stored the 400 naming a field with NUL, and event details kept it. The API's JSON parser now refuses NUL
# anywhere in a body with a 400, before any view sees it.
@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        (
            "/api/v1/scores",
            '{"requested_amount": 1, "company": {"siren": "552100554", "x\\u0000": 1}}',
            {"HTTP_IDEMPOTENCY_KEY": "nul-1"},
        ),
        (
            "/api/v1/events",
            '{"event_id": "e1", "kind": "payment_delay", "occurred_on": "2025-01-01", '
            '"company": {"siren": "552100554"}, "details": {"note": "a\\u0000b"}}',
            {},
        ),
    ],
    ids=["unknown field named with NUL, with an Idempotency-Key", "event details holding NUL"],
)
def test_nul_characters_are_refused_never_a_500(api, path, body, headers):
    response = api.post(path, body, **headers)
    assert response.status_code == 400, response.content[:300]
    assert "NUL" in response.json()["detail"]


# --- the quick start (docs/api.md) tells the truth -------------------------------------------------------

QUICK_START = ROOT / "docs" / "api.md"


def _python_block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", QUICK_START.read_text(), re.DOTALL)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_the_quick_start_token_and_score_code_runs_against_a_live_server(live_server, fuzzing_client, monkeypatch):
    partner = make_partner_client("Quick Start", ["scores:write", "scores:read"])
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live test server speaks http
    namespace: dict[str, Any] = {
        "CLIENT_ID": partner.client_id,
        "CLIENT_SECRET": partner.client_secret,
    }
    exec(_python_block("fetch_token").replace("https://riskoffice.example", live_server.url), namespace)  # noqa: S102
    api = namespace["api"]
    assert sorted(api.token["scope"]) == ["scores:read", "scores:write"]

    body = {"company": {"siren": "552100554"}, "requested_amount": 25000}
    first = api.post(f"{live_server.url}/api/v1/scores", json=body, headers={"Idempotency-Key": "order-1"})
    retry = api.post(f"{live_server.url}/api/v1/scores", json=body, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert api.get(first.headers["Location"]).json()["status"] == "pending"


def test_the_quick_start_signature_check_accepts_our_signatures_only():
    namespace: dict[str, Any] = {}
    exec(_python_block("def verify"), namespace)  # noqa: S102
    verify = namespace["verify"]
    secret, rotated = signing.secret_generate(), signing.secret_generate()
    body = b'{"type": "score.completed", "data": {}}'
    now = int(time.time())
    headers = signing.headers(secrets_=[rotated, secret], message_id="msg_1", timestamp=now, body=body)
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(signing.secret_generate(), headers, body)
    stale = signing.headers(secrets_=[secret], message_id="msg_1", timestamp=now - 3600, body=body)
    assert not verify(secret, stale, body)


WEBHOOKS_DOC = ROOT / "docs" / "webhooks.md"


def test_the_webhooks_doc_shows_every_event_type_with_a_payload_the_schema_accepts(client, db):
    document = _schema(client)
    examples = dict(re.findall(r"#### `([a-z_.]+)`\n.*?```json\n(.*?)```", WEBHOOKS_DOC.read_text(), re.DOTALL))
    assert set(examples) == {*EVENT_TYPES, DIGEST}
    for event_type, text in examples.items():
        payload = json.loads(text)
        assert payload["type"] == event_type
        assert event_payload_errors(document, payload) == [], event_type


def test_the_webhooks_doc_signature_check_accepts_our_signatures_only():
    blocks = re.findall(r"```python\n(.*?)```", WEBHOOKS_DOC.read_text(), re.DOTALL)
    (stdlib,) = [b for b in blocks if "import hmac" in b]
    namespace: dict[str, Any] = {}
    exec(stdlib, namespace)  # noqa: S102
    verified_event = namespace["verified_event"]
    secret, rotated = signing.secret_generate(), signing.secret_generate()
    body = b'{"id": "evt_1", "type": "score.dropped", "data": {}}'
    headers = signing.headers(secrets_=[rotated, secret], message_id="msg_1", timestamp=int(time.time()), body=body)
    assert verified_event(secret, body, headers)["type"] == "score.dropped"
    assert verified_event(rotated, body, headers)["id"] == "evt_1"
    for forged_secret, forged_body in ((signing.secret_generate(), body), (secret, body + b" ")):
        with pytest.raises(ValueError, match="signature"):
            verified_event(forged_secret, forged_body, headers)


# --- the docs pages in a real browser, cut off from the internet ---------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/api/docs/", ".opblock-summary-path"), ("/api/docs/redoc/", "h2:has-text('Request a score')")],
)
def test_the_docs_pages_render_offline_in_a_browser(live_server, browser_page, path, rendered):
    page = browser_page
    outside: list[str] = []

    def closed_network(route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", closed_network)
    page.goto(f"{live_server.url}{path}")
    page.locator(rendered).first.wait_for()
    if path == "/api/docs/":
        assert page.locator(".opblock").count() == OPERATIONS  # every operation of the API
    assert not outside, f"the page reached outside: {outside}"
    assert not page.broken_resources
