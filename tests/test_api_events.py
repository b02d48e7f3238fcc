"""POST /api/v1/events: a partner reports a negative event; it counts in that partner's next scores only."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection, transaction
from django.utils import timezone

from alerts.models import NegativeEvent
from alerts.negative_events import negative_event_report
from dossiers.models import Company, Dossier, Individual
from dossiers.services import dossier_score
from riskoffice.models import AuditEvent
from scoring.models import Score

from .conftest import make_partner_client, obtain_token, problem_of

SIREN = "552100554"


def days_ago(days: int) -> str:
    return (timezone.localdate() - timedelta(days=days)).isoformat()


def delay(event_id: str = "evt-0001", **extra) -> dict:
    return {
        "company": {"siren": SIREN},
        "event_id": event_id,
        "kind": "payment_delay",
        "occurred_on": days_ago(20),
        "amount": "1250.00",
        "days_late": 75,
        **extra,
    }


def post_as(client, partner_client, body: dict):
    token = obtain_token(client, partner_client)
    return client.post(
        "/api/v1/events", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


# --- reporting ---------------------------------------------------------------------------------------------


def test_a_partner_reports_a_payment_delay_on_a_company(api):
    response = api.post("/api/v1/events", delay(details={"invoice": "F-2025-118", "currency": "EUR"}))

    assert response.status_code == 201, response.content
    body = response.json()
    event = NegativeEvent.objects.get()
    assert body == {
        "id": event.pk,
        "event_id": "evt-0001",
        "kind": "payment_delay",
        "occurred_on": days_ago(20),
        "subject": {"company": {"siren": SIREN}},
        "amount": "1250.00",
        "days_late": 75,
        "reason_code": None,
        "details": {"invoice": "F-2025-118", "currency": "EUR"},
        "created_at": event.created_at.isoformat(),
    }
    client_row = api.partner.api_client
    assert event.reported_by == client_row and event.partner_event_id == "evt-0001"
    assert event.source == f"partner:{client_row.partner_id}"
    assert event.company == Company.objects.get(siren=SIREN)
    audit = AuditEvent.objects.get(action="negative_event.reported")
    assert audit.actor_client == client_row and audit.object_id == str(event.pk)
    assert audit.after["event_id"] == "evt-0001" and audit.after["siren"] == SIREN


def test_a_sepa_incident_on_an_individual_is_filed_under_the_partners_reference(api, other_partner):
    body = {
        "individual": {"reference": "cust-0042"},
        "event_id": "sepa/2025/7",
        "kind": "sepa_incident",
        "occurred_on": days_ago(3),
        "reason_code": "am04",
    }
    response = api.post("/api/v1/events", body)

    assert response.status_code == 201, response.content
    assert response.json()["subject"] == {"individual": {"reference": "cust-0042"}}
    assert response.json()["reason_code"] == "AM04"
    event = NegativeEvent.objects.get()
    assert event.individual == Individual.objects.for_reference(api.partner.partner, "cust-0042")
    assert event.company is None


@pytest.mark.parametrize("kind", ["insolvency_proceeding", "debt_collection"])
def test_the_other_kinds_a_partner_may_report(api, kind):
    response = api.post(
        "/api/v1/events",
        {"company": {"siren": SIREN}, "event_id": kind, "kind": kind, "occurred_on": days_ago(1), "amount": 0},
    )
    assert response.status_code == 201, response.content
    assert NegativeEvent.objects.get().kind == kind


# --- the same event id again ---------------------------------------------------------------------------------


def test_the_same_event_reported_again_is_the_stored_event(api):
    first = api.post("/api/v1/events", delay())
    again = api.post("/api/v1/events", delay(amount=1250))  # the same amount, written otherwise

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert NegativeEvent.objects.count() == 1
    assert AuditEvent.objects.filter(action="negative_event.reported").count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"days_late": 76},
        {"occurred_on": days_ago(21)},
        {"amount": None},
        {"company": {"siren": "732829320"}},
        {"details": {"note": "another"}},
    ],
)
def test_the_same_event_id_with_other_content_is_a_409_problem(api, change):
    assert api.post("/api/v1/events", delay()).status_code == 201
    response = api.post("/api/v1/events", delay(**change))

    assert response.status_code == 409
    body = problem_of(response)
    assert body["type"] == "urn:riskoffice:problem:event-id-reused"
    assert "evt-0001" in body["detail"]
    assert NegativeEvent.objects.count() == 1
    assert NegativeEvent.objects.get().days_late == 75


def test_event_ids_belong_to_each_client(client, api, other_partner):
    assert api.post("/api/v1/events", delay()).status_code == 201
    assert post_as(client, other_partner, delay()).status_code == 201
    assert NegativeEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_reports_of_one_event_store_it_once_and_none_fails(live_server, marketplace):
    session = requests.Session()
    token = session.post(
        f"{live_server.url}/o/token/",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": marketplace.basic_auth},
        timeout=30,
    ).json()["access_token"]
    start, statuses = threading.Barrier(6), []

    def report() -> None:
        start.wait()
        response = requests.post(
            f"{live_server.url}/api/v1/events",
            json=delay("evt-race"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=report) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * 5 + [201], statuses
    assert NegativeEvent.objects.filter(partner_event_id="evt-race").count() == 1
    assert AuditEvent.objects.filter(action="negative_event.reported").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_report_racing_one_not_yet_committed_answers_with_the_winner(live_server, marketplace):
    """The unique constraint decides: the loser's insert waits for the winner's commit, fails, reads the winner."""
    token = requests.post(
        f"{live_server.url}/o/token/",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": marketplace.basic_auth},
        timeout=30,
    ).json()["access_token"]
    Company.objects.create(siren=SIREN)  # so that only the event itself is contended
    holding, release, answers = threading.Event(), threading.Event(), []

    def winner() -> None:
        try:
            with transaction.atomic():
                negative_event_report(
                    client=marketplace.api_client,
                    event_id="evt-race",
                    kind="payment_delay",
                    occurred_on=timezone.localdate() - timedelta(days=20),
                    siren=SIREN,
                    amount=Decimal("1250.00"),
                    days_late=75,
                )
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    def loser() -> None:
        answers.append(
            requests.post(
                f"{live_server.url}/api/v1/events",
                json=delay("evt-race"),
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        )

    first = threading.Thread(target=winner)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=loser)
    second.start()
    time.sleep(1)  # the loser is now past its look-up and waiting on the winner's row
    release.set()
    first.join()
    second.join()

    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.json()["event_id"] == "evt-race"
    assert NegativeEvent.objects.filter(partner_event_id="evt-race").count() == 1


# --- refused ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"company": None}, "company"),
        ({"individual": {"reference": "cust-1"}}, "company"),
        ({"company": {"siren": "552100555"}}, "company.siren"),
        ({"company": {"siren": 552100554}}, "company.siren"),
        ({"company": {"siren": SIREN, "vat": "FR96552100554"}}, "company.vat"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "   "}, "event_id"),
        ({"event_id": "x" * 101}, "event_id"),
        ({"event_id": 42}, "event_id"),
        ({"kind": "score_drop"}, "kind"),
        ({"occurred_on": (timezone.localdate() + timedelta(days=1)).isoformat()}, "occurred_on"),
        ({"occurred_on": "20/01/2025"}, "occurred_on"),
        ({"amount": -5}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"days_late": "75"}, "days_late"),
        ({"days_late": 0}, "days_late"),
        ({"kind": "sepa_incident"}, "days_late"),
        ({"reason_code": "AM04"}, "reason_code"),
        ({"kind": "sepa_incident", "days_late": None, "reason_code": "AM 04"}, "reason_code"),
        ({"details": {"nested": {"a": 1}}}, "details"),
        ({"details": [1, 2]}, "details"),
        ({"details": {f"k{i}": i for i in range(21)}}, "details"),
        ({"details": {"note": "x" * 201}}, "details"),
        ({"source": "bodacc"}, "source"),
    ],
)
def test_an_invalid_event_is_a_400_problem_naming_the_field(api, change, field):
    body = {name: value for name, value in delay(**change).items() if value is not None or name != "company"}
    response = api.post("/api/v1/events", body)

    assert response.status_code == 400, response.content
    problem = problem_of(response)
    assert problem["type"] == "urn:riskoffice:problem:validation-error"
    assert field in problem["errors"], problem
    assert not NegativeEvent.objects.exists()


def test_reporting_needs_the_events_write_scope(client, db):
    scorer = make_partner_client("Scores Only Lender", ["scores:write", "scores:read"])
    response = post_as(client, scorer, delay())
    assert response.status_code == 403
    problem_of(response)
    assert not NegativeEvent.objects.exists()


def test_without_a_token_reporting_is_a_401_problem(client, db):
    response = client.post("/api/v1/events", json.dumps(delay()), content_type="application/json")
    assert response.status_code == 401
    problem_of(response)


# --- what the next score sees ------------------------------------------------------------------------------------


def score_of(client, partner_client, siren: str = SIREN) -> Score:
    """A new dossier on ``siren`` asked for through the API, scored by the real scoring service."""
    token = obtain_token(client, partner_client)
    response = client.post(
        "/api/v1/scores",
        json.dumps({"company": {"siren": siren}, "requested_amount": 25000}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202, response.content
    score = dossier_score(dossier_id=response.json()["id"])
    assert score is not None
    return score


def test_a_reported_event_counts_in_the_reporters_next_score_and_not_in_another_partners(
    client, champion, marketplace, other_partner
):
    before = score_of(client, marketplace).snapshot.features
    assert post_as(client, marketplace, delay(days_late=95)).status_code == 201
    sepa = {"company": {"siren": SIREN}, "event_id": "sepa-1", "kind": "sepa_incident", "occurred_on": days_ago(5)}
    assert post_as(client, marketplace, sepa).status_code == 201

    reporter = score_of(client, marketplace).snapshot
    outsider = score_of(client, other_partner).snapshot

    assert reporter.features["payment_delays_12m"] == before["payment_delays_12m"] + 1
    assert reporter.features["max_payment_delay_days"] == max(95, before["max_payment_delay_days"])
    assert reporter.features["rejected_sepa_debits_12m"] == 1  # no bank data: only the incident on file
    assert reporter.provenance["negative_events"]["status"] == "ok"
    assert outsider.features == before
    assert "negative_events" not in outsider.provenance


def test_an_event_nobody_reported_counts_for_every_partner(client, champion, marketplace, other_partner):
    before = score_of(client, other_partner).snapshot.features
    company = Company.objects.get(siren=SIREN)
    NegativeEvent.objects.create(
        company=company, kind="payment_delay", occurred_on=timezone.localdate(), days_late=40, source="analyst"
    )
    for partner_client in (marketplace, other_partner):
        features = score_of(client, partner_client).snapshot.features
        assert features["payment_delays_12m"] == before["payment_delays_12m"] + 1


def test_an_older_event_than_twelve_months_is_stored_but_not_counted(client, champion, marketplace):
    before = score_of(client, marketplace).snapshot.features
    assert post_as(client, marketplace, delay(occurred_on=days_ago(400))).status_code == 201
    assert score_of(client, marketplace).snapshot.features == before
    assert Dossier.objects.count() == 2
