"""Negative events on monitored companies: an alert for analysts, a ``company.*`` event for the interested
partners, and a re-score of the company at once, which may itself send ``score.dropped``.

A partner's report is confidential: its event, and the score events of the re-score it caused, reach that
partner only. A retried report, or a change rolled back, alerts nobody.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from alerts.events import COMPANY_ACCOUNTS_PUBLISHED, COMPANY_INSOLVENCY_PROCEEDING, COMPANY_PAYMENT_DELAY
from alerts.models import Alert, NegativeEvent, WebhookDelivery
from alerts.monitoring_tasks import rescore_after_event
from alerts.negative_events import negative_event_record
from alerts.tasks import deliver_webhook
from dossiers.models import Dossier, Individual
from riskoffice.models import AuditEvent
from scoring.models import CompanyScore, PortfolioRun

from .conftest import PartnerClient, obtain_token
from .test_monitoring import deliveries, monitored_lender, previous_score_set, scored_dossier

TODAY = timezone.localdate


@pytest.fixture
def lender(db) -> PartnerClient:
    return monitored_lender("Monitored Lender")


@pytest.fixture
def second_lender(db) -> PartnerClient:
    return monitored_lender("Second Lender")


def report(client, partner_client, **body):
    token = obtain_token(client, partner_client)
    return client.post(
        "/api/v1/events", json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def insolvency(siren: str, event_id: str = "evt-ins-1") -> dict:
    return {
        "company": {"siren": siren},
        "event_id": event_id,
        "kind": "insolvency_proceeding",
        "occurred_on": (TODAY() - timedelta(days=2)).isoformat(),
        "details": {"tribunal": "TC Bordeaux"},
    }


def queued(callbacks) -> list[str]:
    """The task names the transaction's on-commit callbacks would send (not sent: no broker traffic here)."""
    names = []
    for callback in callbacks:
        cell = dict(
            zip(callback.__code__.co_freevars, (c.cell_contents for c in callback.__closure__ or ()), strict=True)
        )
        task = cell.get("task")
        names.append(getattr(task, "name", "?"))
    return names


@pytest.mark.django_db
def test_an_insolvency_reported_through_the_api_alerts_tells_the_partner_and_the_rescore_sends_a_drop(
    client, champion, lender, webhook_receiver, django_capture_on_commit_callbacks
):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    previous_score_set(dossier, points=60)  # the lender last saw 60 points more: the re-score is a drop
    endpoint = lender.partner.webhook_endpoints.get()
    endpoint.url = webhook_receiver.url
    endpoint.save(update_fields=["url"])

    with django_capture_on_commit_callbacks() as callbacks:
        response = report(client, lender, **insolvency(dossier.company.siren))

    assert response.status_code == 201, response.content
    event = NegativeEvent.objects.get()
    alert = Alert.objects.get()
    assert (alert.kind, alert.severity, alert.dedup_key) == ("negative_event", "critical", f"event:{event.pk}")
    assert (alert.company, alert.dossier, alert.negative_event, alert.event_kind) == (
        dossier.company,
        dossier,
        event,
        "insolvency_proceeding",
    )
    (delivery,) = deliveries(COMPANY_INSOLVENCY_PROCEEDING, lender.partner)
    assert delivery.payload["data"] == {
        "company": {"siren": dossier.company.siren, "name": dossier.company.name},
        "event": {
            "id": event.pk,
            "kind": "insolvency_proceeding",
            "occurred_on": event.occurred_on.isoformat(),
            "source": "partner",
            "amount": None,
            "days_late": None,
            "reason_code": None,
            "details": {"tribunal": "TC Bordeaux"},
        },
        "score_ids": [str(dossier.pk)],
    }
    assert "alerts.monitoring.rescore_after_event" in queued(callbacks)

    deliver_webhook(delivery.pk)  # what the worker does with the delivery's message
    (received,) = webhook_receiver.wait(1)
    assert json.loads(received["body"])["type"] == COMPANY_INSOLVENCY_PROCEEDING
    assert received["headers"]["webhook-id"] == delivery.message_id

    rescore_after_event(event.pk)  # what the worker does with the re-score's message
    rescore_after_event(event.pk)  # a redelivered message finds the run done

    run = PortfolioRun.objects.get()
    assert (run.scope, run.trigger_event, run.status, run.rows_done) == ("event", event, "done", 1)
    cscore = CompanyScore.objects.get(run=run)
    assert cscore.delta <= -60
    drop_alert = Alert.objects.get(kind="score_dropped")
    assert drop_alert.dedup_key == f"cscore:{cscore.pk}"
    (dropped,) = deliveries("score.dropped", lender.partner)
    assert dropped.payload["data"]["trigger"] == "negative_event" and dropped.payload["data"]["run_id"] == run.pk


