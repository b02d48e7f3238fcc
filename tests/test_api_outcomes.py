"""POST /api/v1/scores/{id}/outcome: a partner reports what became of a credit, by the back-office's own rules."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from dossiers.models import Dossier, Outcome
from dossiers.services import dossier_score
from riskoffice.models import AuditEvent
from scoring.models import DEFAULT_OUTCOMES

from .conftest import PASSWORD, make_partner_client, obtain_token, problem_of

SIREN = "552100554"
VALID = {"company": {"siren": SIREN}, "bank_data": ["tok_123"], "requested_amount": 25000}


def today() -> str:
    return timezone.localdate().isoformat()


def outcome_url(dossier_id: str) -> str:
    return f"/api/v1/scores/{dossier_id}/outcome"


def audit_actions(dossier_id: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="dossiers.dossier", object_id=dossier_id)
        .order_by("at", "id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def scored(api, champion) -> str:
    """The marketplace's dossier, asked for through the API and scored by the real scoring service."""
    dossier_id = api.post("/api/v1/scores", VALID).json()["id"]
    assert dossier_score(dossier_id=dossier_id) is not None
    return dossier_id


# --- recording ------------------------------------------------------------------------------------------


def test_a_partner_reports_a_repaid_credit_with_its_amount(api, scored):
    response = api.post(outcome_url(scored), {"status": "repaid", "occurred_on": today(), "granted_amount": 25000})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"] == scored
    assert (body["status"], body["occurred_on"], body["granted_amount"]) == ("repaid", today(), "25000.00")
    assert body["outstanding_amount"] is None and body["written_off_amount"] is None
    assert body["links"]["score"] == f"http://testserver/api/v1/scores/{scored}"
    outcome = Outcome.objects.get()
    assert outcome.reported_by_client == api.partner.api_client and outcome.recorded_by is None
    assert outcome.granted_amount == Decimal("25000")
    event = AuditEvent.objects.get(action="dossier.outcome_recorded")
    assert event.actor_client == api.partner.api_client and event.object_id == scored
    assert event.after == {"outcome": "repaid", "occurred_on": today(), "granted_amount": "25000.00"}
    # The score shows it from now on.
    assert api.get(f"/api/v1/scores/{scored}").json()["outcome"] == {
        key: body[key]
        for key in (
            "status",
            "occurred_on",
            "granted_amount",
            "outstanding_amount",
            "written_off_amount",
            "recorded_at",
            "updated_at",
        )
    }


def test_a_score_without_an_outcome_says_so(api, scored):
    assert api.get(f"/api/v1/scores/{scored}").json()["outcome"] is None


def test_a_default_may_later_be_written_off_which_updates_it_and_is_audited(api, scored):
    default_day = timezone.localdate()
    defaulted = api.post(
        outcome_url(scored),
        {
            "status": "defaulted",
            "occurred_on": default_day.isoformat(),
            "granted_amount": "25000",
            "outstanding_amount": "18000.50",
        },
    )
    assert defaulted.status_code == 201, defaulted.content

    written_off = api.post(
        outcome_url(scored), {"status": "written_off", "occurred_on": today(), "written_off_amount": 17000}
    )

    assert written_off.status_code == 200, written_off.content
    body = written_off.json()
    assert (body["status"], body["written_off_amount"]) == ("written_off", "17000.00")
    assert (body["granted_amount"], body["outstanding_amount"]) == ("25000.00", "18000.50")  # kept
    outcome = Outcome.objects.get()
    assert outcome.status == "written_off" and outcome.is_default and outcome.status in DEFAULT_OUTCOMES
    assert audit_actions(scored)[-2:] == ["dossier.outcome_recorded", "dossier.outcome_written_off"]
    event = AuditEvent.objects.get(action="dossier.outcome_written_off")
    assert event.before["outcome"] == "defaulted" and event.after["outcome"] == "written_off"
    assert event.after["written_off_amount"] == "17000.00" and event.actor_client == api.partner.api_client

    again = api.post(outcome_url(scored), {"status": "written_off", "occurred_on": today(), "written_off_amount": 1})
    assert again.status_code == 409
    assert problem_of(again)["type"] == "urn:riskoffice:problem:outcome-already-recorded"
    assert Outcome.objects.get().written_off_amount == Decimal("17000")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("repaid", {"status": "defaulted"}),
        ("repaid", {"status": "repaid"}),
        ("repaid", {"status": "written_off", "written_off_amount": 10}),
        ("defaulted", {"status": "defaulted"}),
        ("defaulted", {"status": "repaid"}),
    ],
)
def test_a_second_outcome_is_a_409_problem_and_changes_nothing(api, scored, first, second):
    assert api.post(outcome_url(scored), {"status": first, "occurred_on": today()}).status_code == 201
    response = api.post(outcome_url(scored), {**second, "occurred_on": today()})

    assert response.status_code == 409
    body = problem_of(response)
    assert body["type"] == "urn:riskoffice:problem:outcome-already-recorded"
    assert body["title"] == "Outcome already recorded"
    assert body["detail"] == "An outcome is already recorded for this dossier."
    assert body["instance"] == outcome_url(scored)
    assert Outcome.objects.get().status == first
    assert audit_actions(scored).count("dossier.outcome_recorded") == 1


