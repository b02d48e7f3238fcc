"""Roles in Django's admin: shown in the user list, filtered on, and assigned as groups on the user's page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, User

from riskoffice.roles import ANALYST, user_roles
from tests.conftest import PASSWORD, login
from tests.test_query_footprint import queries_of

pytestmark = pytest.mark.django_db

USERS = "/admin/auth/user/"


@pytest.fixture
def first_superuser(reference_data) -> User:
    """The first account of a fresh install, made by `manage.py createsuperuser`: no group at all."""
    return User.objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def admin_client(client, admin_user):
    login(client, admin_user)
    return client


def roles_by_username(body: str) -> dict[str, str]:
    """The user list's rows as {username: the text of its roles column}."""
    rows = re.findall(r'<tr>.*?<th class="field-username"><a [^>]*>([^<]+)</a></th>(.*?)</tr>', body, re.S)
    cells = {name: re.search(r'<td class="field-roles">(.*?)</td>', rest, re.S) for name, rest in rows}
    return {name: cell.group(1).strip() for name, cell in cells.items() if cell}


def test_the_user_list_shows_each_users_roles(admin_client, analyst, senior, auditor, outsider, first_superuser):
    response = admin_client.get(USERS)

    assert response.status_code == 200
    body = response.content.decode()
    assert ">Roles<" in body
    assert roles_by_username(body) == {
        "alice.analyst": "analyst",
        "sam.senior": "senior analyst",
        "aude.auditor": "auditor",
        "oscar.outsider": "—",
        "ada.admin": "admin",
        "root": "admin (superuser)",  # an admin by riskoffice.roles, with no group to say so
    }


@pytest.mark.parametrize(
    ("role", "listed"),
    [
        ("analyst", {"alice.analyst"}),
        ("senior_analyst", {"sam.senior"}),
        ("auditor", {"aude.auditor"}),
        ("admin", {"ada.admin", "root"}),
        ("none", {"oscar.outsider"}),
    ],
)
def test_the_user_list_filters_by_role(admin_client, analyst, senior, auditor, outsider, first_superuser, role, listed):
    body = admin_client.get(USERS, {"role": role}).content.decode()

    assert set(roles_by_username(body)) == listed
    assert f'href="?role={role}"' in body  # offered in the filter panel


def test_an_admin_gives_a_user_a_role_on_the_users_page_and_the_queue_opens_to_them(admin_client, client, outsider):
    analysts = Group.objects.get(name=ANALYST)
    page = admin_client.get(f"{USERS}{outsider.pk}/change/")
    assert page.status_code == 200
    assert "Roles are groups: analyst, senior_analyst, admin, auditor." in page.content.decode()

    response = admin_client.post(
        f"{USERS}{outsider.pk}/change/",
        {
            "username": outsider.username,
            "is_active": "on",
            "groups": [analysts.pk],
            "date_joined_0": outsider.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": outsider.date_joined.strftime("%H:%M:%S"),
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    outsider.refresh_from_db()
    assert user_roles(outsider) == {ANALYST}
    client.logout()
    assert client.login(username=outsider.username, password=PASSWORD)
    assert client.get("/dossiers/").status_code == 200


def test_only_a_superuser_reaches_the_user_screens(client, analyst):
    assert client.login(username=analyst.username, password=PASSWORD)

    response = client.get(USERS)

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_user_list_costs_the_same_queries_with_3_users_as_with_13(admin_client, reference_data):
    """The roles column is fetched for the whole page at once (prefetched groups), never once per user."""
    groups = list(Group.objects.all())

    def grow_to(n: int) -> None:
        for i in range(User.objects.count(), n):
            user = User.objects.create_user(f"user{i:02d}", password=PASSWORD)
            user.groups.add(groups[i % len(groups)])

    def cost() -> int:
        response, queries = queries_of(lambda: admin_client.get(USERS))  # the access log's append apart
        assert response.status_code == 200
        return len(queries)

    grow_to(3)
    admin_client.get(USERS)  # warm
    few = cost()
    grow_to(13)
    many = cost()

    assert many == few <= 9  # 9: the admin's second factor (django-otp reads the session's device)
