"""Partner access: how a client is made, what its token may do, its sandbox allowance, its limits, its usage.

Tokens come from /o/token/ as a partner would get them; a real OAuth client library (requests-oauthlib)
fetches one from a live server. Admin screens are driven through HTTP as an admin would use them.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session

from dossiers.models import Dossier
from dossiers.services import dossier_score
from riskoffice.models import ApiClient, AuditEvent, Partner
from riskoffice.throttling import ThrottledTokenView
from scoring.model.synthetic import siren_from_number
from tests.conftest import ALL_SCOPES, PASSWORD, login, make_partner_client, obtain_token
from tests.test_sources import apis, live_partner, quiet_sources  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

SIRENS = [siren_from_number(n) for n in range(1000, 1007)]
PROBLEM = "application/problem+json"


def score_request(siren: str = "552100554") -> str:
    return json.dumps({"company": {"siren": siren}, "requested_amount": 25000})


def post_score(client, token: str, siren: str = "552100554"):
    return client.post(
        "/api/v1/scores", score_request(siren), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def token_request(client, client_id: str, secret: str, **data: str):
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/o/token/", {"grant_type": "client_credentials", **data}, HTTP_AUTHORIZATION=basic)


def create_client_by_command(*args: str) -> dict:
    out = io.StringIO()
    call_command("create_partner_client", *args, "--json", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "--json prints one line"
    return json.loads(lines[0])


# --- making a client ------------------------------------------------------------------------------------


def test_the_command_prints_an_id_and_a_secret_that_get_a_token_from_a_live_server(live_server, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the live test server speaks plain HTTP
    created = create_client_by_command("--name", "Acme Lending", "--scopes", "scores:write", "scores:read")

    session = OAuth2Session(client=BackendApplicationClient(client_id=created["client_id"]))
    token = session.fetch_token(
        token_url=f"{live_server.url}/o/token/", client_id=created["client_id"], client_secret=created["client_secret"]
    )

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert sorted(token["scope"]) == ["scores:read", "scores:write"]
    answer = session.get(f"{live_server.url}/api/v1/scores/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404, "the token opens the API; the id is simply unknown"
    client = ApiClient.objects.get(application__client_id=created["client_id"])
    assert client.partner.is_sandbox is False, "a new partner is live unless asked"
    assert client.application.client_secret != created["client_secret"], "only the secret's hash is stored"
    assert AuditEvent.objects.filter(action="api_client.created", object_id=str(client.pk)).exists()


def test_the_command_makes_sandbox_clients_on_request_and_refuses_unknown_scopes():
    created = create_client_by_command("--name", "Try Out", "--scopes", "scores:write", "--sandbox")
    assert ApiClient.objects.get(application__client_id=created["client_id"]).partner.is_sandbox

    with pytest.raises(CommandError, match=r"Unknown scope.*scores:admin"):
        call_command("create_partner_client", "--name", "Typo Lending", "--scopes", "scores:write", "scores:admin")
    assert not Partner.objects.filter(name="Typo Lending").exists(), "nothing is half made"


def test_the_command_prints_the_secret_once_with_a_warning():
    out = io.StringIO()
    call_command("create_partner_client", "--name", "Acme", "--scopes", "scores:read", stdout=out)
    assert "client_secret" in out.getvalue()
    assert "cannot be shown again" in out.getvalue()


@pytest.fixture
def admin_client(client, reference_data):
    from django.contrib.auth.models import User

    login(client, User.objects.create_superuser("root", "root@example.com", PASSWORD))
    return client


def test_an_admin_makes_a_client_in_one_form_and_sees_the_secret_once(admin_client):
    add_url = reverse("admin:riskoffice_apiclient_add")
    form = admin_client.get(add_url).content.decode()
    for scope in ALL_SCOPES:
        assert f'value="{scope}"' in form, "scopes are choices, not typed JSON"

    answer = admin_client.post(
        add_url, {"partner_name": "Northwind Trade", "scopes": ["scores:write", "scores:read"], "sandbox": ""}
    )

    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"]
    page = answer.content.decode()
    client = ApiClient.objects.get(partner__name="Northwind Trade")
    secret = page.split('id="client-secret">')[1].split("<")[0]
    assert token_request(admin_client, client.application.client_id, secret).status_code == 200
    assert (
        secret not in admin_client.get(reverse("admin:riskoffice_apiclient_change", args=[client.pk])).content.decode()
    )
    assert client.partner.is_sandbox is False


def test_an_admin_form_with_an_unknown_scope_is_refused_and_makes_nothing(admin_client):
    answer = admin_client.post(
        reverse("admin:riskoffice_apiclient_add"), {"partner_name": "Bad Scope Ltd", "scopes": ["scores:everything"]}
    )
    assert answer.status_code == 200
    assert "Select a valid choice" in answer.content.decode()
    assert not Partner.objects.filter(name="Bad Scope Ltd").exists()


def _change(admin_client, api_client: ApiClient, **fields):
    data = {
        "scopes": list(api_client.allowed_scopes),
        "is_active": "on" if api_client.is_active else "",
        "sandbox_allowance": api_client.sandbox_allowance or "",
        "sandbox_unlimited": "on" if api_client.sandbox_unlimited else "",
        "rate_limit_per_minute": api_client.rate_limit_per_minute or "",
        **fields,
    }
    data = {key: value for key, value in data.items() if value not in ("", None)}
    answer = admin_client.post(reverse("admin:riskoffice_apiclient_change", args=[api_client.pk]), data)
    assert answer.status_code == 302, answer.content.decode()[:2000]


def test_disabling_a_client_revokes_its_tokens_and_refuses_new_ones(admin_client, marketplace):
    token = obtain_token(admin_client, marketplace)
    admin_client_api = admin_client  # the same test client also carries the admin session: the API ignores it

    _change(admin_client, marketplace.api_client, is_active="")

    assert not AccessToken.objects.filter(application=marketplace.api_client.application).exists()
    answer = admin_client_api.get(
        "/api/v1/scores/00000000-0000-4000-8000-000000000000", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert answer.status_code == 401
    refused = token_request(admin_client, marketplace.client_id, marketplace.client_secret)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"
    assert AuditEvent.objects.filter(action="api_client.changed", object_id=str(marketplace.api_client.pk)).exists()


def test_taking_a_scope_away_revokes_the_tokens_that_carried_it(admin_client, marketplace):
    token = obtain_token(admin_client, marketplace)

    _change(admin_client, marketplace.api_client, scopes=["scores:read"])

    answer = admin_client.get("/api/v1/webhooks", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 401
    fresh = obtain_token(admin_client, marketplace)
    assert admin_client.get("/api/v1/webhooks", HTTP_AUTHORIZATION=f"Bearer {fresh}").status_code == 403


# --- what a token is -------------------------------------------------------------------------------------


def test_tokens_are_stored_hashed(client, marketplace):
    token = obtain_token(client, marketplace)
    stored = AccessToken.objects.get(application=marketplace.api_client.application)
    assert stored.token == ""
    assert stored.token_checksum == hashlib.sha256(token.encode()).hexdigest()


def test_a_token_in_the_query_string_is_not_accepted(client, marketplace):
    token = obtain_token(client, marketplace)
    answer = client.get(f"/api/v1/webhooks?access_token={token}")
    assert answer.status_code == 401
    assert answer["Content-Type"].startswith(PROBLEM)


@pytest.fixture
def rebuilt_token_server():
    """The token view builds its server once per process, from the settings of that moment: build it anew."""

    def forget() -> None:
        if "_oauthlib_core" in vars(ThrottledTokenView):
            delattr(ThrottledTokenView, "_oauthlib_core")

    forget()
    yield
    forget()


def test_the_token_lifetime_is_configurable(client, marketplace, settings, rebuilt_token_server):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ACCESS_TOKEN_EXPIRE_SECONDS": 1800}
    answer = token_request(client, marketplace.client_id, marketplace.client_secret)
    assert answer.json()["expires_in"] == 1800


@pytest.mark.parametrize("grant", ["password", "authorization_code", "refresh_token", "implicit"])
def test_only_the_client_credentials_grant_exists(client, marketplace, grant):
    # Even an application an admin made for the password grant gets no token through it.
    Application.objects.filter(pk=marketplace.api_client.application_id).update(authorization_grant_type=grant)
    answer = client.post(
        "/o/token/",
        {"grant_type": grant, "username": "analyst", "password": PASSWORD, "code": "x", "refresh_token": "x"},
        HTTP_AUTHORIZATION=marketplace.basic_auth,
    )
    assert answer.status_code in (400, 401)
    assert "access_token" not in answer.content.decode()


def test_an_application_made_for_another_grant_gets_no_client_credentials_token(client, marketplace):
    Application.objects.filter(pk=marketplace.api_client.application_id).update(authorization_grant_type="password")
    answer = token_request(client, marketplace.client_id, marketplace.client_secret)
    assert answer.status_code == 401


def test_an_unknown_client_and_a_wrong_secret_get_the_same_answer(client, marketplace):
    unknown = token_request(client, "no-such-client", "whatever")
    wrong = token_request(client, marketplace.client_id, "not-the-secret")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


# --- the sandbox allowance --------------------------------------------------------------------------------


def test_a_sandbox_client_has_five_scores_then_a_documented_problem(client, db):
    sandbox = make_partner_client("Try Out", ["scores:write", "scores:read"], allowance=None)
    token = obtain_token(client, sandbox)

    answers = [post_score(client, token, siren) for siren in SIRENS[:6]]

    assert [a.status_code for a in answers] == [202] * 5 + [429]
    refused = answers[-1]
    assert refused["Content-Type"].startswith(PROBLEM)
    assert refused.json()["type"] == "urn:riskoffice:problem:sandbox-allowance-exhausted"
    assert 13 * 86400 < int(refused["Retry-After"]) <= 14 * 86400
    assert Dossier.objects.filter(api_client=sandbox.api_client).count() == 5


def test_an_admin_lifts_a_sandbox_allowance_and_the_default_is_configurable(admin_client, settings):
    settings.SANDBOX_ALLOWANCE = 1
    sandbox = make_partner_client("Benchmark", ["scores:write"], allowance=None)
    token = obtain_token(admin_client, sandbox)
    assert post_score(admin_client, token, SIRENS[0]).status_code == 202
    assert post_score(admin_client, token, SIRENS[1]).status_code == 429

    _change(admin_client, sandbox.api_client, sandbox_allowance=3)

    assert post_score(admin_client, token, SIRENS[1]).status_code == 202


def test_an_admin_lifts_a_sandbox_allowance_entirely_and_the_change_is_audited(admin_client, settings):
    settings.SANDBOX_ALLOWANCE = 1
    sandbox = make_partner_client("Load Test", ["scores:write"], allowance=None)
    token = obtain_token(admin_client, sandbox)
    assert post_score(admin_client, token, SIRENS[0]).status_code == 202
    assert post_score(admin_client, token, SIRENS[1]).status_code == 429

    _change(admin_client, sandbox.api_client, sandbox_unlimited="on")

    assert [post_score(admin_client, token, siren).status_code for siren in SIRENS[1:4]] == [202, 202, 202]
    event = AuditEvent.objects.filter(action="api_client.changed", object_id=str(sandbox.api_client.pk)).get()
    assert (event.before["sandbox_unlimited"], event.after["sandbox_unlimited"]) == (False, True)


def test_the_command_makes_an_unlimited_sandbox_client_and_refuses_a_word_it_does_not_know(db):
    created = create_client_by_command(
        "--name", "Bench", "--scopes", "scores:write", "--sandbox", "--allowance", "unlimited"
    )
    client = ApiClient.objects.get(application__client_id=created["client_id"])
    assert client.sandbox_unlimited and client.sandbox_allowance is None
    with pytest.raises(CommandError, match="whole number of scores, or 'unlimited'"):
        create_client_by_command("--name", "Bench 2", "--scopes", "scores:write", "--sandbox", "--allowance", "lots")


def test_requests_older_than_the_window_no_longer_count(client, settings):
    settings.SANDBOX_ALLOWANCE = 1
    sandbox = make_partner_client("Try Out", ["scores:write"], allowance=None)
    token = obtain_token(client, sandbox)
    assert post_score(client, token, SIRENS[0]).status_code == 202
    Dossier.objects.filter(api_client=sandbox.api_client).update(created_at=timezone.now() - timedelta(days=15))
    assert post_score(client, token, SIRENS[1]).status_code == 202


def test_live_clients_have_no_allowance(client, settings, live_partner):  # noqa: F811
    settings.SANDBOX_ALLOWANCE = 0
    token = obtain_token(client, live_partner)
    assert post_score(client, token).status_code == 202


# --- rate limits ---------------------------------------------------------------------------------------------


def test_a_client_past_its_rate_limit_gets_429_with_retry_after_and_others_do_not(client, marketplace, other_partner):
    ApiClient.objects.filter(pk=marketplace.api_client.pk).update(rate_limit_per_minute=3)
    token, other = obtain_token(client, marketplace), obtain_token(client, other_partner)
    url = "/api/v1/webhooks"

    answers = [client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]
    refused = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert refused["Content-Type"].startswith(PROBLEM)
    assert refused.json()["type"] == "urn:riskoffice:problem:throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 200


def test_the_default_rate_limit_applies_to_clients_without_their_own(client, marketplace, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 2
    token = obtain_token(client, marketplace)
    statuses = [client.get("/api/v1/webhooks", HTTP_AUTHORIZATION=f"Bearer {token}").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_token_endpoint_is_throttled_by_address(client, marketplace, settings):
    settings.TOKEN_RATE_LIMIT_PER_MINUTE = 3
    statuses = [token_request(client, marketplace.client_id, "guess").status_code for _ in range(3)]
    refused = token_request(client, marketplace.client_id, marketplace.client_secret)

    assert statuses == [401, 401, 401]
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith(PROBLEM)
    assert int(refused["Retry-After"]) >= 1


@pytest.mark.parametrize("login_url", ["/login/", "/admin/login/"])
def test_logins_lock_after_repeated_failures(client, analyst, settings, login_url):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(login_url, {"username": analyst.username, "password": "wrong password"})

    locked = client.post(login_url, {"username": analyst.username, "password": PASSWORD})

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_successful_login_before_the_limit_resets_the_count(client, analyst, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        client.post("/login/", {"username": analyst.username, "password": "wrong password"})
    assert client.post("/login/", {"username": analyst.username, "password": PASSWORD}).status_code == 302


# --- usage metering ----------------------------------------------------------------------------------------


def test_monthly_usage_counts_requests_scores_and_billable_scores_per_client(
    admin_client,
    marketplace,
    live_partner,  # noqa: F811
    apis,  # noqa: F811
    champion,
):
    quiet_sources(apis)
    for partner_client, sirens in ((marketplace, SIRENS[:3]), (live_partner, SIRENS[3:5])):
        token = obtain_token(admin_client, partner_client)
        for siren in sirens:
            answer = post_score(admin_client, token, siren)
            dossier_score(dossier_id=answer.json()["id"])
    Dossier.objects.filter(api_client=marketplace.api_client).update(updated_at=timezone.now())

    page = admin_client.get(reverse("admin:riskoffice_apiclient_usage"))
    exported = admin_client.get(reverse("admin:riskoffice_apiclient_usage"), {"format": "csv"})

    assert page.status_code == 200
    assert exported["Content-Type"].startswith("text/csv")
    rows = {row["client_id"]: row for row in csv.DictReader(io.StringIO(exported.content.decode()))}
    sandbox_row, live_row = rows[marketplace.client_id], rows[live_partner.client_id]
    assert (sandbox_row["mode"], sandbox_row["requested"], sandbox_row["billable_scores"]) == ("sandbox", "3", "0")
    assert (live_row["mode"], live_row["requested"], live_row["billable_scores"]) == ("live", "2", "2")
    assert live_row["month"] == timezone.localdate().strftime("%Y-%m")
    assert live_partner.client_id in page.content.decode()


def test_the_usage_page_refuses_unreadable_months_and_is_for_staff_only(admin_client, client, analyst):
    answer = admin_client.get(reverse("admin:riskoffice_apiclient_usage"), {"from": "2026-13"})
    assert answer.status_code == 400
    assert "YYYY-MM" in answer.content.decode()
    admin_client.logout()
    assert client.login(username=analyst.username, password=PASSWORD)
    assert client.get(reverse("admin:riskoffice_apiclient_usage")).status_code == 302  # to the admin login


def test_the_usage_export_shows_a_partner_named_like_a_formula_as_text(admin_client, db):
    named = create_client_by_command("--name", "=SUM(1+1) Trading", "--scopes", "scores:write", "--sandbox")
    token = token_request(admin_client, named["client_id"], named["client_secret"]).json()["access_token"]
    assert post_score(admin_client, token).status_code == 202

    exported = admin_client.get(reverse("admin:riskoffice_apiclient_usage"), {"format": "csv"})

    (row,) = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert row["partner"] == "'=SUM(1+1) Trading"
