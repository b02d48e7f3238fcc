"""POST /api/v1/scores and GET /api/v1/scores/{id}, as a partner's engineer meets them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection

from dossiers.models import Dossier
from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent

from .conftest import make_partner_client, obtain_token, problem_of

VALID = {"company": {"siren": "552100554", "vat": "FR96552100554"}, "bank_data": ["tok_123"], "requested_amount": 25000}


# --- authentication and scopes -------------------------------------------------------------


def test_client_credentials_token_lives_one_hour(client, marketplace):
    response = client.post("/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=marketplace.basic_auth)
    assert response.status_code == 200
    assert response.json()["expires_in"] == 3600
    assert set(response.json()["scope"].split()) == set(marketplace.scopes)


def test_password_grant_is_refused(client, marketplace):
    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "x", "password": "y"},
        HTTP_AUTHORIZATION=marketplace.basic_auth,
    )
    assert response.status_code in (400, 401)
    assert "access_token" not in response.json()


def test_a_client_cannot_obtain_a_scope_it_was_not_granted(client, db):
    reader = make_partner_client("Read Only Insurer", ["scores:read"])
    response = client.post(
        "/o/token/", {"grant_type": "client_credentials", "scope": "scores:write"}, HTTP_AUTHORIZATION=reader.basic_auth
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_without_a_token_the_api_answers_401_problem(client, db):
    response = client.post("/api/v1/scores", VALID, content_type="application/json")
    assert response.status_code == 401
    assert "Bearer" in response["WWW-Authenticate"]
    assert problem_of(response)["title"] == "Authentication required"


def test_a_token_without_the_write_scope_cannot_create(client, db):
    reader = make_partner_client("Read Only Insurer", ["scores:read"])
    token = obtain_token(client, reader)
    response = client.post(
        "/api/v1/scores", VALID, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403
    problem_of(response)
    assert Dossier.objects.count() == 0


def test_an_invalid_token_is_refused(client, db):
    response = client.get(
        "/api/v1/scores/00000000-0000-0000-0000-000000000000", HTTP_AUTHORIZATION="Bearer not-a-token"
    )
    assert response.status_code == 401
    problem_of(response)


# --- creating a dossier ----------------------------------------------------------------------


def test_a_valid_request_creates_a_dossier_answers_202_and_enqueues_scoring_after_commit(
    api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/v1/scores", VALID)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert response["Location"] == f"http://testserver/api/v1/scores/{body['id']}"
    dossier = Dossier.objects.get(pk=body["id"])
    assert dossier.partner == api.partner.partner
    assert dossier.company.siren == "552100554"
    assert dossier.requested_amount == Decimal("25000")
    assert dossier.bank_tokens == ["tok_123"]
    assert len(callbacks) == 1  # the scoring task, sent only once the dossier is committed
    assert AuditEvent.objects.filter(
        action="dossier.created", object_id=str(dossier.pk), actor_client=api.partner.api_client
    ).exists()


def test_bank_tokens_are_encrypted_at_rest(api):
    api.post("/api/v1/scores", dict(VALID, bank_data=["tok_SECRET_aggregator_value"]))
    with connection.cursor() as cursor:  # the only dossier, read beneath the ORM
        cursor.execute("SELECT bank_tokens_json FROM dossiers_dossier")
        raw = bytes(cursor.fetchone()[0])
    assert b"tok_SECRET_aggregator_value" not in raw
    assert len(raw) > 40


def test_siren_with_spaces_and_vat_in_lower_case_are_normalised(api):
    response = api.post("/api/v1/scores", dict(VALID, company={"siren": "552 100 554", "vat": "fr96552100554"}))
    assert response.status_code == 202
    assert Dossier.objects.get().company.siren == "552100554"


def test_bank_data_is_optional(api):
    response = api.post("/api/v1/scores", {"company": {"siren": "732829320"}, "requested_amount": "1500.50"})
    assert response.status_code == 202
    assert Dossier.objects.get().bank_tokens == []


BAD_BODIES = [
    ("missing company", {"requested_amount": 1000}, "company"),
    ("missing siren", {"company": {}, "requested_amount": 1000}, "company.siren"),
    ("siren as a number", {"company": {"siren": 552100554}, "requested_amount": 1000}, "company.siren"),
    (
        "siren failing Luhn (the article's example)",
        {"company": {"siren": "812345678"}, "requested_amount": 1000},
        "company.siren",
    ),
    ("siren too short", {"company": {"siren": "55210055"}, "requested_amount": 1000}, "company.siren"),
    (
        "VAT of the article",
        {"company": {"siren": "552100554", "vat": "FR78812345678"}, "requested_amount": 1000},
        "company.vat",
    ),
    (
        "VAT with a wrong key",
        {"company": {"siren": "552100554", "vat": "FR11552100554"}, "requested_amount": 1000},
        "company.vat",
    ),
    ("company not an object", {"company": "552100554", "requested_amount": 1000}, "company"),
    (
        "unknown company field",
        {"company": {"siren": "552100554", "name": "X"}, "requested_amount": 1000},
        "company.name",
    ),
    ("missing amount", {"company": {"siren": "552100554"}}, "requested_amount"),
    ("negative amount", {"company": {"siren": "552100554"}, "requested_amount": -5}, "requested_amount"),
    ("amount not a number", {"company": {"siren": "552100554"}, "requested_amount": "lots"}, "requested_amount"),
    ("amount as a boolean", {"company": {"siren": "552100554"}, "requested_amount": True}, "requested_amount"),
    ("absurd amount", {"company": {"siren": "552100554"}, "requested_amount": 10**12}, "requested_amount"),
    (
        "bank_data not a list",
        {"company": {"siren": "552100554"}, "requested_amount": 1, "bank_data": "tok"},
        "bank_data",
    ),
    (
        "bank token not a string",
        {"company": {"siren": "552100554"}, "requested_amount": 1, "bank_data": [12]},
        "bank_data",
    ),
    ("empty bank token", {"company": {"siren": "552100554"}, "requested_amount": 1, "bank_data": [""]}, "bank_data"),
    ("unknown top-level field", dict(VALID, amount=5), "amount"),
    ("a JSON array", [VALID], "body"),
    ("a JSON string", '"hello"', "body"),
    ("an empty object", {}, "company"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES])
def test_bad_input_gets_a_400_problem_naming_the_field_and_stores_nothing(api, case, body, field):
    payload = body if isinstance(body, str) else json.dumps(body)
    response = api.post("/api/v1/scores", payload)
    assert response.status_code == 400, response.content
    problem = problem_of(response)
    assert any(name == field or name.startswith(f"{field}[") for name in problem["errors"]), problem
    assert field.split(".")[-1] in problem["detail"] or field == "body"
    assert Dossier.objects.count() == 0


def test_malformed_json_gets_a_400_problem(api):
    response = api.post(
        "/api/v1/scores",
        '{"company": {"siren": "552100554"',
    )
    assert response.status_code == 400
    assert "JSON parse error" in problem_of(response)["detail"]
    assert Dossier.objects.count() == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_gets_415(api, content_type):
    response = api.post("/api/v1/scores", "company=552100554", content_type=content_type)
    assert response.status_code == 415
    assert problem_of(response)["title"] == "Unsupported media type"
    assert Dossier.objects.count() == 0


def test_an_unsupported_method_gets_405(client, marketplace):
    token = obtain_token(client, marketplace)
    response = client.delete("/api/v1/scores", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    problem_of(response)


def test_an_unknown_api_path_gets_a_404_problem(api):
    response = api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    problem_of(response)


# --- reading a score -----------------------------------------------------------------------------


def test_a_pending_dossier_reads_as_pending_with_retry_after(api):
    created = api.post("/api/v1/scores", VALID).json()
    response = api.get(f"/api/v1/scores/{created['id']}")
    assert response.status_code == 200
    assert response["Retry-After"] == "1"
    body = response.json()
    assert body["status"] == "pending"
    assert body["score"] is None and body["explainability"] == []


def test_a_scored_dossier_reads_like_the_articles_example(api, champion):
    created = api.post("/api/v1/scores", VALID).json()
    dossier_score(dossier_id=created["id"])
    body = api.get(f"/api/v1/scores/{created['id']}").json()
    assert body["status"] == "scored"
    assert isinstance(body["score"], int) and 0 <= body["score"] <= 1000
    assert 0 < body["probability_of_default"] < 1
    assert body["decision"] == body["recommendation"] in {"accept", "guarantee", "refuse", "refer"}
    assert body["model_version"] == champion.label
    assert body["policy_version"] == "b2b-policy-v1"
    assert body["company"] == {"siren": "552100554", "vat": "FR96552100554", "name": body["company"]["name"]}
    assert body["company"]["name"]
    assert 1 <= len(body["explainability"]) <= 12  # up to four of each kind: raised, lowered, missing
    first = body["explainability"][0]
    assert set(first) == {"feature", "text", "direction", "contribution", "value"}


def test_factor_texts_follow_accept_language(api, champion):
    created = api.post("/api/v1/scores", VALID).json()
    dossier_score(dossier_id=created["id"])
    french = api.get(f"/api/v1/scores/{created['id']}").json()["explainability"]
    english = api.get(f"/api/v1/scores/{created['id']}", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").json()
    assert [f["feature"] for f in french] == [f["feature"] for f in english["explainability"]]
    assert [f["text"] for f in french] != [f["text"] for f in english["explainability"]]


def test_a_partner_never_sees_another_partners_dossier(client, api, other_partner):
    created = api.post("/api/v1/scores", VALID).json()
    token = obtain_token(client, other_partner)
    response = client.get(f"/api/v1/scores/{created['id']}", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 404
    assert "552100554" not in response.content.decode()
    problem_of(response)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
def test_an_unknown_or_malformed_id_gets_404(api, bad_id):
    response = api.get(f"/api/v1/scores/{bad_id}")
    assert response.status_code == 404
    problem_of(response)


def test_the_same_company_is_stored_once_across_dossiers(api, other_partner):
    api.post("/api/v1/scores", VALID)
    dossier_create(
        partner=other_partner.partner,
        siren="552100554",
        requested_amount=Decimal(10),
        bank_tokens=[],
        actor=Actor(client=other_partner.api_client),
    )
    assert Dossier.objects.count() == 2
    assert Dossier.objects.values("company").distinct().count() == 1
