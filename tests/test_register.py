"""The GDPR Art. 30 register: seeded complete, kept by admins in the admin, exported, and checked for gaps."""

from __future__ import annotations

import csv
import io
from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from riskoffice.models import AuditEvent, Heartbeat, Partner
from riskoffice.register.models import DataCategory, ProcessingActivity
from riskoffice.roles import ADMIN, ANALYST, AUDITOR, SENIOR_ANALYST
from tests.conftest import _user, login

pytestmark = pytest.mark.django_db

ACTIVITIES = "/admin/register/processingactivity/"
CATEGORIES = "/admin/register/datacategory/"


@pytest.fixture(autouse=True)
def seeded_register(reference_data) -> None:
    """The register the data migration seeds (transactional tests elsewhere may have truncated it)."""
    import_module("riskoffice.register.migrations.0002_seed_register").seed(apps, None)


def _staff(username: str, role: str, *, superuser: bool = False) -> User:
    user = _user(username, role)
    user.is_staff = True
    user.is_superuser = superuser
    user.save(update_fields=["is_staff", "is_superuser"])
    return user


@pytest.fixture
def admin_client(client, reference_data):
    """An admin as setup_demo makes one: the admin group, staff and superuser."""
    login(client, _staff("ada.admin", ADMIN, superuser=True))
    return client


def as_user(client, user: User):
    """Signed in through the login form (and the second factor, for the roles that need one)."""
    client.logout()
    login(client, user)
    return client


def check_register() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("gdpr_register", "--check", stdout=out)
    except CommandError as error:
        return False, out.getvalue() + str(error)
    return True, out.getvalue()


def activity_form(**overrides: object) -> dict[str, object]:
    """Every field of the admin's activity form, filled as an admin would, with the empty history inline."""
    data: dict[str, object] = {
        "reference": "PA-90",
        "name": "Collections follow-up",
        "is_active": "on",
        "controller_name": "Riskoffice SAS",
        "controller_contact": "1 rue de la Paix, 75002 Paris — privacy@riskoffice.example",
        "dpo_contact": "dpo@riskoffice.example",
        "joint_controller": "",
        "representative": "",
        "purposes": "Follow up unpaid instalments of granted credit.",
        "legal_basis": "contract",
        "legal_basis_detail": "Performance of the credit contract (Art. 6(1)(b)).",
        "data_subject_categories": "Borrowers.",
        "personal_data_categories": "Reference, amounts due, payment dates.",
        "data_sources": "Partners' outcome reports.",
        "recipients": "The lending partner.",
        "retention_categories": [DataCategory.objects.get(code="credit_files").pk],
        "retention_summary": "As credit files: 5 years after the credit closed.",
        "security_measures": "As the rest of the back-office: roles, audit, encryption.",
        "automated_decision_logic": "",
        "transfer_countries": "",
        "transfer_safeguards": "",
        "revisions-TOTAL_FORMS": "0",
        "revisions-INITIAL_FORMS": "0",
        "revisions-MIN_NUM_FORMS": "0",
        "revisions-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def change_form(response) -> dict[str, object]:
    """The admin change page's form as the browser would post it back, unchanged."""
    form = response.context["adminform"].form
    data: dict[str, object] = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(item) for item in value]
        else:
            data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        for subform in formset.forms:
            for field in subform.hidden_fields():
                data[field.html_name] = field.value() or ""
    return data


# --- the seed ---------------------------------------------------------------------------------------


def test_every_install_has_the_register_of_what_the_product_does_and_it_passes_the_gap_check():
    ok, output = check_register()

    assert ok, output
    assert "register: ok" in output
    assert set(ProcessingActivity.objects.values_list("reference", flat=True)) >= {
        "PA-01",
        "PA-02",
        "PA-03",
        "PA-04",
        "PA-05",
        "PA-06",
    }
    scoring = ProcessingActivity.objects.get(reference="PA-01")
    assert scoring.automated_decision
    for words in ("XGBoost", "TreeSHAP", "PD thresholds", "human review", "contest"):
        assert words in scoring.automated_decision_logic
    # Each seeded activity has its first revision, written by the seed.
    assert all(activity.revisions.filter(number=1, changed_by_system="seed").exists() for activity in [scoring])


