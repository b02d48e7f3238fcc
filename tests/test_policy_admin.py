"""The admin cannot rewrite history: policy and model versions are read there, never added, changed or deleted."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from dossiers.services import dossier_create, dossier_score
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from scoring.models import ModelVersion, PolicyVersion
from scoring.policy.versions import policy_create_version, policy_values
from scoring.selectors import policy_current
from tests.conftest import login

pytestmark = pytest.mark.django_db

POLICY = "/admin/scoring/policyversion/"
MODEL = "/admin/scoring/modelversion/"


@pytest.fixture
def root(client, reference_data) -> User:
    """The first account of a fresh install, made the Django way (createsuperuser)."""
    user = User.objects.create_superuser("root", "root@example.org", "x")
    login(client, user, password="x")
    return user


@pytest.fixture
def scored_dossier(marketplace, champion):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren="552100554",
        requested_amount=Decimal("25000"),
        bank_tokens=["t"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    return dossier


def test_a_superuser_lists_and_reads_policy_and_model_versions(client, root, champion):
    policy = policy_current("b2b")

    assert client.get(POLICY).status_code == 200
    assert client.get(MODEL).status_code == 200
    page = client.get(f"{POLICY}{policy.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body and "deletelink" not in body  # a view, not a form
    assert client.get(f"{MODEL}{champion.pk}/change/").status_code == 200


@pytest.mark.parametrize("url", [POLICY, MODEL])
def test_a_superuser_cannot_add_a_version_in_the_admin(client, root, url):
    assert client.get(f"{url}add/").status_code == 403
    assert client.post(f"{url}add/", {"segment": "b2b", "version": 9}).status_code == 403


def test_a_superuser_cannot_change_a_policy_version_in_place(client, root):
    policy = policy_current("b2b")
    before = policy_values(policy)

    response = client.post(
        f"{POLICY}{policy.pk}/change/",
        {"segment": "b2b", "version": 1, "is_current": "on", "accept_max_pd": "0.5", "guarantee_max_pd": "0.9"},
    )

    assert response.status_code == 403
    policy.refresh_from_db()
    assert policy_values(policy) == before and policy.is_current


def test_a_superuser_cannot_change_a_model_version_in_place(client, root, champion):
    response = client.post(f"{MODEL}{champion.pk}/change/", {"status": "retired"})

    assert response.status_code == 403
    champion.refresh_from_db()
    assert champion.status == ModelVersion.Status.CHAMPION


@pytest.mark.parametrize("which", ["policy", "model"])
def test_a_superuser_cannot_delete_a_version_one_by_one_or_in_bulk(client, root, champion, which):
    url, obj = (POLICY, policy_current("b2b")) if which == "policy" else (MODEL, champion)

    assert client.get(f"{url}{obj.pk}/delete/").status_code == 403
    assert client.post(f"{url}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(url, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})

    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert "delete_selected" not in client.get(url).content.decode()


def test_a_version_that_scores_reference_cannot_be_deleted(scored_dossier):
    score = scored_dossier.scores.get()

    with pytest.raises(ProtectedError):
        score.policy_version.delete()
    with pytest.raises(ProtectedError):
        score.model_version.delete()
    assert PolicyVersion.objects.filter(pk=score.policy_version_id).exists()


@pytest.mark.parametrize("table", ["scoring_policyversion", "scoring_modelversion"])
def test_the_database_itself_refuses_to_delete_a_referenced_version(scored_dossier, table):
    score = scored_dossier.scores.get()
    pk = score.policy_version_id if table == "scoring_policyversion" else score.model_version_id

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # Django's foreign keys are deferred to the commit
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608 - a fixed table name


def test_a_new_version_moves_only_the_current_flag_of_the_previous_one(senior):
    first = policy_current("b2b")
    before = {**policy_values(first), "note": first.note, "created_by": first.created_by_id}

    policy_create_version(
        segment="b2b", values={**policy_values(first), "accept_max_pd": 0.02}, note="Tighter.", user=senior
    )

    first.refresh_from_db()
    assert not first.is_current
    assert {**policy_values(first), "note": first.note, "created_by": first.created_by_id} == before
    assert AuditEvent.objects.filter(action="policy.version_created").count() == 1


def test_model_status_still_changes_through_the_registry_the_training_command_uses(champion):
    from scoring.model.registry import model_register
    from tests.conftest import trained_once

    challenger = model_register(segment="b2b", trained=trained_once(), trained_by="tests", promote=True)

    champion.refresh_from_db()
    assert champion.status == ModelVersion.Status.RETIRED
    assert challenger.status == ModelVersion.Status.CHAMPION