def test_a_dossier_not_yet_scored_has_no_outcome(api):
    pending = api.post("/api/v1/scores", VALID).json()["id"]
    response = api.post(outcome_url(pending), {"status": "repaid", "occurred_on": today()})
    assert response.status_code == 409
    assert problem_of(response)["type"] == "urn:riskoffice:problem:dossier-not-scored"
    assert not Outcome.objects.exists()


def test_an_outcome_on_a_refused_credit_is_refused_with_409_and_nothing_is_written(api, scored, senior):
    """No credit was granted, so there is no repayment or default to learn from (issue 9)."""
    from dossiers.services import dossier_override
    from tests.test_four_eyes import reason_code

    dossier = Dossier.objects.get(pk=scored)
    if dossier.decision != "refuse":  # refusing lowers exposure: final at once
        dossier_override(
            dossier=dossier,
            decision="refuse",
            reason_code=reason_code("adverse_information"),
            reason="Sanctioned sector.",
            user=senior,
        )

    response = api.post(outcome_url(scored), {"status": "repaid", "occurred_on": today()})

    assert response.status_code == 409
    problem = problem_of(response)
    assert problem["type"] == "urn:riskoffice:problem:credit-not-granted"
    assert "refuse" in problem["detail"]
    assert not Outcome.objects.exists() and "dossier.outcome_recorded" not in audit_actions(scored)


def test_an_outcome_dated_before_the_decision_in_force_is_refused(api, scored):
    """The decision in force is today's: a repayment cannot have come before it."""
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    Dossier.objects.filter(pk=scored).update(decision="accept")  # granted, whatever the sandbox company is

    response = api.post(outcome_url(scored), {"status": "repaid", "occurred_on": yesterday})

    assert response.status_code == 400
    assert "occurred_on" in problem_of(response)["errors"]
    assert not Outcome.objects.exists()


# --- refused -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"status": "lost", "occurred_on": "TODAY"}, "status"),
        ({"status": "repaid"}, "occurred_on"),
        ({"status": "repaid", "occurred_on": "31/01/2025"}, "occurred_on"),
        ({"status": "repaid", "occurred_on": 20250131}, "occurred_on"),
        ({"status": "repaid", "occurred_on": "2025-W05-5"}, "occurred_on"),
        ({"status": "repaid", "occurred_on": "TOMORROW"}, "occurred_on"),
        ({"status": "repaid", "occurred_on": "BEFORE"}, "occurred_on"),
        ({"status": "written_off", "occurred_on": "TODAY"}, "written_off_amount"),
        ({"status": "written_off", "occurred_on": "TODAY", "written_off_amount": None}, "written_off_amount"),
        ({"status": "repaid", "occurred_on": "TODAY", "written_off_amount": 10}, "written_off_amount"),
        ({"status": "repaid", "occurred_on": "TODAY", "granted_amount": -1}, "granted_amount"),
        ({"status": "defaulted", "occurred_on": "TODAY", "outstanding_amount": "12.345"}, "outstanding_amount"),
        ({"status": "defaulted", "occurred_on": "TODAY", "outstanding_amount": True}, "outstanding_amount"),
        ({"status": "repaid", "occurred_on": "TODAY", "comment": "on time"}, "comment"),
    ],
)
def test_an_invalid_outcome_is_a_400_problem_naming_the_field(api, scored, body, field):
    dates = {
        "TODAY": today(),
        "TOMORROW": (timezone.localdate() + timedelta(days=1)).isoformat(),
        "BEFORE": (
            timezone.localtime(Dossier.objects.get(pk=scored).created_at).date() - timedelta(days=1)
        ).isoformat(),
    }
    if body.get("occurred_on") in dates:
        body = {**body, "occurred_on": dates[body["occurred_on"]]}

    response = api.post(outcome_url(scored), body)

    assert response.status_code == 400, response.content
    problem = problem_of(response)
    assert problem["type"] == "urn:riskoffice:problem:validation-error"
    assert field in problem["errors"], problem
    assert not Outcome.objects.exists()