@pytest.mark.django_db
def test_a_retried_report_alerts_and_tells_nobody_twice(client, champion, lender):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    body = insolvency(dossier.company.siren)

    assert report(client, lender, **body).status_code == 201
    assert report(client, lender, **body).status_code == 200

    assert Alert.objects.count() == 1 and WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_payment_delay_one_partner_reports_never_reaches_another_partner_with_exposure(
    client, champion, lender, second_lender, settings
):
    settings.MONITORING_DROP_POINTS = settings.MONITORING_CHANGE_POINTS = 1
    mine = scored_dossier(0, champion, partner=lender.partner)
    scored_dossier(0, champion, partner=second_lender.partner, company=mine.company)
    Dossier.objects.filter(pk=mine.pk).update(created_at=timezone.now() + timedelta(seconds=1))

    response = report(
        client,
        lender,
        company={"siren": mine.company.siren},
        event_id="late-1",
        kind="payment_delay",
        occurred_on=(TODAY() - timedelta(days=5)).isoformat(),
        amount="1200.00",
        days_late=120,
    )
    assert response.status_code == 201, response.content
    rescore_after_event(NegativeEvent.objects.get().pk)

    assert [d.event_type for d in deliveries(partner=second_lender.partner)] == []
    assert COMPANY_PAYMENT_DELAY in [d.event_type for d in deliveries(partner=lender.partner)]
    assert Alert.objects.filter(kind="negative_event").count() == 1  # analysts see every event


@pytest.mark.django_db
def test_an_analysts_event_alerts_and_reaches_every_interested_partner_without_the_note(
    champion, lender, second_lender, analyst, django_capture_on_commit_callbacks
):
    dossier = scored_dossier(0, champion, partner=lender.partner)
    scored_dossier(0, champion, partner=second_lender.partner, company=dossier.company)

    with django_capture_on_commit_callbacks() as callbacks:
        event = negative_event_record(
            user=analyst,
            company=dossier.company,
            kind="insolvency_proceeding",
            occurred_on=TODAY() - timedelta(days=1),
            note="Heard from the court clerk",
        )

    assert (event.source, event.recorded_by) == ("analyst", analyst)
    assert event.details == {"note": "Heard from the court clerk"}
    assert AuditEvent.objects.get(action="negative_event.recorded").actor_user == analyst
    assert Alert.objects.get().negative_event == event
    sent = deliveries(COMPANY_INSOLVENCY_PROCEEDING)
    assert {d.endpoint.partner for d in sent} == {lender.partner, second_lender.partner}
    assert [d.payload["data"]["event"]["source"] for d in sent] == ["analyst", "analyst"]
    assert [d.payload["data"]["event"]["details"] for d in sent] == [{}, {}]
    assert "alerts.monitoring.rescore_after_event" in queued(callbacks)


@pytest.mark.django_db
def test_accounts_published_is_an_event_without_alert_or_rescore(
    champion, lender, analyst, django_capture_on_commit_callbacks
):
    dossier = scored_dossier(0, champion, partner=lender.partner)

    with django_capture_on_commit_callbacks() as callbacks:
        negative_event_record(user=analyst, company=dossier.company, kind="accounts_published", occurred_on=TODAY())

    assert not Alert.objects.exists()
    assert [d.event_type for d in deliveries()] == [COMPANY_ACCOUNTS_PUBLISHED]
    assert "alerts.monitoring.rescore_after_event" not in queued(callbacks)