def test_the_seed_states_a_period_and_its_basis_for_every_category():
    periods = dict(DataCategory.objects.values_list("code", "retention_days"))

    assert periods["bank_tokens"] == 30
    assert periods["refused_applications"] == 183
    assert periods["credit_files"] == 1826
    assert periods["access_log"] == 365
    assert periods["webhook_deliveries"] == 90
    assert periods["bulk_files"] == 30
    assert periods["idempotency_keys"] == 1
    assert "L561-12" in DataCategory.objects.get(code="credit_files").retention_basis
    assert "CNIL" in DataCategory.objects.get(code="access_log").retention_basis
    assert not DataCategory.objects.filter(retention_basis="").exists()


def test_seeding_twice_changes_nothing_an_admin_edited():
    DataCategory.objects.filter(code="webhook_deliveries").update(retention_days=60)
    before = ProcessingActivity.objects.count()

    import_module("riskoffice.register.migrations.0002_seed_register").seed(apps, None)

    assert DataCategory.objects.get(code="webhook_deliveries").retention_days == 60
    assert ProcessingActivity.objects.count() == before


def test_the_gap_check_reminds_that_only_the_controller_can_give_its_contacts():
    ok, output = check_register()

    assert ok
    assert "to review: PA-01" in output and "placeholder" in output


# --- gaps -------------------------------------------------------------------------------------------


def test_the_gap_command_fails_when_an_activity_loses_its_data_categories():
    ProcessingActivity.objects.get(reference="PA-03").retention_categories.clear()

    ok, output = check_register()

    assert not ok
    assert "PA-03" in output and "no data category" in output
    assert "1 gap" in output or "gap(s)" in output


def test_the_gap_command_fails_when_a_category_in_use_is_deactivated():
    DataCategory.objects.filter(code="webhook_deliveries").update(is_active=False)

    ok, output = check_register()

    assert not ok
    assert "webhook_deliveries is inactive" in output


def test_the_gap_command_fails_on_a_category_no_retention_handler_applies():
    category = DataCategory.objects.create(
        code="marketing_leads", name="Leads", retention_days=90, retention_basis="CNIL", action="delete"
    )
    ProcessingActivity.objects.get(reference="PA-02").retention_categories.add(category)

    ok, output = check_register()

    assert not ok
    assert "marketing_leads: no retention handler applies its period" in output


def test_readyz_reports_register_gaps_without_failing_readiness(client, champion):
    Heartbeat.objects.create(name="worker", beat_at=timezone.now())
    assert client.get("/readyz").json()["checks"]["register"] == "ok"

    ProcessingActivity.objects.get(reference="PA-03").retention_categories.clear()
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    # The activity without categories, and its category that no activity uses any more.
    assert response.json()["checks"]["register"].startswith("2 gap(s)")


# --- constraints ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_the_database_refuses_an_activity_without_its_purposes(value):
    with pytest.raises(IntegrityError, match="activity_purposes_not_empty"), transaction.atomic():
        ProcessingActivity.objects.filter(reference="PA-02").update(purposes=value)


def test_the_database_refuses_an_automated_decision_without_its_logic():
    with pytest.raises(IntegrityError, match="activity_automated_decision_has_logic"), transaction.atomic():
        ProcessingActivity.objects.filter(reference="PA-01").update(automated_decision_logic="")


def test_the_database_refuses_a_transfer_without_its_safeguards():
    with pytest.raises(IntegrityError, match="activity_transfers_documented"), transaction.atomic():
        ProcessingActivity.objects.filter(reference="PA-02").update(
            third_country_transfers=True, transfer_countries="United States"
        )


def test_the_database_refuses_a_period_of_zero_days():
    with pytest.raises(IntegrityError, match="datacategory_retention_positive"), transaction.atomic():
        DataCategory.objects.filter(code="bank_tokens").update(retention_days=0)


# --- who may use the admin screens ------------------------------------------------------------------