def test_a_write_off_cannot_precede_the_default(api, scored):
    Dossier.objects.filter(pk=scored).update(created_at=timezone.now() - timedelta(days=30))
    day = timezone.localdate()
    assert api.post(outcome_url(scored), {"status": "defaulted", "occurred_on": day.isoformat()}).status_code == 201
    earlier = (day - timedelta(days=2)).isoformat()
    response = api.post(outcome_url(scored), {"status": "written_off", "occurred_on": earlier, "written_off_amount": 5})
    assert response.status_code == 400
    assert "occurred_on" in problem_of(response)["errors"]
    assert Outcome.objects.get().status == "defaulted"


def test_another_partners_dossier_is_a_404_and_stays_untouched(client, scored, other_partner):
    token = obtain_token(client, other_partner)
    response = client.post(
        outcome_url(scored),
        json.dumps({"status": "defaulted", "occurred_on": today()}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 404
    body = problem_of(response)
    assert SIREN not in json.dumps(body)
    assert not Outcome.objects.exists()


@pytest.mark.parametrize("dossier_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
def test_an_unknown_dossier_is_a_404(api, dossier_id):
    response = api.post(outcome_url(dossier_id), {"status": "repaid", "occurred_on": today()})
    assert response.status_code == 404
    problem_of(response)


def report_as_another_client_of(client, marketplace, name: str, scopes: list[str], dossier_id: str):
    """A repaid outcome reported by another API client of the marketplace's own partner, with its own token."""
    other = make_partner_client(name, scopes)
    other.api_client.partner = marketplace.partner
    other.api_client.save(update_fields=["partner"])
    response = client.post(
        outcome_url(dossier_id),
        json.dumps({"status": "repaid", "occurred_on": today()}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {obtain_token(client, other)}",
    )
    return other, response


def test_reporting_an_outcome_needs_the_outcomes_write_scope(client, scored, marketplace):
    _, response = report_as_another_client_of(
        client, marketplace, "Marketplace Scoring Only", ["scores:write", "scores:read"], scored
    )
    assert response.status_code == 403
    problem_of(response)
    assert not Outcome.objects.exists()


def test_a_reader_of_the_same_partner_may_not_report_but_a_reporter_may(client, scored, marketplace):
    reporter, response = report_as_another_client_of(
        client, marketplace, "Marketplace Collections", ["outcomes:write"], scored
    )
    assert response.status_code == 201
    assert Outcome.objects.get().reported_by_client == reporter.api_client


# --- the same rules in the back-office --------------------------------------------------------------------


def test_an_analyst_records_a_default_then_its_write_off_with_amounts(client, analyst, scored):
    assert client.login(username=analyst.username, password=PASSWORD)
    page = f"/dossiers/{scored}/"
    form = client.get(page).content.decode()
    assert 'value="written_off"' in form and 'name="outstanding_amount"' in form

    response = client.post(
        f"{page}outcome", {"status": "defaulted", "occurred_on": today(), "outstanding_amount": "9000"}, follow=True
    )
    body = response.content.decode()
    assert 'data-testid="write-off-form"' in body and 'data-testid="outcome-form"' not in body
    assert Outcome.objects.get().outstanding_amount == Decimal("9000")

    refused = client.post(f"{page}outcome", {"status": "written_off", "occurred_on": today()})
    assert refused.status_code == 400
    assert "A write-off states the amount written off." in refused.content.decode()

    client.post(f"{page}outcome", {"status": "written_off", "occurred_on": today(), "written_off_amount": "8500"})
    outcome = Outcome.objects.get()
    assert (outcome.status, outcome.written_off_amount, outcome.recorded_by) == (
        "written_off",
        Decimal("8500"),
        analyst,
    )
    shown = client.get(page).content.decode()
    assert f'data-testid="outcome">Written off on {today()}, recorded by {analyst.username}.' in shown
    assert 'data-testid="write-off-form"' not in shown


def test_the_back_office_names_the_partner_that_reported_an_outcome(client, analyst, api, scored):
    api.post(outcome_url(scored), {"status": "repaid", "occurred_on": today()})
    assert client.login(username=analyst.username, password=PASSWORD)
    shown = client.get(f"/dossiers/{scored}/").content.decode()
    assert f"reported through the API by {api.partner.partner}" in shown
