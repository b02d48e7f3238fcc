"""A back-office session ends after SESSION_IDLE_TIMEOUT_MINUTES without a request, and SESSION_ABSOLUTE_TIMEOUT_HOURS
after sign-in whatever happens. The session's stored timestamps are aged instead of waiting."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from riskoffice.signin import LAST_SEEN_AT, SIGNED_IN_AT

from .conftest import login

pytestmark = pytest.mark.django_db


def age(client, key: str, seconds: float) -> None:
    session = client.session
    session[key] = session[key] - seconds
    session.save()


def test_signing_in_stamps_the_session(client, analyst):
    before = time.time()
    login(client, analyst)

    session = client.session
    assert before <= session[SIGNED_IN_AT] <= time.time()
    assert before <= session[LAST_SEEN_AT] <= time.time()


def test_a_session_idle_longer_than_the_limit_is_signed_out(client, analyst):
    login(client, analyst)
    age(client, LAST_SEEN_AT, settings.SESSION_IDLE_TIMEOUT_MINUTES * 60 + 1)

    response = client.get("/dossiers/")

    assert response.status_code == 302 and response["Location"] == "/login/?next=%2Fdossiers%2F"
    assert "_auth_user_id" not in client.session
    assert "Your session has expired" in client.get(response["Location"]).content.decode()


def test_a_session_idle_a_little_less_than_the_limit_goes_on_and_is_refreshed(client, analyst):
    login(client, analyst)
    age(client, LAST_SEEN_AT, settings.SESSION_IDLE_TIMEOUT_MINUTES * 60 - 5)

    assert client.get("/dossiers/").status_code == 200
    assert time.time() - client.session[LAST_SEEN_AT] < 60  # the request counted as activity


def test_a_busy_session_still_ends_at_the_absolute_limit(client, analyst):
    login(client, analyst)
    age(client, SIGNED_IN_AT, settings.SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600 + 1)

    response = client.get("/dossiers/")

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session


def test_the_admin_is_under_the_same_timeouts(client, senior):
    login(client, senior)
    age(client, LAST_SEEN_AT, settings.SESSION_IDLE_TIMEOUT_MINUTES * 60 + 1)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_the_session_cookie_never_outlives_the_absolute_limit(client, analyst):
    response = client.post("/login/", {"username": analyst.username, "password": "correct horse battery staple"})

    assert response.cookies["sessionid"]["max-age"] == settings.SESSION_ABSOLUTE_TIMEOUT_HOURS * 3600
    assert response.cookies["sessionid"]["httponly"]
