"""Data-subject rights: access (GDPR Art. 15) and erasure within legal retention (Art. 17), issue 10.

- An admin records an access request at /privacy/access/ and downloads everything held about the subject as
  JSON: dossiers, every score version with its PD, factors and features, overrides with their reasons,
  challenges, outcomes, negative events, requests, the partners that received data, and the logic of the
  automated decision from the policy in force. ``manage.py subject_access`` gives the same export.
- An erasure request is previewed, then confirmed: a dossier on which no credit was granted is anonymised at
  once (texts, tokens and the reference gone from the raw rows, the score kept with its PD); one on which
  credit was granted and closed recently is kept, and the report says until when. The partner hears of it
  through ``data_subject.erased``, with score ids and no personal data. Erasing again changes nothing.
- Only admins handle requests; the deadline is one month after receipt and an overdue request is flagged.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from alerts.models import NegativeEvent, WebhookDelivery, WebhookEndpoint
from dossiers.challenge import dossier_challenge, dossier_rescore
from dossiers.models import Challenge, Dossier, Individual, Override, OverrideReason
from dossiers.outcomes import outcome_record
from dossiers.services import dossier_create, dossier_create_individual, dossier_override, dossier_score
from riskoffice.accesslog.models import AccessLogEntry
from riskoffice.audit import Actor
from riskoffice.models import AuditEvent
from riskoffice.register.models import DataCategory
from riskoffice.register.services import data_category_save
from riskoffice.roles import ADMIN
from riskoffice.subjects.models import SubjectRequest
from scoring.model.registry import model_register
from scoring.models import ModelVersion, Score
from scoring.selectors import champion_for
from tests.conftest import _user, login, trained_once

pytestmark = pytest.mark.django_db

REFERENCE = "CUST-ERASE-0042"
OTHER_REFERENCE = "CUST-KEEP-0099"
PERSON, OTHER_PERSON = "Jean Dupont", "Marie Curie"
OVERRIDE_TEXT = "Spoke to {} on the phone: moving abroad."
CHALLENGE_TEXT = "Payslip of {} shows a higher income."
SOURCE_TEXT = "payslip-{}-2026-10.pdf"
SIREN = "552100554"


@pytest.fixture
def admin(reference_data):
    return _user("ada.admin", ADMIN)


@pytest.fixture
def b2c_champion(reference_data) -> ModelVersion:
    return champion_for("b2c") or model_register(
        segment="b2c", trained=trained_once("b2c"), trained_by="tests", promote=True
    )


@pytest.fixture
def endpoint(marketplace) -> WebhookEndpoint:
    """The marketplace's webhook endpoint, subscribed to every event: each event leaves a delivery in the outbox."""
    return WebhookEndpoint.objects.create(
        partner=marketplace.partner, url="https://hooks.pay-later.example/riskoffice", secret="whsec_dGVzdA=="
    )