@pytest.mark.django_db
def test_a_rolled_back_negative_event_leaves_no_alert_no_delivery_and_sends_nothing(
    champion, lender, analyst, django_capture_on_commit_callbacks
):
    dossier = scored_dossier(0, champion, partner=lender.partner)

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        negative_event_record(user=analyst, company=dossier.company, kind="payment_delay", occurred_on=TODAY())
        raise RuntimeError("the caller's transaction fails after the event")

    assert not NegativeEvent.objects.exists() and not Alert.objects.exists()
    assert not WebhookDelivery.objects.exists() and callbacks == []


@pytest.mark.django_db
def test_an_event_on_an_unmonitored_company_is_on_file_and_tells_nobody(client, champion, lender):
    declined = scored_dossier(0, champion, partner=lender.partner, decision="decline")

    assert report(client, lender, **insolvency(declined.company.siren)).status_code == 201

    assert NegativeEvent.objects.count() == 1
    assert not Alert.objects.exists() and not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_an_event_about_an_individual_with_open_exposure_alerts_analysts_only(
    client, lender, django_capture_on_commit_callbacks
):
    individual, _ = Individual.objects.get_or_create_for_reference(lender.partner.pk, "CUST-77")
    dossier = Dossier.objects.create(
        individual=individual,
        partner=lender.partner,
        segment="b2c",
        requested_amount=Decimal(900),
        status=Dossier.Status.SCORED,
        decision="accept",
    )

    with django_capture_on_commit_callbacks() as callbacks:
        response = report(
            client,
            lender,
            individual={"reference": "CUST-77"},
            event_id="sepa-1",
            kind="sepa_incident",
            occurred_on=TODAY().isoformat(),
            reason_code="AM04",
        )

    assert response.status_code == 201, response.content
    alert = Alert.objects.get()
    assert (alert.individual, alert.dossier, alert.company) == (individual, dossier, None)
    assert not WebhookDelivery.objects.exists()
    assert "alerts.monitoring.rescore_after_event" not in queued(callbacks)


@pytest.mark.django_db
def test_an_analysts_event_is_checked_and_only_analysts_record_one(champion, lender, analyst, auditor):
    company = scored_dossier(0, champion, partner=lender.partner).company

    with pytest.raises(ValidationError) as refused:
        negative_event_record(
            user=analyst, company=company, kind="sepa_incident", occurred_on=TODAY() + timedelta(days=1), days_late=3
        )
    assert set(refused.value.message_dict) == {"occurred_on", "days_late"}
    with pytest.raises(PermissionDenied):
        negative_event_record(user=auditor, company=company, kind="payment_delay", occurred_on=TODAY())
    assert not NegativeEvent.objects.exists()


@pytest.mark.django_db
def test_a_rescore_whose_message_was_lost_is_sent_again_by_the_sweep_once_it_is_late(champion, lender, analyst):
    from alerts.monitoring import event_rescores_requeue

    from .test_bodacc_watch import broker_messages

    dossier = scored_dossier(0, champion, partner=lender.partner)
    event = negative_event_record(user=analyst, company=dossier.company, kind="payment_delay", occurred_on=TODAY())
    broker_messages(rescore_after_event.name)  # the on-commit message never left (the broker was down)

    assert event_rescores_requeue(now=event.created_at + timedelta(minutes=1)) == []  # may still be on its way
    assert event_rescores_requeue(now=event.created_at + timedelta(minutes=3)) == [event.pk]
    assert broker_messages(rescore_after_event.name) == [repr((event.pk,))]

    rescore_after_event(event.pk)
    assert event_rescores_requeue(now=event.created_at + timedelta(minutes=5)) == []
