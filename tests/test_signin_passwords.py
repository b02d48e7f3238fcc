"""Strong passwords: an admin cannot give a back-office account a short, common or numeric password.

Django's validators (AUTH_PASSWORD_VALIDATORS: at least 12 characters, not a common password, not all digits,
not like the username), applied where accounts get their passwords: the admin's user forms.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.conftest import login

pytestmark = pytest.mark.django_db

ADD_USER = "/admin/auth/user/add/"


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("Short-1", "too short"),
        ("password1234", "too common"),
        ("418263950417", "entirely numeric"),
        ("carol.analyst1", "too similar"),
    ],
)
def test_a_weak_password_is_refused_and_no_account_is_made(client, admin_user, password, why):
    login(client, admin_user)

    response = client.post(
        ADD_USER,
        {"username": "carol.analyst", "password1": password, "password2": password, "usable_password": "true"},
    )

    assert response.status_code == 200
    assert why in response.content.decode()
    assert not User.objects.filter(username="carol.analyst").exists()


def test_a_strong_password_makes_the_account(client, admin_user):
    login(client, admin_user)
    password = "correct-horse-battery-staple"

    response = client.post(
        ADD_USER,
        {"username": "carol.analyst", "password1": password, "password2": password, "usable_password": "true"},
    )

    assert response.status_code == 302
    assert User.objects.get(username="carol.analyst").check_password(password)