def individual_dossier(
    marketplace, analyst, reference: str, *, decision: str, amount: str = "3000", person: str = PERSON
) -> Dossier:
    """A B2C dossier scored by the real service, challenged (texts) and rescored, then overridden to ``decision``.

    The decision before the override is set one step more generous, so the override lowers exposure and is
    final at once (no four eyes): accept → guarantee, guarantee → refuse.
    """
    dossier = dossier_create_individual(
        partner=marketplace.partner,
        reference=reference,
        requested_amount=Decimal(amount),
        bank_tokens=[f"tok_bank_of_{person}"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    dossier_challenge(
        dossier=Dossier.objects.get(pk=dossier.pk),
        user=analyst,
        justification=CHALLENGE_TEXT.format(person),
        source_reference=SOURCE_TEXT.format(person),
        requested_amount=Decimal(amount) + 500,
    )
    assert dossier_rescore(dossier_id=dossier.pk) is not None
    before = {"guarantee": "accept", "refuse": "guarantee"}[decision]
    Dossier.objects.filter(pk=dossier.pk).update(decision=before)
    dossier_override(
        dossier=Dossier.objects.get(pk=dossier.pk),
        decision=decision,
        reason_code=OverrideReason.objects.order_by("position").first(),
        reason=OVERRIDE_TEXT.format(person),
        user=analyst,
    )
    return Dossier.objects.get(pk=dossier.pk)


@pytest.fixture
def refused_individual(b2c_champion, marketplace, analyst, endpoint) -> Dossier:
    """An individual whose credit was refused (by an override with a reason), with a negative event on file."""
    dossier = individual_dossier(marketplace, analyst, REFERENCE, decision="refuse")
    NegativeEvent.objects.create(
        individual=dossier.individual,
        kind=NegativeEvent.Kind.PAYMENT_DELAY,
        occurred_on=date(2026, 1, 5),
        days_late=40,
        source=f"partner:{marketplace.partner.pk}",
    )
    return dossier


@pytest.fixture
def other_individual(b2c_champion, marketplace, analyst) -> Dossier:
    return individual_dossier(marketplace, analyst, OTHER_REFERENCE, decision="guarantee", person=OTHER_PERSON)


def rows_mentioning(text: str) -> dict[str, int]:
    """Per table, the rows whose whole text (every column, PostgreSQL's row-to-text) contains ``text``."""
    tables = [
        "dossiers_individual",
        "dossiers_dossier",
        "dossiers_override",
        "dossiers_challenge",
        "riskoffice_auditevent",
        "alerts_webhookdelivery",
        "alerts_negativeevent",
    ]
    counts = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table} AS t WHERE t::text LIKE %s", [f"%{text}%"])  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return {table: count for table, count in counts.items() if count}


def access_form(marketplace, reference: str, **extra) -> dict:
    return {"partner": marketplace.partner.pk, "reference": reference, "received_on": "2026-11-02", **extra}


# --- access ---------------------------------------------------------------------------------------------


def test_an_admin_downloads_everything_held_about_an_individual_and_nothing_about_anyone_else(
    client, admin, marketplace, refused_individual, other_individual
):
    login(client, admin)
    response = client.post("/privacy/access/", access_form(marketplace, REFERENCE))
    assert response.status_code == 200, response.content[:2000]
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    export = json.loads(response.content)

    assert export["subject"] == {**export["subject"], "type": "individual", "reference": REFERENCE}
    assert [d["id"] for d in export["dossiers"]] == [str(refused_individual.pk)]
    dossier = export["dossiers"][0]
    assert dossier["decision"] == "refuse" and dossier["decision_overridden"] is True
    scores = Score.objects.filter(dossier=refused_individual).order_by("version")
    assert [s["version"] for s in dossier["scores"]] == [1, 2]
    assert [s["probability_of_default"] for s in dossier["scores"]] == [
        round(s.probability_of_default, 6) for s in scores
    ]
    latest = dossier["scores"][-1]
    assert latest["trigger"] == "challenge"
    assert latest["factors"] and all(f["text"] for f in latest["factors"])
    assert latest["features_used"] == scores.last().snapshot.features
    assert latest["model_version"] == scores.last().model_version.label
    assert dossier["overrides"][0]["reason"] == OVERRIDE_TEXT.format(PERSON)
    assert dossier["overrides"][0]["reason_code"]
    assert dossier["challenges"][0]["justification"] == CHALLENGE_TEXT.format(PERSON)
    assert export["negative_events"][0]["kind"] == "payment_delay"
    assert {r["event_type"] for r in export["recipients"]} >= {"score.completed", "decision.overridden"}
    logic = export["logic"]
    assert "gradient-boosted" in logic["model"]["kind"].lower()
    assert "shap" in logic["factors"].lower()
    assert logic["policy"]["accept_below_pd"] == 0.04 and logic["policy"]["guarantee_below_pd"] == 0.10
    assert "monthly_income" in {f["feature"] for f in logic["data_used"]}
    assert "human" in logic["human_review"].lower()

    text = response.content.decode()
    assert OTHER_REFERENCE not in text and str(other_individual.pk) not in text

    answered = SubjectRequest.objects.get(kind="access")
    assert answered.status == "completed" and answered.completed_by == admin
    assert answered.individual == refused_individual.individual
    assert answered.due_at == timezone.make_aware(datetime.combine(date(2026, 12, 2), time.min))
    logged = AccessLogEntry.objects.get(action="export", object_type="subjects.subjectrequest")
    assert (logged.actor_user, logged.object_id) == (admin, str(answered.pk))
    assert str(refused_individual.pk) in json.dumps(logged.object_ids)


def test_the_access_export_shows_an_outcome_and_the_command_gives_the_same_export(
    admin, marketplace, analyst, b2c_champion, endpoint, other_individual
):
    dossier = individual_dossier(marketplace, analyst, REFERENCE, decision="guarantee")
    outcome_record(dossier=dossier, status="repaid", occurred_on=timezone.localdate(), actor=Actor(user=analyst))
    out = StringIO()
    call_command("subject_access", "--partner", marketplace.partner.name, "--reference", REFERENCE, stdout=out)
    export = json.loads(out.getvalue())
    assert export["dossiers"][0]["outcome"]["status"] == "repaid"
    assert export["dossiers"][0]["scores"][0]["probability_of_default"] is not None
    assert "policy" in export["logic"] and export["logic"]["policy"]["policy_version"] == "b2c-policy-v1"
    assert OTHER_REFERENCE not in out.getvalue()


def test_an_unknown_subject_is_a_clear_refusal_on_the_form_and_in_the_command(client, admin, marketplace):
    login(client, admin)
    response = client.post("/privacy/access/", access_form(marketplace, "NOBODY"))
    assert response.status_code == 400
    assert b"has no individual with this reference on file" in response.content
    response = client.post("/privacy/access/", {"siren": "123", "received_on": "2026-11-02"})
    assert response.status_code == 400 and b"A SIREN is exactly 9 digits." in response.content
    response = client.post("/privacy/erasure/", {"received_on": "2026-11-02"})
    assert response.status_code == 400 and b"Name the subject" in response.content
    assert not SubjectRequest.objects.exists()
    with pytest.raises(CommandError, match="has no individual with this reference"):
        call_command("subject_access", "--partner", marketplace.partner.name, "--reference", "NOBODY")
    with pytest.raises(CommandError, match="Name the subject"):
        call_command("erase_subject")


# --- erasure -------------------------------------------------------------------------------------------------


def erase_through_back_office(client, marketplace, reference: str) -> SubjectRequest:
    response = client.post("/privacy/erasure/", access_form(marketplace, reference))
    assert response.status_code == 302, response.content[:2000]
    request = SubjectRequest.objects.get(kind="erasure", status="open")
    assert response["Location"] == f"/privacy/erasure/{request.pk}/"
    preview = client.get(response["Location"])
    assert preview.status_code == 200
    assert b'data-testid="erasure-confirm"' in preview.content
    confirmed = client.post(response["Location"])
    assert confirmed.status_code == 302
    request.refresh_from_db()
    return request


def test_erasing_an_individual_without_granted_credit_anonymises_the_rows_and_keeps_the_score(
    client, admin, marketplace, refused_individual, other_individual
):
    login(client, admin)
    pd_before = list(
        Score.objects.filter(dossier=refused_individual).order_by("version").values_list("probability_of_default")
    )
    assert rows_mentioning(REFERENCE) and rows_mentioning(PERSON)  # the test sees what it looks for

    preview_request = client.post("/privacy/erasure/", access_form(marketplace, REFERENCE))
    preview = client.get(preview_request["Location"])
    assert b"Anonymised now" in preview.content and b"No credit was granted" in preview.content
    assert rows_mentioning(REFERENCE)  # the preview erased nothing
    request = SubjectRequest.objects.get(kind="erasure")
    client.post(preview_request["Location"])
    request.refresh_from_db()

    assert request.status == "completed" and request.completed_by == admin
    assert [d["action"] for d in request.resolution["dossiers"]] == ["anonymised"]
    for text in (REFERENCE, PERSON, SOURCE_TEXT.format(PERSON)):
        assert rows_mentioning(text) == {}, text
    dossier = Dossier.objects.select_related("individual").get(pk=refused_individual.pk)
    assert dossier.bank_tokens == [] and dossier.individual.reference.startswith("anonymised-")
    assert Override.objects.get(dossier=dossier).reason == "[anonymised]"
    assert Challenge.objects.get(dossier=dossier).justification == "[anonymised]"
    assert list(Score.objects.filter(dossier=dossier).order_by("version").values_list("probability_of_default")) == (
        pd_before
    )
    assert Individual.objects.get(pk=request.individual_id).reference.startswith("erased-")
    assert not NegativeEvent.objects.filter(individual_id=request.individual_id).exists()
    anonymised = AuditEvent.objects.get(action="dossier.anonymised", object_id=str(dossier.pk))
    assert anonymised.actor_user == admin and anonymised.after["reason"] == f"erasure_request:{request.pk}"
    # Another person's data is untouched.
    assert rows_mentioning(OTHER_REFERENCE) and rows_mentioning(OTHER_PERSON)
    assert Override.objects.get(dossier=other_individual).reason == OVERRIDE_TEXT.format(OTHER_PERSON)

    report = client.get(f"/privacy/erasure/{request.pk}/")
    assert report.status_code == 200 and b'data-testid="erasure-confirm"' not in report.content


def test_the_partner_is_told_by_data_subject_erased_with_score_ids_and_no_personal_data(
    client, admin, marketplace, refused_individual
):
    login(client, admin)
    erase_through_back_office(client, marketplace, REFERENCE)
    delivery = WebhookDelivery.objects.get(event_type="data_subject.erased")
    assert delivery.endpoint.partner == marketplace.partner and delivery.status == "pending"
    data = delivery.payload["data"]
    assert data["subject_type"] == "individual"
    assert data["scores"] == [{"id": str(refused_individual.pk), "erased": True}]
    body = json.dumps(delivery.payload)
    for text in (REFERENCE, PERSON, SOURCE_TEXT.format(PERSON)):
        assert text not in body


def test_a_granted_credit_closed_recently_is_kept_and_the_report_says_until_when(
    client, admin, marketplace, analyst, b2c_champion, endpoint
):
    dossier = individual_dossier(marketplace, analyst, REFERENCE, decision="guarantee")
    closed_on = timezone.localdate()
    outcome_record(dossier=dossier, status="repaid", occurred_on=closed_on, actor=Actor(user=analyst))
    login(client, admin)
    response = client.post("/privacy/erasure/", access_form(marketplace, REFERENCE))
    retention_days = DataCategory.objects.get(code="credit_files").retention_days  # five years, by default
    kept_until = (closed_on + timedelta(days=retention_days)).isoformat()
    preview = client.get(response["Location"])
    assert kept_until.encode() in preview.content and b"Kept (legal retention of credit files)" in preview.content
    client.post(response["Location"])

    request = SubjectRequest.objects.get(kind="erasure")
    assert request.resolution["dossiers"] == [
        {
            "id": str(dossier.pk),
            "partner_id": marketplace.partner.pk,
            "action": "kept",
            "kept_until": kept_until,
            "why": "credit_closed_recently",
        }
    ]
    kept = Dossier.objects.select_related("individual").get(pk=dossier.pk)
    assert Override.objects.get(dossier=kept).reason == OVERRIDE_TEXT.format(PERSON)  # the credit file stays whole
    assert kept.individual.reference.startswith("erased-")  # but no longer names the person
    assert rows_mentioning(REFERENCE) == {}
    event = WebhookDelivery.objects.get(event_type="data_subject.erased").payload["data"]
    assert event["scores"] == [
        {"id": str(dossier.pk), "erased": False, "kept_until": kept_until, "why_kept": "credit_closed_recently"}
    ]


def test_the_retention_period_is_the_registers_credit_files_category(admin, marketplace, analyst, b2c_champion):
    category = DataCategory.objects.get(code="credit_files")
    category.retention_days = 365
    data_category_save(category=category, actor=Actor(user=admin))
    dossier = individual_dossier(marketplace, analyst, REFERENCE, decision="guarantee")
    closed_on = timezone.localdate()
    outcome_record(dossier=dossier, status="repaid", occurred_on=closed_on, actor=Actor(user=analyst))
    out = StringIO()
    call_command(
        "erase_subject", "--partner", marketplace.partner.name, "--reference", REFERENCE, "--dry-run", stdout=out
    )
    report = json.loads(out.getvalue())
    assert report["dry_run"] is True
    assert report["dossiers"][0]["kept_until"] == (closed_on + timedelta(days=365)).isoformat()
    assert Individual.objects.get(pk=dossier.individual_id).reference == REFERENCE  # a dry run changes nothing
    assert not WebhookDelivery.objects.filter(event_type="data_subject.erased").exists()


def test_erasing_a_company_by_command_anonymises_its_dossiers_keeps_the_siren_and_a_second_run_changes_nothing(
    champion, marketplace, analyst, endpoint
):
    dossier = dossier_create(
        partner=marketplace.partner,
        siren=SIREN,
        requested_amount=Decimal("25000"),
        bank_tokens=["tok_company_bank"],
        actor=Actor(client=marketplace.api_client),
    )
    assert dossier_score(dossier_id=dossier.pk) is not None
    Dossier.objects.filter(pk=dossier.pk).update(decision="refuse", applicant_name="Jean Dupont EI")

    dry = StringIO()
    call_command("erase_subject", "--siren", SIREN, "--dry-run", stdout=dry)
    assert json.loads(dry.getvalue())["dossiers"][0]["action"] == "anonymised"
    assert Dossier.objects.get(pk=dossier.pk).applicant_name == "Jean Dupont EI"

    out = StringIO()
    call_command("erase_subject", "--siren", SIREN, stdout=out)
    report = json.loads(out.getvalue())
    assert [d["action"] for d in report["dossiers"]] == ["anonymised"]
    erased = Dossier.objects.select_related("company").get(pk=dossier.pk)
    assert erased.applicant_name == "" and erased.bank_tokens == [] and erased.company.siren == SIREN
    assert Score.objects.filter(dossier=erased).exists()
    assert WebhookDelivery.objects.filter(event_type="data_subject.erased").count() == 1

    again = StringIO()
    call_command("erase_subject", "--siren", SIREN, stdout=again)
    assert [d["action"] for d in json.loads(again.getvalue())["dossiers"]] == ["already_anonymised"]
    assert WebhookDelivery.objects.filter(event_type="data_subject.erased").count() == 1
    assert AuditEvent.objects.filter(action="dossier.anonymised").count() == 1


def test_a_confirmed_request_cannot_be_confirmed_twice(client, admin, marketplace, refused_individual):
    login(client, admin)
    request = erase_through_back_office(client, marketplace, REFERENCE)
    response = client.post(f"/privacy/erasure/{request.pk}/", follow=True)
    assert b"This request is closed" in response.content
    assert WebhookDelivery.objects.filter(event_type="data_subject.erased").count() == 1
    assert AuditEvent.objects.filter(action="dossier.anonymised").count() == 1


# --- the list, deadlines and permissions ---------------------------------------------------------------------


def test_the_deadline_is_one_month_after_receipt_and_an_overdue_request_is_flagged_first(
    client, admin, marketplace, django_assert_max_num_queries
):
    company_dossier_subject = Individual.objects.create(partner=marketplace.partner, reference="CUST-LATE")
    Individual.objects.create(partner=marketplace.partner, reference="CUST-FRESH")
    login(client, admin)
    today = timezone.localdate()
    client.post("/privacy/erasure/", access_form(marketplace, "CUST-FRESH", received_on=today.isoformat()))
    client.post("/privacy/erasure/", access_form(marketplace, "CUST-LATE", received_on="2025-01-31"))
    late = SubjectRequest.objects.get(individual=company_dossier_subject)
    assert late.due_at == timezone.make_aware(datetime.combine(date(2025, 2, 28), time.min))
    fresh = SubjectRequest.objects.exclude(pk=late.pk).get()
    assert fresh.due_at.date() == today + relativedelta(months=1) or fresh.due_at > timezone.now()

    with django_assert_max_num_queries(12):  # however many requests: one query for the list
        page = client.get("/privacy/")
    body = page.content.decode()
    assert page.status_code == 200
    assert body.index(f'data-testid="request-{late.pk}"') < body.index(f'data-testid="request-{fresh.pk}"')
    assert body.count('data-testid="overdue"') == 1
    assert 'class="overdue"' in body.split(f'data-testid="request-{fresh.pk}"')[0]

    closed = client.get("/privacy/?state=closed")
    assert f'data-testid="request-{late.pk}"' not in closed.content.decode()
    response = client.post("/privacy/erasure/", access_form(marketplace, "CUST-FRESH", received_on="2999-01-01"))
    assert response.status_code == 400 and b"cannot be in the future" in response.content


@pytest.mark.parametrize("role", ["analyst", "senior", "auditor", "outsider"])
def test_only_admins_handle_requests(client, request, role, marketplace):
    user = request.getfixturevalue(role)
    subject = Individual.objects.create(partner=marketplace.partner, reference=REFERENCE)
    erasure = SubjectRequest.objects.create(
        kind="erasure",
        channel="back_office",
        individual=subject,
        requested_by_user=user,
        received_at=timezone.now(),
        due_at=timezone.now() + relativedelta(months=1),
    )
    login(client, user)
    for url in ("/privacy/", "/privacy/access/", "/privacy/erasure/", f"/privacy/erasure/{erasure.pk}/"):
        assert client.get(url).status_code == 403, url
        assert client.post(url, access_form(marketplace, REFERENCE)).status_code == 403, url
    assert SubjectRequest.objects.count() == 1
    assert Individual.objects.get(pk=subject.pk).reference == REFERENCE


def test_the_privacy_pages_send_an_anonymous_visitor_to_sign_in(client):
    for url in ("/privacy/", "/privacy/access/", "/privacy/erasure/", "/privacy/erasure/1/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_an_admin_sees_the_forms_with_today_as_the_date_of_receipt(client, admin):
    login(client, admin)
    for url in ("/privacy/access/", "/privacy/erasure/"):
        response = client.get(url)
        assert response.status_code == 200
        assert timezone.localdate().isoformat().encode() in response.content
    assert client.get("/privacy/erasure/999999/").status_code == 404
