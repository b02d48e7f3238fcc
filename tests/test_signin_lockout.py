"""Guessing passwords: after LOGIN_FAILURE_LIMIT wrong ones, a username is locked out from that address (django-axes).

Through the doors an attacker uses: the back-office login form and the admin's, over HTTP.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def guess(client, url: str, username: str, times: int, **extra: str) -> None:
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "not-the-password"}, **extra)
        assert response.status_code in (200, 429)  # the form again, then the lockout page


def test_the_back_office_login_locks_a_username_out_after_repeated_failures(client, analyst):
    guess(client, "/login/", analyst.username, settings.AXES_FAILURE_LIMIT)

    response = client.post("/login/", {"username": analyst.username, "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert client.get("/dossiers/").status_code == 302  # not signed in: back to the login form


def test_twenty_wrong_passwords_then_the_right_one_do_not_sign_in(client, analyst):
    """The demo's measurement (issue 10): 20 wrong passwords, then the right one."""
    guess(client, "/login/", analyst.username, 20)

    response = client.post("/login/", {"username": analyst.username, "password": PASSWORD})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_admin_login_locks_a_username_out_after_repeated_failures(client, reference_data):
    User.objects.create_superuser("root", password=PASSWORD)
    guess(client, "/admin/login/", "root", settings.AXES_FAILURE_LIMIT)

    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_fewer_failures_than_the_limit_leave_the_right_password_working(client, analyst):
    guess(client, "/login/", analyst.username, settings.AXES_FAILURE_LIMIT - 1)

    response = client.post("/login/", {"username": analyst.username, "password": PASSWORD})

    assert response.status_code == 302
    assert client.get("/dossiers/").status_code == 200


def test_the_lockout_holds_a_username_at_one_address_not_everywhere(client, analyst):
    guess(client, "/login/", analyst.username, settings.AXES_FAILURE_LIMIT, REMOTE_ADDR="203.0.113.7")

    elsewhere = client.post("/login/", {"username": analyst.username, "password": PASSWORD}, REMOTE_ADDR="10.1.2.3")

    assert elsewhere.status_code == 302  # the analyst at their desk is not locked out by someone else's guesses


def test_behind_a_proxy_a_forged_forwarded_address_does_not_escape_the_lockout(client, analyst, settings):
    """With TRUSTED_PROXY_COUNT=1, the address is the one the proxy appended, whatever the client wrote before it."""
    settings.TRUSTED_PROXY_COUNT = 1
    for n in range(settings.AXES_FAILURE_LIMIT):
        forged = f"198.51.100.{n}, 203.0.113.7"  # the client's invention, then what the proxy saw
        guess(client, "/login/", analyst.username, 1, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forged)

    response = client.post(
        "/login/",
        {"username": analyst.username, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7",
    )

    assert response.status_code == 429
