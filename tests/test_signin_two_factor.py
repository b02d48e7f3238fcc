"""Two-factor sign-in (TOTP): required for senior analysts and admins, offered to analysts.

Everything goes through the forms a person uses: the password, then the code their authenticator app shows.
"""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from riskoffice.models import AuditEvent
from riskoffice.roles import ADMIN

from .conftest import PASSWORD, login, totp_code, totp_code_for, totp_device

pytestmark = pytest.mark.django_db

WRONG = "000000"


def password_only(client, user: User) -> None:
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302


def a_wrong_code(device: TOTPDevice) -> str:
    right = totp_code(device)
    return "111111" if right == WRONG else WRONG


@pytest.fixture
def admin_user(reference_data) -> User:
    user = User.objects.create_user("ada.admin", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=ADMIN))
    return user


@pytest.fixture
def superuser(reference_data) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


# --- required for senior analysts and admins ---------------------------------------------------------------------


def test_a_senior_analyst_without_an_app_is_sent_to_enrol_one_before_anything_else(client, senior):
    password_only(client, senior)

    for url in ("/dossiers/", "/scoring/policy/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/two-factor/?next="), (url, response["Location"])

    page = client.get("/two-factor/?next=/dossiers/")
    assert "Your role requires two-factor sign-in" in page.content.decode()


def test_a_senior_analyst_with_an_app_must_give_the_code_to_reach_the_queue(client, senior):
    device = totp_device(senior)
    password_only(client, senior)

    refused = client.get("/dossiers/")
    assert refused.status_code == 302 and refused["Location"] == "/two-factor/verify/?next=%2Fdossiers%2F"

    response = client.post("/two-factor/verify/", {"code": totp_code(device), "next": "/dossiers/"})

    assert response.status_code == 302 and response["Location"] == "/dossiers/"
    assert client.get("/dossiers/").status_code == 200


@pytest.mark.parametrize("who", ["admin_user", "superuser"])
def test_an_admin_reaches_the_django_admin_only_after_the_code(client, request, who):
    user = request.getfixturevalue(who)
    device = totp_device(user)
    client.post("/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"})

    refused = client.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/two-factor/verify/")
    assert client.get("/admin/auth/user/").status_code == 302

    client.post("/two-factor/verify/", {"code": totp_code(device), "next": "/admin/"})

    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_is_refused_and_the_session_stays_at_the_code_step(client, senior):
    device = totp_device(senior)
    password_only(client, senior)

    response = client.post("/two-factor/verify/", {"code": a_wrong_code(device)})

    assert response.status_code == 200
    assert "Wrong code" in response.content.decode()
    assert client.get("/dossiers/").status_code == 302


@pytest.mark.parametrize("garbage", ["", "12345", "abcdef", "1234567"])
def test_a_malformed_code_is_a_form_error(client, senior, garbage):
    totp_device(senior)
    password_only(client, senior)

    response = client.post("/two-factor/verify/", {"code": garbage})

    assert response.status_code == 200
    assert 'class="errors"' in response.content.decode()


def test_after_a_wrong_code_the_device_makes_the_next_try_wait(client, senior, settings):
    """django-otp's throttle: after a failure, even the right code waits (1 s, 2 s, 4 s... times the factor)."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 3600  # an hour: the wait cannot pass during the test
    device = totp_device(senior)
    password_only(client, senior)
    client.post("/two-factor/verify/", {"code": a_wrong_code(device)})

    response = client.post("/two-factor/verify/", {"code": totp_code(device)})

    assert response.status_code == 200
    assert "Too many wrong codes: wait until" in response.content.decode()
    assert client.get("/dossiers/").status_code == 302


def test_repeated_wrong_codes_sign_the_session_out(client, senior, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no wait between tries, to reach the session's limit
    device = totp_device(senior)
    password_only(client, senior)

    for _ in range(settings.TWO_FACTOR_FAILURE_LIMIT - 1):
        assert client.post("/two-factor/verify/", {"code": a_wrong_code(device)}).status_code == 200
    response = client.post("/two-factor/verify/", {"code": a_wrong_code(device)})

    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="two_factor.signed_out", actor_user=senior).exists()


def test_a_code_is_accepted_once(client, senior):
    device = totp_device(senior)
    password_only(client, senior)
    code = totp_code(device)
    client.post("/two-factor/verify/", {"code": code})
    client.post("/logout/")
    password_only(client, senior)

    replay = client.post("/two-factor/verify/", {"code": code})

    assert replay.status_code == 200 and "Wrong code" in replay.content.decode()


def test_a_user_with_an_app_cannot_enrol_another_before_giving_the_code(client, senior):
    """Enrolling a second app would get round the first: the enrolment page asks for the code first."""
    totp_device(senior)
    password_only(client, senior)

    response = client.get("/two-factor/")

    assert response.status_code == 302 and response["Location"].startswith("/two-factor/verify/")


def test_the_two_factor_pages_need_a_password_first(client, reference_data):
    for url in ("/two-factor/", "/two-factor/verify/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_next_address_after_the_code_stays_on_this_site(client, senior):
    device = totp_device(senior)
    password_only(client, senior)

    response = client.post("/two-factor/verify/", {"code": totp_code(device), "next": "https://evil.example/"})

    assert response.status_code == 302 and response["Location"] == "/dossiers/"


# --- offered to analysts ---------------------------------------------------------------------------------------


def test_an_analyst_reaches_the_queue_with_the_password_alone(client, analyst):
    password_only(client, analyst)

    assert client.get("/dossiers/").status_code == 200


def test_an_analyst_enrols_an_app_from_the_secret_the_page_shows_and_is_then_asked_for_codes(client, analyst):
    password_only(client, analyst)
    page = client.get("/two-factor/")
    body = page.content.decode()
    assert "Two-factor sign-in is off" in body
    assert "<svg" in body  # the QR code, inline
    secret = re.search(r'data-testid="two-factor-secret">([A-Z2-7 ]+)<', body).group(1).replace(" ", "")
    assert f"secret={secret}" in body  # the otpauth URI

    response = client.post("/two-factor/", {"code": totp_code_for(base64.b32decode(secret))})

    assert response.status_code == 302
    device = TOTPDevice.objects.get(user=analyst)
    assert device.confirmed
    assert AuditEvent.objects.filter(action="two_factor.enrolled", actor_user=analyst).exists()
    assert "Two-factor sign-in is on" in client.get("/two-factor/").content.decode()

    client.post("/logout/")
    password_only(client, analyst)
    assert client.get("/dossiers/").status_code == 302  # a device now means a code at each sign-in
    login(client, analyst)
    assert client.get("/dossiers/").status_code == 200


def test_enrolment_with_a_wrong_code_leaves_two_factor_off(client, analyst):
    password_only(client, analyst)
    client.get("/two-factor/")

    response = client.post("/two-factor/", {"code": WRONG})

    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=analyst, confirmed=True).exists()


# --- the demo --------------------------------------------------------------------------------------------------


def test_the_demo_prints_how_its_senior_analysts_and_admin_get_a_code(champion, capsys):
    call_command("setup_demo", "--no-samples")
    output = capsys.readouterr().out

    assert "manage.py totp_code" in output
    for name in ("senior", "senior2", "admin"):
        assert TOTPDevice.objects.filter(user__username=name, confirmed=True).exists()
    call_command("totp_code", "senior")
    assert re.fullmatch(r"\d{6}\n", capsys.readouterr().out)
