"""Security headers on every page: a Content-Security-Policy of our own origin only, with a nonce for the few inline
blocks; no framing; no referrer to other sites; HTTPS only in production (HSTS, redirect)."""

from __future__ import annotations

import re

import pytest

from .conftest import login

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_strict_policy(response) -> None:
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert all(source == "'self'" or source.startswith("'nonce-") for source in csp["script-src"])


@pytest.mark.parametrize("url", ["/login/", "/dossiers/", "/two-factor/", "/admin/login/"])
def test_back_office_pages_carry_a_strict_policy_and_the_other_headers(client, senior, url):
    login(client, senior)

    response = client.get(url)

    assert response.status_code == 200
    assert_strict_policy(response)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("url", ["/api/docs/", "/api/docs/redoc/"])
def test_the_api_docs_pages_carry_the_policy_and_their_inline_blocks_its_nonce(client, url):
    response = client.get(url)

    assert response.status_code == 200
    csp = directives(response)
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    body = response.content.decode()
    inline = re.findall(r"<(script|style)(?![^>]*\bsrc=)([^>]*)>", body)
    assert inline, "the page has inline blocks"
    for _tag, attributes in inline:
        nonce = re.search(r'nonce="([^"]+)"', attributes)
        assert nonce, f"an inline block without a nonce: {attributes!r}"
        assert f"'nonce-{nonce.group(1)}'" in response["Content-Security-Policy"]


def test_the_partner_api_answers_with_the_policy_too(client):
    response = client.get("/api/v1/scores")

    assert response.status_code == 401
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_in_production_http_is_redirected_and_https_gets_hsts(client, settings):
    """The production values (tests/test_settings.py checks production sets them), over HTTP."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    plain = client.get("/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/login/"
    assert client.get("/healthz").status_code == 200  # load balancers probe over plain HTTP

    secure = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