@pytest.mark.parametrize("role", [ANALYST, SENIOR_ANALYST])
@pytest.mark.parametrize("path", [ACTIVITIES, f"{ACTIVITIES}add/", CATEGORIES, f"{CATEGORIES}add/"])
def test_analysts_even_staff_ones_are_refused_the_register(client, reference_data, role, path):
    as_user(client, _staff(f"staff.{role}", role))
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", [ACTIVITIES, f"{ACTIVITIES}add/", CATEGORIES])
def test_back_office_users_who_are_not_staff_are_sent_to_the_admin_login(client, analyst, senior, auditor, path):
    for user in (analyst, senior, auditor):
        as_user(client, user)
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_staff_auditor_reads_the_register_but_cannot_change_it(client, reference_data):
    as_user(client, _staff("staff.auditor", AUDITOR))
    pk = ProcessingActivity.objects.get(reference="PA-01").pk

    assert client.get(ACTIVITIES).status_code == 200
    page = client.get(f"{ACTIVITIES}{pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert client.get(f"{ACTIVITIES}add/").status_code == 403
    assert client.post(f"{ACTIVITIES}{pk}/change/", {"name": "x"}).status_code == 403


def test_an_admin_without_superuser_rights_keeps_the_register(client, reference_data):
    as_user(client, _staff("staff.admin", ADMIN))

    assert client.get(ACTIVITIES).status_code == 200
    assert client.get(f"{ACTIVITIES}add/").status_code == 200
    assert client.get(CATEGORIES).status_code == 200


def test_nobody_deletes_an_activity_with_a_history(admin_client):
    pk = ProcessingActivity.objects.get(reference="PA-01").pk

    assert admin_client.get(f"{ACTIVITIES}{pk}/delete/").status_code == 403
    assert ProcessingActivity.objects.filter(pk=pk).exists()


# --- admins keep the register -----------------------------------------------------------------------


def test_an_admin_adds_an_activity_with_the_form_and_it_is_audited_with_a_first_revision(admin_client):
    partner = Partner.objects.create(name="Lender One")

    response = admin_client.post(f"{ACTIVITIES}add/", activity_form(recipient_partners=[partner.pk]))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    activity = ProcessingActivity.objects.get(reference="PA-90")
    assert activity.created_by.username == "ada.admin"
    assert list(activity.recipient_partners.all()) == [partner]
    revision = activity.revisions.get()
    assert revision.number == 1 and revision.changed_by.username == "ada.admin"
    assert revision.snapshot["recipient_partners"] == ["Lender One"]
    assert revision.snapshot["retention_categories"] == ["credit_files"]
    assert AuditEvent.objects.filter(
        action="register.activity_created", object_type="register.processingactivity", object_id=str(activity.pk)
    ).exists()


def test_a_missing_mandatory_field_is_refused_by_the_form_and_nothing_is_saved(admin_client):
    response = admin_client.post(f"{ACTIVITIES}add/", activity_form(security_measures="   "))

    assert response.status_code == 200
    assert "security_measures" in response.context["adminform"].form.errors
    assert not ProcessingActivity.objects.filter(reference="PA-90").exists()


def test_the_automated_decision_flag_requires_the_logic(admin_client):
    response = admin_client.post(f"{ACTIVITIES}add/", activity_form(automated_decision="on"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Describe the logic involved" in str(errors["automated_decision_logic"])
    assert not ProcessingActivity.objects.filter(reference="PA-90").exists()


def test_a_transfer_outside_the_eu_requires_countries_and_safeguards(admin_client):
    response = admin_client.post(f"{ACTIVITIES}add/", activity_form(third_country_transfers="on"))

    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"transfer_countries", "transfer_safeguards"}


def test_an_edit_writes_a_revision_naming_what_changed_and_the_page_shows_the_history(admin_client):
    activity = ProcessingActivity.objects.get(reference="PA-03")
    page = admin_client.get(f"{ACTIVITIES}{activity.pk}/change/")
    data = change_form(page)
    data["recipients"] = "The partner's webhook endpoint only."
    data["dpo_contact"] = "dpo@riskoffice.example"

    response = admin_client.post(f"{ACTIVITIES}{activity.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    revision = activity.revisions.order_by("-number").first()
    assert revision.number == 2
    assert sorted(revision.changed_fields) == ["dpo_contact", "recipients"]
    assert revision.snapshot["recipients"] == "The partner's webhook endpoint only."
    audit = AuditEvent.objects.filter(action="register.activity_changed", object_id=str(activity.pk)).get()
    assert audit.after == {
        "dpo_contact": "dpo@riskoffice.example",
        "recipients": "The partner's webhook endpoint only.",
    }
    history = admin_client.get(f"{ACTIVITIES}{activity.pk}/change/").content.decode()
    assert "History (one revision per change)" in history and "dpo_contact, recipients" in history


def test_saving_an_unchanged_activity_writes_no_revision(admin_client):
    activity = ProcessingActivity.objects.get(reference="PA-04")
    data = change_form(admin_client.get(f"{ACTIVITIES}{activity.pk}/change/"))

    assert admin_client.post(f"{ACTIVITIES}{activity.pk}/change/", data).status_code == 302
    assert activity.revisions.count() == 1


def test_an_admin_deactivates_an_activity_and_its_history_is_kept(admin_client):
    activity = ProcessingActivity.objects.get(reference="PA-06")

    admin_client.post(ACTIVITIES, {"action": "deactivate", "_selected_action": [activity.pk]})

    activity.refresh_from_db()
    assert not activity.is_active
    assert activity.revisions.order_by("-number").first().changed_fields == ["is_active"]


def test_an_admin_changes_a_period_and_the_change_is_audited(admin_client):
    category = DataCategory.objects.get(code="webhook_deliveries")
    data = {
        "name": category.name,
        "description": category.description,
        "retention_days": "60",
        "retention_basis": category.retention_basis,
        "action": "delete",
        "is_active": "on",
    }

    response = admin_client.post(f"{CATEGORIES}{category.pk}/change/", data)

    assert response.status_code == 302
    category.refresh_from_db()
    assert category.retention_days == 60
    audit = AuditEvent.objects.get(action="register.category_changed", object_id=str(category.pk))
    assert audit.before == {"retention_days": 90} and audit.after == {"retention_days": 60}


def test_revisions_cannot_be_reached_as_a_screen_of_their_own(admin_client):
    assert admin_client.get("/admin/register/processingactivityrevision/").status_code == 404


# --- exports ----------------------------------------------------------------------------------------


def test_the_csv_export_holds_every_activity_with_every_field(admin_client):
    ProcessingActivity.objects.get(reference="PA-01").recipient_partners.add(Partner.objects.create(name="Lender One"))
    ProcessingActivity.objects.filter(reference="PA-06").update(is_active=False)

    response = admin_client.get("/register/export.csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [row["reference"] for row in rows] == ["PA-01", "PA-02", "PA-03", "PA-04", "PA-05", "PA-06"]
    scoring = rows[0]
    assert scoring["automated_decision"] == "yes" and "XGBoost" in scoring["automated_decision_logic"]
    assert scoring["recipient_partners"] == "Lender One"
    assert "bank_tokens (30 d, delete)" in scoring["retention_categories"]
    assert scoring["legal_basis"] == "contract"
    assert rows[5]["active"] == "no"
    for column in ("controller", "dpo_contact", "purposes", "security_measures", "transfer_safeguards"):
        assert column in scoring


def test_the_printable_register_shows_the_active_activities(admin_client):
    ProcessingActivity.objects.filter(reference="PA-06").update(is_active=False)

    response = admin_client.get("/register/print/")

    body = response.content.decode()
    assert response.status_code == 200
    assert "PA-01 — Credit scoring of companies and individuals" in body
    assert "PA-06" not in body
    assert "register/print.css" in body
    assert "Printed on" in body


@pytest.mark.parametrize("path", ["/register/export.csv", "/register/print/"])
def test_auditors_read_the_exports_and_analysts_do_not(client, analyst, senior, auditor, outsider, path):
    assert as_user(client, auditor).get(path).status_code == 200
    for user in (analyst, senior, outsider):
        assert as_user(client, user).get(path).status_code == 403
    client.logout()
    assert client.get(path).status_code == 302


def test_a_formula_in_a_field_reaches_the_csv_as_text(admin_client):
    ProcessingActivity.objects.filter(reference="PA-02").update(recipients='=HYPERLINK("http://evil")')

    rows = list(csv.DictReader(io.StringIO(admin_client.get("/register/export.csv").content.decode("utf-8-sig"))))

    assert rows[1]["recipients"].startswith("'=")
